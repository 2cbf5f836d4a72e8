"""The Optuna study of one (method, code length, protocol, space, seed): its storage (by
default a SQLite file ``optuna.db`` beside the MLflow store), a seeded TPE sampler, a median
pruner, one ``bench tune`` process per study at a time (a file lock), and resume: a trial
that a killed process left RUNNING is marked FAIL and its parameters are tried again."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.api.errors import BenchError
from bench.tracking.client import sqlite_path

STUDY_FILE = "optuna.db"
#: trial states that count toward ``--trials`` (a FAIL is a crash or a killed process: retried)
FINISHED_STATES = ("COMPLETE", "PRUNED")


def storage_url(tracking_uri: str, storage: str | None = None) -> str:
    """``storage``, else ``sqlite:///`` ``optuna.db`` beside a SQLite MLflow store, else in the
    current folder.

    >>> storage_url("sqlite:////tmp/s/mlflow.db"), storage_url("x", "postgresql://h/db")
    ('sqlite:////tmp/s/optuna.db', 'postgresql://h/db')
    """
    if storage:
        check_storage(storage)
        return storage
    db = sqlite_path(tracking_uri)
    folder = db.parent if db is not None else Path.cwd()
    return f"sqlite:///{(folder / STUDY_FILE).resolve()}"


def check_storage(url: str) -> None:
    """A SQLite ``--storage`` must be a new or empty file or an Optuna storage: a text file,
    a damaged database or another program's database is a one-line error (left as it is)."""
    from bench.tracking.sqlite_store import OPTUNA_TABLES, check_database_file, check_foreign

    db = sqlite_path(url)
    if db is not None:
        check_database_file(url, db, f"--storage {url}")
        check_foreign(f"--storage {url}", db, OPTUNA_TABLES, "Optuna storage")


def study_name(method: str, bits: int, fingerprint: str, space: str, seed: int, split_seed: int = 0) -> str:
    """The default study name: everything that must match for two runs to continue one study.
    The protocol fingerprint leaves the split seed out, so a split other than 0 adds ``-k<seed>``
    (each split is tuned on its own validation images).

    >>> study_name("ddh", 12, "abc123", "f00d", 0), study_name("ddh", 12, "abc123", "f00d", 0, split_seed=2)
    ('tune-ddh-12b-abc123-f00d-s0', 'tune-ddh-12b-abc123-f00d-s0-k2')
    """
    name = f"tune-{method}-{bits}b-{fingerprint}-{space}-s{seed}"
    return f"{name}-k{split_seed}" if split_seed else name


@contextmanager
def study_lock(url: str, name: str):
    """Hold the study's lock (beside its SQLite file, else in the current folder) while
    tuning, so that a second ``bench tune`` of the same study fails at once."""
    from filelock import FileLock, Timeout

    db = sqlite_path(url)
    lock = FileLock(str((db.parent if db is not None else Path.cwd()) / f".{name}.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise BenchError(f"study '{name}' is being tuned by another bench tune process; wait for it "
                         "to finish or pass another --study") from None
    try:
        yield
    finally:
        lock.release()


def sampler_seed(seed: int, study: Any) -> int:
    """The TPE seed for a session of ``study``: ``seed`` plus the trials it already holds.
    Optuna does not store a sampler's random state, so a continued study reseeded with
    ``seed`` would draw its first configurations again; this keeps sessions reproducible
    and new."""
    return seed + len(study.get_trials(deepcopy=False))


def open_study(name: str, url: str, seed: int, prune: bool) -> Any:
    """Create or load the study: maximise, TPE seeded by :func:`sampler_seed`, median pruning
    (after 3 trials, from the second epoch) unless ``prune`` is off."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    pruner = (optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1) if prune
              else optuna.pruners.NopPruner())
    study = optuna.create_study(study_name=name, storage=url, direction="maximize", load_if_exists=True,
                                pruner=pruner)
    study.sampler = optuna.samplers.TPESampler(seed=sampler_seed(seed, study))
    return study


def finished_trials(study: Any) -> int:
    """Trials that count toward ``--trials``: complete or pruned."""
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=tuple(TrialState[s] for s in FINISHED_STATES)))


def recover_stale(study: Any) -> list[int]:
    """Mark every RUNNING trial FAIL (under the study lock, none is alive: its process was
    killed) and enqueue its parameters again; returns the numbers of the recovered trials."""
    from optuna.trial import TrialState

    recovered = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        # FrozenTrial keeps its storage id private; the storage API needs it to set a state
        study._storage.set_trial_user_attr(trial._trial_id, "stale", True)
        study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        if trial.params:
            study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
        recovered.append(trial.number)
    return recovered


def best_trial(study: Any) -> Any:
    """The complete trial with the highest objective (ties: the earliest)."""
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        raise BenchError(f"study '{study.study_name}' has no complete trial; every trial failed or was "
                         "pruned (see the trial runs' failure_reason tags)")
    return max(complete, key=lambda t: (t.value, -t.number))
