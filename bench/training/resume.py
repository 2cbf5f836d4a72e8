"""Resume interrupted deep runs from a per-epoch checkpoint.

After every epoch the harness writes ``resume.pt`` atomically (temp file + rename) with
the model, loss parts, optimizer and scheduler states, every RNG the loop draws from
(torch CPU and CUDA, numpy, python ``random`` and the batch source's generator), the
loop state (epoch, step, best selection so far, history) and the MLflow run id. Every
value is a tensor or a plain container, so the file loads with
``torch.load(weights_only=True)``: a checkpoint someone hands you is never unpickled. A file
that is not the run's own checkpoint is moved aside with a warning and the run starts from
scratch (:meth:`Resumer.restore`).
Continuing from it gives bit-identical results on CPU: the same batches, augmentations,
dropout masks and updates as the uninterrupted run.

Loss parts must keep learned state in parameters or buffers (``state_dict``) for this.
"""

from __future__ import annotations

import copy
import os
import pickle
import random
import sys
import time
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
    ``config_hash`` (a checkpoint of another run or configuration is moved aside)."""

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
        """Load this run's checkpoint into the given objects; ``None`` when there is none.

        A file that is not this run's checkpoint (damaged, truncated, of another run or
        configuration, holding pickled objects, or not fitting the model) never blocks the
        run: it is moved aside (:meth:`set_aside`, one warning line naming both files), the
        objects keep their fresh state and ``None`` is returned, so the run starts from scratch.
        """
        if not self.path.is_file():
            return None
        try:
            state = safe_load(self.path)
        except pickle.UnpicklingError:
            return self.set_aside("it holds pickled objects, which are never loaded")
        except Exception:  # noqa: BLE001 - truncated, damaged or not a torch file at all
            return self.set_aside("it is damaged or not a checkpoint")
        identity = (state.get("format"), state.get("run_id"), state.get("config_hash")) if isinstance(state, dict) else None
        if identity != (FORMAT, self.run_id, self.config_hash):
            return self.set_aside("it belongs to another run or configuration")
        targets = {"model": model, "loss": loss, "optimizer": optimizer, "scheduler": scheduler}
        fresh = {name: copy.deepcopy(obj.state_dict()) for name, obj in targets.items()}
        fresh_rng = capture_rng(generator)
        try:
            for name, obj in targets.items():
                obj.load_state_dict(state[name])
            restore_rng(state["rng"], generator)
            return LoopState(**state["loop"])
        except Exception:  # noqa: BLE001 - does not fit this run's objects: put the fresh state back
            for name, obj in targets.items():
                obj.load_state_dict(fresh[name])
            restore_rng(fresh_rng, generator)
            return self.set_aside("it does not fit this run's model or optimizer")

    def set_aside(self, why: str) -> None:
        """Move the checkpoint to ``resume.pt.bad-<time>`` beside it (kept for inspection) and
        say so in one line on stderr; the run then starts from scratch."""
        stem = f"{RESUME_FILE}.bad-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        aside, n = self.path.with_name(stem), 1
        while aside.exists():  # never overwrite a file set aside before (same second, same process)
            aside, n = self.path.with_name(f"{stem}-{n}"), n + 1
        os.replace(self.path, aside)
        print(f"warning: resume checkpoint {self.path} not used ({why}); moved to {aside.name}; "
              "the run starts from scratch", file=sys.stderr, flush=True)
        return None

    def clear(self) -> None:
        """Remove the checkpoint once the run has finished."""
        self.path.unlink(missing_ok=True)
