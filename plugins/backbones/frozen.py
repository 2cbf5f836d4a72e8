"""A frozen pretrained timm backbone as a feature extractor for the training-free floors.

:func:`load_frozen_timm` builds ``timm:<model>`` (pooled features, ``num_classes=0``) with
weights from a local file, or else timm's pretrained weights from the Hugging Face cache,
or else from the hub when it is reachable. Offline it fails at once with one line: the
cache is read with the hub client in offline mode, and the hub is probed with one 3-second
connection before any download (the client itself retries for about a minute);
:func:`check_weights` runs these checks without loading anything, when a run is planned.
:class:`FrozenFeatures` maps normalised images (N, C, H, W) to the model's pooled features,
resized to the model's pretrained input size unless told otherwise; features are cached
per model, weights and image array, so the bit lengths of one process share them.
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import torch
import torch.nn.functional as F

from bench.api.errors import BenchError
from bench.api.interfaces import BuildContext
from plugins.backbones.timm_adapter import TimmBackbone

PREFIX = "timm:"
_CACHE: dict[tuple, np.ndarray] = {}
_CACHE_ENTRIES = 8


@contextlib.contextmanager
def hub_cache_only() -> Iterator[None]:
    """The Hugging Face client in offline mode (local cache only) inside the block."""
    from huggingface_hub import constants

    saved = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = saved


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether one TCP connection to the hub's endpoint opens within ``timeout`` seconds
    (``False`` at once under ``HF_HUB_OFFLINE=1``)."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    url = urlparse(constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname, port), timeout=timeout).close()
    except OSError:
        return False
    return True


def _hub_weights_cached(variant: str) -> bool:
    """Whether timm's default pretrained weights of ``variant`` are in the local caches."""
    import timm
    from huggingface_hub import try_to_load_from_cache

    if not timm.is_model(variant):
        raise BenchError(f"backbone timm:{variant}: timm has no model '{variant}' "
                         "(python -c 'import timm; print(timm.list_models())' lists them)")
    cfg = timm.models.get_pretrained_cfg(variant)
    if cfg is None or not (cfg.hf_hub_id or cfg.url):
        raise BenchError(f"backbone timm:{variant}: timm has no pretrained weights for it; "
                         "give a local weights file with --set backbone.weights=PATH")
    names = [n for n in (cfg.hf_hub_filename, "model.safetensors", "pytorch_model.bin") if n]
    if cfg.hf_hub_id and any(isinstance(try_to_load_from_cache(cfg.hf_hub_id.split("@")[0], n), str) for n in names):
        return True
    return bool(cfg.url) and (Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(cfg.url).path).name).is_file()


def check_weights(name: str, weights: str | None) -> None:
    """Raise one BenchError unless ``name``'s weights can be had: ``weights`` is a file, or
    timm's pretrained weights are cached or the hub is reachable. Cheap: nothing is loaded."""
    if not name.startswith(PREFIX) or name == PREFIX:
        raise BenchError(f"backbone '{name}': the pretrained-feature floors take a timm model; "
                         "use --backbone timm:NAME (e.g. timm:resnet18)")
    if weights is not None:
        if not Path(weights).expanduser().is_file():
            raise BenchError(f"backbone {name}: weights file {weights} does not exist; "
                             "give a local weights file with --set backbone.weights=PATH")
    elif not _hub_weights_cached(name[len(PREFIX):]) and not hub_reachable():
        raise BenchError(f"backbone {name}: no pretrained weights: not in the local cache and the hub "
                         "is unreachable; give a local weights file with --set backbone.weights=PATH")


def load_frozen_timm(name: str, weights: str | None, in_chans: int) -> TimmBackbone:
    """``timm:<model>`` with pooled features and pretrained weights, in eval mode, frozen.

    ``weights``: a local file (a state dict timm can load), or ``None`` for timm's
    pretrained weights from the Hugging Face cache or hub; without either, one BenchError.
    """
    check_weights(name, weights)
    ctx = BuildContext(bits=1, num_classes=1, input_shape=(in_chans, 1, 1))
    variant = name[len(PREFIX):]
    if weights is not None:
        model = TimmBackbone(ctx, variant, checkpoint=weights)
    else:
        try:
            with hub_cache_only():
                model = TimmBackbone(ctx, variant, pretrained=True)
        except BenchError:  # not cached: download (check_weights found the hub reachable)
            model = TimmBackbone(ctx, variant, pretrained=True)
    return model.eval().requires_grad_(False)


class FrozenFeatures:
    """Pooled features of a frozen pretrained timm backbone for normalised images."""

    def __init__(self, name: str, weights: str | None, input_size: int | None, batch_size: int, in_chans: int) -> None:
        self.key = (name, weights, input_size, in_chans)
        self.model = load_frozen_timm(name, weights, in_chans)
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.model.to(self.device)
        native = self.model.model.pretrained_cfg.get("input_size", (in_chans, 224, 224))
        self.size = tuple(native[1:]) if input_size is None else (input_size, input_size)
        self.batch_size = batch_size

    @torch.no_grad()
    def __call__(self, images: np.ndarray) -> np.ndarray:
        """``(N, C, H, W)`` float images -> ``(N, D)`` float32 pooled features."""
        digest = hashlib.sha1(np.ascontiguousarray(images).tobytes()).hexdigest()
        key = (*self.key, images.shape, digest)
        if key not in _CACHE:
            out = []
            for start in range(0, len(images), self.batch_size):
                x = torch.from_numpy(images[start:start + self.batch_size]).float().to(self.device)
                if tuple(x.shape[2:]) != self.size:
                    x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False)
                out.append(self.model(x)["pooled"].float().cpu())
            while len(_CACHE) >= _CACHE_ENTRIES:
                _CACHE.pop(next(iter(_CACHE)))
            _CACHE[key] = torch.cat(out).numpy()
        return _CACHE[key]
