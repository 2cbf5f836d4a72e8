"""The one device resolver and the one CPU count of the harness."""

from __future__ import annotations

import os

import torch

from bench.api.errors import BenchError


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; a bad or unavailable name is a one-line error.

    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise BenchError("--device cuda: no CUDA device is available; use --device auto or cpu")
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise BenchError(f"--device '{name}': use auto, cpu or cuda")
    return torch.device(name)


def cpu_count() -> int:
    """The CPUs this process may run on (the affinity mask, which containers and job
    schedulers narrow), at least 1."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def cpu_threads() -> int:
    """Intra-op threads for CPU work: ``OMP_NUM_THREADS`` when set, else :func:`cpu_count`."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    if value.isdigit() and int(value) > 0:
        return int(value)
    return cpu_count()
