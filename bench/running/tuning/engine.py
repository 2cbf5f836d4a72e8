"""Tune one method at one code length: validate everything first, then under the study's lock
open (or continue) its Optuna study and its MLflow tuning parent run, recover the trials a
killed process left behind, run the trials still missing toward ``--trials`` (in process, or
with Ray Tune), and prepare the best configuration's final runs for the normal run path.

Fairness: every method gets the same number of finished trials (complete or pruned) and the
same budget per trial (the protocol's epochs, which the final runs train for too), and every
trial is scored on the validation split of a dataset without its queries.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from bench.api.errors import BenchError
from bench.api.search import Dimension
from bench.running.planning import PreparedRun
from bench.running.tuning import study as S
from bench.running.tuning.space import corners, space_hash, suggest
from bench.running.tuning.trial import TrialPlan, run_trial
from bench.tracking import tags as T
from bench.tracking.client import Tracker
from bench.tracking.status import ACTIVE, RunStatus


@dataclass
class StudySetup:
    """One study, validated: its plan, space, name and storage."""

    plan: TrialPlan
    space: dict[str, Dimension]
    name: str
    storage: str
    fingerprint: str
    trials: int
    prune: bool
    family: str  # the study name shared by this tuning procedure's studies on every split


@dataclass
class StudyResult:
    """Where a study stands after ``bench tune``."""

    setup: StudySetup
    parent_id: str
    finished: int
    ran: int
    recovered: list[int] = field(default_factory=list)
    best_number: int = -1
    best_value: float = float("nan")
    best_params: dict[str, Any] = field(default_factory=dict)


def setup_study(host: Any, plan: TrialPlan, space: dict[str, Dimension], trials: int, *,
                storage: str, name: str | None = None, prune: bool = True) -> StudySetup:
    """Check the space (every key at both ends of its range; :func:`method_space` checked the
    method) and the data before anything is written; the default study name encodes method,
    bits, protocol, space and seed."""
    if trials < 1:
        raise BenchError(f"--trials {trials}: give at least 1 trial")
    for params in corners(space):
        run = plan.prepare(params, host=host)[0]
    fingerprint = run.protocol_fingerprint
    if name:  # a named study is its own family
        family = name
    else:
        default = functools.partial(S.study_name, plan.method, plan.bits, fingerprint, space_hash(space), plan.seed)
        family, name = default(), default(split_seed=plan.protocol.split_seed)
    return StudySetup(dataclasses.replace(plan, study=name), space, name, storage, fingerprint, trials, prune,
                      family)


def tuning_parent(tracker: Tracker, setup: StudySetup, command: str) -> str:
    """The study's tuning parent run (reopened when the study continues)."""
    query = f"tags.`{T.KIND}` = 'tuning' and tags.`{T.TUNE_STUDY}` = '{setup.name}'"
    found = tracker.client.search_runs([setup.plan.experiment_id], query, max_results=1,
                                       order_by=["attributes.start_time DESC"])
    if found:
        tracker.client.update_run(found[0].info.run_id, status=RunStatus.RUNNING)
        return found[0].info.run_id
    plan = setup.plan
    return tracker.start_run(plan.experiment_id, setup.name, {
        T.KIND: "tuning", T.TUNE_STUDY: setup.name, T.TUNE_STORAGE: setup.storage,
        T.TUNE_EXECUTOR: plan.executor, T.DATASET: plan.protocol.dataset,
        T.PROTOCOL_FINGERPRINT: setup.fingerprint, T.COMMAND: command,
    })


KILLED_REASON = "its bench tune process was killed; the trial's parameters were tried again"


def end_stale_runs(tracker: Tracker, setup: StudySetup, state: str = "killed", status: RunStatus = RunStatus.KILLED,
                   reason: str = KILLED_REASON) -> None:
    """End the trial runs left open: by a killed process (their trials are retried), or, after
    Ray Tune, trials its scheduler stopped early (``state="stopped"``)."""
    query = f"tags.`{T.TUNE_STUDY}` = '{setup.name}' and tags.`{T.KIND}` = 'trial'"
    for run in tracker.client.search_runs([setup.plan.experiment_id], query, max_results=1000):
        if run.info.status in ACTIVE:
            tracker.set_tags(run.info.run_id, {T.TUNE_TRIAL_STATE: state, T.FAILURE_REASON: reason})
            tracker.end(run.info.run_id, status)


def tune_study(host: Any, setup: StudySetup, tracker: Tracker, command: str, ray_options: dict | None = None) -> StudyResult:
    """Run the trials still missing toward ``setup.trials``; returns the study's best trial.
    ``ray_options`` (``max_parallel``): run them with Ray Tune on the connected Ray cluster."""
    with S.study_lock(setup.storage, setup.name):
        study = S.open_study(setup.name, setup.storage, setup.plan.seed, setup.prune)
        study.set_user_attr("method", setup.plan.method)
        study.set_user_attr("bits", setup.plan.bits)
        study.set_user_attr("trial_epochs", setup.plan.protocol.epochs)
        parent_id = tuning_parent(tracker, setup, command)
        plan = dataclasses.replace(setup.plan, parent_id=parent_id)
        recovered = S.recover_stale(study)
        end_stale_runs(tracker, setup)
        before = S.finished_trials(study)
        try:
            if setup.trials > before:
                if ray_options is None:
                    _optimize(host, study, plan, setup.space, setup.trials - before)
                else:
                    from bench.running.tuning.ray_search import optimize_with_ray

                    optimize_with_ray(study, plan, setup, setup.trials - before, **ray_options)
                    end_stale_runs(tracker, setup, "stopped", RunStatus.FINISHED,
                                   "stopped early by Ray Tune's MedianStoppingRule")
        except BaseException:
            tracker.end(parent_id, RunStatus.KILLED)
            raise
        finished = S.finished_trials(study)
        best = S.best_trial(study)
        tracker.set_tags(parent_id, {T.TUNED_TRIALS: str(finished), T.TUNED_BEST_TRIAL: str(best.number),
                                     T.TUNED_VAL_MAP: f"{best.value:.6f}", T.TUNED_PARAMS: json.dumps(best.params)})
        tracker.log_metrics(parent_id, {"best_val_map": best.value, "finished_trials": finished})
        tracker.end(parent_id, RunStatus.FINISHED)
    return StudyResult(setup, parent_id, finished, finished - before, recovered, best.number, best.value,
                       dict(best.params))


def _optimize(host: Any, study: Any, plan: TrialPlan, space: dict[str, Dimension], n_trials: int) -> None:
    """Optuna in this process: each trial suggests, trains, reports every epoch, may be pruned."""
    import optuna

    def objective(trial: Any) -> float:
        params = suggest(trial, space)

        def report(epoch: int, value: float) -> None:
            trial.report(value, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"validation mAP {value:.4f} below the median at epoch {epoch}")
        return run_trial(plan, params, str(trial.number), report, host)

    quiet = _NoInterruptTraceback()
    optimize_log = logging.getLogger("optuna.study._optimize")
    optimize_log.addFilter(quiet)
    try:
        study.optimize(objective, n_trials=n_trials, gc_after_trial=False)
    finally:
        optimize_log.removeFilter(quiet)


class _NoInterruptTraceback(logging.Filter):
    """Drop Optuna's "Trial failed" warning with a traceback for Ctrl-C / SIGTERM (the trial's
    run says ``killed``; the command stops as Ctrl-C stops it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], KeyboardInterrupt))


def final_runs(host: Any, result: StudyResult, seeds: list[int]) -> list[PreparedRun]:
    """The best configuration's runs, one per seed, tagged as tuned, for the normal run path
    (:func:`bench.running.executors.coordinator.execute_runs`): evaluated on the queries."""
    setup = result.setup
    runs = setup.plan.prepare(result.best_params, seeds=seeds, host=host)
    tuned = {T.TUNED_STUDY: setup.name, T.TUNED_FAMILY: setup.family, T.TUNED_TRIALS: str(result.finished),
             T.TUNED_TRIAL_EPOCHS: str(setup.plan.protocol.epochs), T.TUNED_BEST_TRIAL: str(result.best_number),
             T.TUNED_VAL_MAP: f"{result.best_value:.6f}", T.TUNED_PARAMS: json.dumps(result.best_params),
             T.TUNE_STORAGE: setup.storage}
    for run in runs:
        run.tags.update(tuned)
    return runs
