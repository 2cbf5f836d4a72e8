"""Resume interrupted deep runs from a per-epoch checkpoint.

After every epoch the harness writes ``resume.pt`` atomically (temp file + rename) with
the model, loss parts, optimizer and scheduler states, every RNG the loop draws from
(torch CPU and CUDA, numpy, python ``random`` and the batch source's generator), the
loop state (epoch, step, best selection so far, history) and the MLflow run id. Every
value is a tensor or a plain container, so the file loads with
``torch.load(weights_only=True)``: a checkpoint someone hands you is never unpickled.
Continuing from it gives bit-identical results on CPU: the same batches, augmentations,
dropout masks and updates as the uninterrupted run.

Loss parts must keep learned state in parameters or buffers (``state_dict``) for this.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.training.checkpoint import atomic_save, safe_load
from bench.training.loop import LoopState

RESUME_FILE = "resume.pt"
FORMAT = 1


def capture_rng(generator: torch.Generator) -> dict[str, Any]:
    """Every RNG state the training loop uses, as tensors and plain values."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, py_state, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": {"version": version, "state": torch.tensor(py_state, dtype=torch.int64),
                   "gauss_next": gauss_next},
        "source": generator.get_state(),
    }


def restore_rng(state: dict[str, Any], generator: torch.Generator) -> None:
    """Inverse of :func:`capture_rng`.

    >>> g = torch.Generator().manual_seed(1)
    >>> saved = capture_rng(g)
    >>> a = (random.random(), np.random.rand(), torch.rand(1).item(), torch.rand(1, generator=g).item())
    >>> restore_rng(saved, g)
    >>> a == (random.random(), np.random.rand(), torch.rand(1).item(), torch.rand(1, generator=g).item())
    True
    """
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"].tolist()), p["gauss_next"]))
    generator.set_state(state["source"])


@dataclass
class Resumer:
    """The resume checkpoint of one run: ``folder/resume.pt``, valid only for ``run_id`` and
    ``config_hash`` (a checkpoint of another run or configuration is ignored)."""

    folder: Path
    run_id: str
    config_hash: str

    @property
    def path(self) -> Path:
        return Path(self.folder) / RESUME_FILE

    def save(self, loop: LoopState, model: torch.nn.Module, loss: torch.nn.Module,
             optimizer: torch.optim.Optimizer, scheduler: Any, generator: torch.Generator) -> Path:
        """Write the checkpoint of the epoch that just ended (atomic)."""
        return atomic_save({
            "format": FORMAT, "run_id": self.run_id, "config_hash": self.config_hash,
            "loop": asdict(loop), "model": model.state_dict(), "loss": loss.state_dict(),
            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "rng": capture_rng(generator),
        }, self.path)

    def restore(self, model: torch.nn.Module, loss: torch.nn.Module, optimizer: torch.optim.Optimizer,
                scheduler: Any, generator: torch.Generator) -> LoopState | None:
        """Load this run's checkpoint into the given objects; ``None`` when there is none."""
        if not self.path.is_file():
            return None
        state = safe_load(self.path)
        if (state.get("format"), state.get("run_id"), state.get("config_hash")) != (
            FORMAT, self.run_id, self.config_hash
        ):
            return None
        model.load_state_dict(state["model"])
        loss.load_state_dict(state["loss"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        restore_rng(state["rng"], generator)
        return LoopState(**state["loop"])

    def clear(self) -> None:
        """Remove the checkpoint once the run has finished."""
        self.path.unlink(missing_ok=True)
