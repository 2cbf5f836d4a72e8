"""Atomic checkpoint files: written to a temporary file then renamed, loaded safely; a
model initialised from another run's checkpoint."""

from __future__ import annotations

import os
import signal
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from bench.config.paths import no_space, out_of_space


@contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM until the block ends, then raise KeyboardInterrupt: an interrupt
    inside ``torch.save``'s zip writer would surface as its RuntimeError ("enforce fail at
    inline_container.cc") and the run would end FAILED instead of KILLED. Outside the main
    thread (where no handler can be set) the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: caught.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)
                if signal.getsignal(sig) is not signal.SIG_IGN}  # a worker ignores Ctrl-C: it still does
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
    if caught:
        raise KeyboardInterrupt(f"signal {signal.Signals(caught[0]).name}")


def atomic_save(obj: Any, path: Path) -> Path:
    """``torch.save`` to ``path`` atomically (temp file in the same folder + rename); an
    interrupt during the write is delivered once the file is whole (:func:`deferred_interrupts`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with deferred_interrupts():
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
