"""One tuning trial: train a configuration on the training split of a dataset whose queries
have been removed (:func:`bench.data.faces.without_queries`), score it on the validation split
after every epoch, and log it as an MLflow child run of the tuning parent.

The trial's objective is the validation mAP of the weights the method's own checkpoint rule
keeps (lowest training loss, best validation mAP or last epoch), so a trial scores the model
a normal run of the same configuration would evaluate. It is reported after every epoch
(the value if training stopped there) for pruning; a run whose loss diverges scores 0.
"""

from __future__ import annotations

import dataclasses
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from optuna import TrialPruned

from bench.api.errors import BenchError
from bench.config.protocol import ProtocolConfig
from bench.data.faces import without_queries
from bench.running.execution import build_normaliser, seed_everything, train_deep
from bench.running.executors.coordinator import open_run
from bench.running.executors.worker import host_for, tracker_for
from bench.running.planning import plan_runs
from bench.running.request import PartChoice, RunRequest
from bench.tracking import tags as T
from bench.tracking.status import RunStatus
from bench.training.acceleration import AccelerationSpec
from bench.training.loop import RunFailed

#: Test hook: a ``bench tune`` process SIGKILLs itself when it starts the trial with this
#: number (after opening its run), as a killed process would leave it (tests/test_tuning.py).
KILL_AT_TRIAL_ENV = "FACEHASH_BENCH_TEST_KILL_AT_TRIAL"

Report = Callable[[int, float], None]  # (epoch, objective so far); may raise to prune


@dataclass(frozen=True, kw_only=True)
class TrialPlan:
    """What every trial of one study shares (plain data: it travels to Ray workers). The
    study, its parent run and experiment are filled in as the study is set up and opened."""

    method: str
    bits: int
    seed: int
    protocol: ProtocolConfig
    sets: tuple[tuple[str, Any], ...]
    data_root: str | None
    device: str
    acceleration: AccelerationSpec
    tracking_uri: str
    executor: str
    experiment_id: str = ""
    parent_id: str = ""
    study: str = ""
    plugins: tuple[tuple[str, str | None], ...] = ()
    backbone: str | None = None  # --backbone, as bench run takes it
    backbone_mode: str | None = None  # --backbone-mode (frozen or fine-tune, for a pretrained backbone)

    def prepare(self, params: dict[str, Any], seeds: list[int] | None = None, host: Any = None) -> list:
        """The prepared run(s) of this plan with ``params`` applied as ``--set`` items (one per
        seed; default: the trial seed), validated as ``bench run`` validates them."""
        host = host or host_for(self.plugins)
        return plan_runs(host, RunRequest(
            methods=[self.method], bits=[self.bits], seeds=seeds or [self.seed], protocol=self.protocol,
            parts=PartChoice(backbone=self.backbone, backbone_mode=self.backbone_mode,
                             sets=[*self.sets, *params.items()]),
            data_root=self.data_root, device=self.device, acceleration=self.acceleration))


def trial_tags(run: Any, plan: TrialPlan, trial: str) -> dict[str, str]:
    """A trial run's tags: the run's identity, marked as a trial of the study. It carries no
    config hash, so it never stands in for a finished benchmark run of the same settings."""
    tags = {k: v for k, v in run.tags.items() if k != T.CONFIG_HASH}
    tags.update({T.KIND: "trial", T.TUNE_STUDY: plan.study, T.TUNE_TRIAL: trial,
                 T.TUNE_EXECUTOR: plan.executor, T.TUNE_TRIAL_CONFIG_HASH: run.spec.config_hash()})
    return tags


def run_trial(plan: TrialPlan, params: dict[str, Any], trial: str, report: Report, host: Any = None) -> float:
    """Train and score one configuration; returns its objective (0 when the loss diverged).

    An exception ``report`` raises (a pruning decision) ends the run as a pruned trial and
    propagates; any other failure ends it FAILED and propagates."""
    run = plan.prepare(params, host=host)[0]
    run = dataclasses.replace(run, data=without_queries(run.data))
    run = dataclasses.replace(run, tags=trial_tags(run, plan, trial))
    tracker = tracker_for(plan.tracking_uri)
    run_id = open_run(run, tracker, plan.experiment_id, plan.parent_id)
    tracker.log_params(run_id, {f"trial.{k}": v for k, v in params.items()})
    if os.environ.get(KILL_AT_TRIAL_ENV) == trial:
        os.kill(os.getpid(), signal.SIGKILL)
    scores: dict[int, float] = {}

    def on_epoch(loop: Any, validate: Callable[[], float] | None) -> None:
        if validate is None:
            raise BenchError(f"dataset '{plan.protocol.dataset}' has no validation split; tuning needs one")
        current = loop.history[-1].get("val_map")  # the loop validated this epoch itself
        if current is None:
            current = validate()
            tracker.log_metrics(run_id, {"val_map": current}, loop.epoch)
        scores[loop.epoch] = current
        objective = scores.get(loop.best_epoch, current)  # the weights the method keeps so far
        tracker.log_metrics(run_id, {"objective": objective}, loop.epoch)
        report(loop.epoch, objective)

    seed_everything(run.spec.seed)
    normaliser = build_normaliser(run)
    try:
        result = train_deep(run, normaliser, on_epoch=on_epoch,
                            log_metrics=lambda metrics, step: tracker.log_metrics(run_id, metrics, step)).result
    except RunFailed as exc:
        end_trial(tracker, run_id, "diverged", RunStatus.FAILED, f"{exc}; the trial scores 0")
        return 0.0
    except TrialPruned:
        end_trial(tracker, run_id, "pruned", RunStatus.FINISHED)
        raise
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the next bench tune tries these parameters again
        end_trial(tracker, run_id, "killed", RunStatus.KILLED, "interrupted (Ctrl-C or SIGTERM); rerun bench tune to continue")
        raise
    except BaseException as exc:
        end_trial(tracker, run_id, "failed", RunStatus.FAILED, f"{type(exc).__name__}: {exc}")
        raise
    # the last epoch's objective is the selected weights' score: logged, no second value
    tracker.log_metrics(run_id, {"selected_epoch": float(result.selected_epoch)})
    end_trial(tracker, run_id, "complete", RunStatus.FINISHED)
    return scores.get(result.selected_epoch, scores[max(scores)])


def end_trial(tracker: Any, run_id: str, state: str, status: RunStatus, reason: str = "") -> None:
    """End a trial's MLflow run with its trial state (and the reason it did not finish)."""
    tags = {T.TUNE_TRIAL_STATE: state}
    if reason:
        tags[T.FAILURE_REASON] = reason[:4000]
    tracker.set_tags(run_id, tags)
    tracker.end(run_id, status)
