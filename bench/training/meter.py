"""Per-epoch loss bookkeeping that keeps the host from waiting on the device every step."""

from __future__ import annotations

import math

import torch


class LossMeter:
    """Per-epoch sums of a step's loss values (one device vector ``[total, part...]``, as
    :mod:`bench.training.step` returns it), kept on the device; the host reads them back
    (which waits for the device) only every ``sync_every`` steps.

    >>> m = LossMeter(["total", "a"], sync_every=2)
    >>> m.add(torch.tensor([1.0, 0.5])), m.add(torch.tensor([3.0, 1.5]))
    (None, 3.0)
    >>> m.means()
    {'loss/total': 2.0, 'loss/a': 1.0}
    """

    def __init__(self, names: list[str], sync_every: int = 1) -> None:
        self.names = [f"loss/{name}" for name in names]
        self.sync_every = max(1, sync_every)
        self.sums: torch.Tensor | None = None
        self.count = 0

    def add(self, values: torch.Tensor) -> float | None:
        """Add one step's values (copied: a CUDA graph's output buffer is reused). At a
        read-back step return that step's total, or NaN when any total since the epoch
        began was not finite; between read-backs return ``None``."""
        self.sums = values.detach().clone() if self.sums is None else self.sums.add_(values)
        self.count += 1
        if self.count % self.sync_every:
            return None
        step_total, running = torch.stack([values[0], self.sums[0]]).tolist()
        return step_total if math.isfinite(running) else math.nan

    def means(self) -> dict[str, float]:
        """Average of each value over the steps added (one host read)."""
        if self.sums is None:
            return {}
        return {k: v / self.count for k, v in zip(self.names, self.sums.tolist(), strict=True)}
