"""Atomic checkpoint files: written to a temporary file then renamed, loaded safely; a
model initialised from another run's checkpoint."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from bench.config.paths import no_space, out_of_space


def atomic_save(obj: Any, path: Path) -> Path:
    """``torch.save`` to ``path`` atomically (temp file in the same folder + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if not isinstance(exc, KeyboardInterrupt) and out_of_space(exc, path.parent):
            raise no_space(path.parent, "free space there or pass another --output") from None
        raise
    return path


def safe_load(path: Path) -> Any:
    """Load a checkpoint with ``weights_only=True``: tensors and plain containers only."""
    return torch.load(Path(path), map_location="cpu", weights_only=True)


def load_matching(model: torch.nn.Module, path: Path) -> list[str]:
    """Load the entries of ``path``'s ``model`` state whose name and shape equal the model's
    (``TrainingSpec.init_from``); return the names of those left as initialised.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = atomic_save({"model": torch.nn.Linear(2, 3).state_dict()}, folder / "c.pt")
    >>> load_matching(torch.nn.Linear(2, 4), folder / "c.pt")
    ['weight', 'bias']
    """
    saved = safe_load(path)["model"]
    own = model.state_dict()
    matching = {k: v for k, v in saved.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(matching, strict=False)
    return [k for k in own if k not in matching]
