"""Any timm model as a backbone: the ``timm:<model>`` family (``timm:resnet18``).

``features="pooled"`` builds ``timm.create_model(name, num_classes=0)`` and exposes its
pooled output as one feature ``pooled``. ``features="multiscale"`` builds the model with
``features_only=True`` and exposes the global-average-pooled maps of ``out_indices``
(default: the last two stages, as DCBH's multi-scale input), named after timm's
modules (``layer3``, ``layer4`` for a ResNet).

Weights are random by default. ``pretrained=True`` fetches timm's weights from the hub
(or its local cache); ``checkpoint=PATH`` loads a local file instead. Neither is ever
required; when weights are asked for and cannot be had, the error says what to do.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Literal

import torch

from bench.api.errors import BenchError
from bench.api.interfaces import Backbone, BuildContext


def _create(name: str, pretrained: bool, checkpoint: str | None, **kwargs) -> torch.nn.Module:
    import timm  # heavy import, only when a timm backbone is built

    if not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise BenchError(
            f"backbone timm:{name}: timm has no model '{name}'; {hint}"
            "(python -c 'import timm; print(timm.list_models())' lists them)"
        )
    if checkpoint is not None:
        path = Path(checkpoint).expanduser()
        if not path.is_file():
            raise BenchError(
                f"backbone timm:{name}: checkpoint {path} does not exist; give the path of a "
                "weights file (--set backbone.checkpoint=PATH)"
            )
        # timm loads (and adapts, e.g. for features_only) a local file given as the weight source.
        kwargs["pretrained_cfg_overlay"] = {"file": str(path)}
        pretrained = True
    try:
        return timm.create_model(name, pretrained=pretrained, **kwargs)
    except (OSError, RuntimeError, ValueError) as exc:
        if not pretrained:
            raise
        where = f"file {checkpoint}" if checkpoint else "the Hugging Face hub or its local cache"
        raise BenchError(
            f"backbone timm:{name}: pretrained weights could not be loaded from {where} "
            f"({type(exc).__name__}); run with --set backbone.pretrained=false for random init, "
            "or download the weights and pass --set backbone.checkpoint=PATH "
            "(set HF_HUB_OFFLINE=1 to fail fast offline)"
        ) from None


class TimmBackbone(Backbone):
    """A timm model (``timm:<name>``): pooled features or multi-scale pooled stage maps."""

    def __init__(
        self,
        ctx: BuildContext,
        variant: str | None = None,
        pretrained: bool = False,
        checkpoint: str | None = None,
        features: Literal["pooled", "multiscale"] = "pooled",
        out_indices: list[int] | None = None,
    ) -> None:
        super().__init__()
        if not variant:
            raise BenchError("backbone 'timm:' needs a model name; use e.g. --backbone timm:resnet18")
        if features not in ("pooled", "multiscale"):
            raise BenchError(
                f"backbone timm:{variant}: features='{features}' is unknown; use pooled or multiscale"
            )
        in_chans = ctx.input_shape[0]
        self.features = features
        if features == "pooled":
            self.model = _create(variant, pretrained, checkpoint, num_classes=0, in_chans=in_chans)
            self.names = ["pooled"]
            self.feature_dims = {"pooled": int(self.model.num_features)}
        else:
            indices = tuple(out_indices) if out_indices else (-2, -1)
            self.model = _create(
                variant, pretrained, checkpoint,
                features_only=True, out_indices=indices, in_chans=in_chans,
            )
            self.names = list(self.model.feature_info.module_name())
            self.feature_dims = dict(zip(self.names, self.model.feature_info.channels(), strict=True))

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.model(images)
        if self.features == "pooled":
            return {"pooled": out.flatten(1)}
        return {name: fmap.mean(dim=(2, 3)) for name, fmap in zip(self.names, out, strict=True)}
