"""A test plugin and helpers for the sweep, resume and executor tests.

Worker processes (spawned, or Ray workers) import this module by name, so it lives in
tests/ (on their ``sys.path``, and on ``PYTHONPATH`` for Ray). Its deep method is tiny but
draws from every RNG that resume must restore: a shuffling batch sampler and flip
augmentation (the batch source's generator) and dropout (torch's global RNG).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from torch import nn

from bench import hookimpl
from bench.api.interfaces import Backbone, BuildContext, LossPart
from bench.api.methods import DeepMethod, DeepMethodConfig, LossTerm, PartSpec, TrainingSpec

HERE = Path(__file__).resolve().parent


class DropoutLinear(Backbone):
    """Pixels -> Linear -> Dropout. ``fault``: ``raise`` (a plugin bug) or ``die``
    (SIGKILL its own process, as an out-of-memory kill would)."""

    def __init__(self, ctx: BuildContext, hidden: int = 32, fault: str = "") -> None:
        super().__init__()
        c, h, w = ctx.input_shape
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, hidden), nn.Dropout(0.2))
        self.feature_dims = {"hidden": hidden}
        self.fault = fault

    def forward(self, images):
        if self.fault == "raise":
            raise RuntimeError("plugin bug in sweep-mlp")
        if self.fault == "die":
            os.kill(os.getpid(), signal.SIGKILL)
        return {"hidden": self.net(images)}


class FeatureL2(LossPart):
    """Mean squared backbone feature: a quadratic term, so an absurd learning rate makes the
    loss overflow to inf within a few steps (a genuinely divergent run)."""

    def __init__(self, ctx: BuildContext, output_dims: dict[str, int]) -> None:
        super().__init__()

    def forward(self, outputs, context):
        return outputs["feat:hidden"].pow(2).mean()


class TinyConfig(DeepMethodConfig):
    backbone: PartSpec = PartSpec(name="sweep-mlp")
    head: PartSpec = PartSpec(name="fc")
    losses: list[LossTerm] = [LossTerm(name="ce_code"), LossTerm(name="quantization", weight=0.1),
                              LossTerm(name="sweep-l2", weight=1e-4)]
    training: TrainingSpec = TrainingSpec(batch_size=64, selection="last")


class Tiny(DeepMethod):
    """Linear + dropout + fc hash layer, trained by identity classification (tests only)."""

    Config = TinyConfig


class BrokenConfig(TinyConfig):
    backbone: PartSpec = PartSpec(name="sweep-mlp", options={"fault": "raise"})


class DyingConfig(TinyConfig):
    backbone: PartSpec = PartSpec(name="sweep-mlp", options={"fault": "die"})


class Broken(Tiny):
    Config = BrokenConfig


class Dying(Tiny):
    Config = DyingConfig


@hookimpl
def register_backbones(register):
    register("sweep-mlp", DropoutLinear)


@hookimpl
def register_losses(register):
    register("sweep-l2", FeatureL2)


@hookimpl
def register_methods(register):
    register("sweep-tiny", Tiny())
    register("sweep-broken", Broken())
    register("sweep-dying", Dying())


_HOST = []


def host():
    """Entry-point plugins plus this module (loaded once per process)."""
    from bench.api.pluginhost import load_plugins

    if not _HOST:
        _HOST.append(load_plugins(extra_plugins={"sweepkit": sys.modules[__name__]}))
    return _HOST[0]


def run_sweep(uri: str, output: Path, executor=None, force: bool = False, **sweep):
    """Expand ``sweep`` (SweepFile keys) and execute it; returns the Outcome."""
    from bench.running.executors.coordinator import execute_runs
    from bench.running.executors.local import LocalExecutor
    from bench.running.sweep import SweepFile, expand
    from bench.tracking.client import Tracker

    h = host()
    runs = expand(h, SweepFile(**{"datasets": ["orl"], **sweep}))
    tracker = Tracker(uri)
    experiment = tracker.experiment("sweep-tests")
    return execute_runs(h, runs, executor or LocalExecutor(), tracker, experiment, Path(output), force=force)



def identical_command(uri: str, output: str, start_at: float, bits: tuple[int, ...] = (8, 16),
                      epochs: int = 2) -> list[tuple[str, str | None, str]]:
    """One of two identical commands started at the same moment (``start_at``, a
    ``time.time()``): train sweep-tiny at ``bits``; returns (status, run id, run name) per run."""
    import time

    from bench.running.executors.coordinator import execute_runs
    from bench.running.executors.local import LocalExecutor
    from bench.running.sweep import SweepFile, expand
    from bench.tracking.client import Tracker

    h = host()
    runs = expand(h, SweepFile(methods=["sweep-tiny"], bits=list(bits), datasets=["orl"],
                               overrides={"protocol.epochs": epochs}))
    tracker = Tracker(uri)
    experiment = tracker.experiment("identical")
    time.sleep(max(0.0, start_at - time.time()))
    outcome = execute_runs(h, runs, LocalExecutor(), tracker, experiment, Path(output), poll_seconds=0.1)
    return [(r.status, r.run_id, r.spec.name) for r in outcome.results]
