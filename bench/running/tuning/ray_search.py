"""Run a study's trials with Ray Tune on the connected Ray cluster: Ray's ``OptunaSearch``
asks the same Optuna study (same storage, name and seeded TPE sampler) for every trial's
parameters and tells it the results, Ray's ``MedianStoppingRule`` stops trials that fall
below the median (the analogue of the in-process median pruner), and each Ray trial runs
:func:`bench.running.tuning.trial.run_trial` in a Ray worker, reporting every epoch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.running.executors.ray_cluster import import_ray
from bench.running.tuning.space import distributions
from bench.running.tuning.study import sampler_seed
from bench.running.tuning.trial import TrialPlan, run_trial


def ray_trial(config: dict[str, Any], plan: TrialPlan) -> None:
    """The Ray Tune trainable: one trial, its objective reported after every epoch (and once
    more when it differs from the last report: a diverged run's 0)."""
    from ray import tune

    last: dict[str, float] = {}

    def report(epoch: int, value: float) -> None:
        last["value"] = value
        tune.report({"objective": value, "epoch": epoch})

    value = run_trial(plan, dict(config), tune.get_context().get_trial_id(), report)
    if last.get("value") != value:
        tune.report({"objective": value, "epoch": 0})


def optimize_with_ray(study: Any, plan: TrialPlan, setup: Any, n_trials: int, *,
                      storage_path: Path, max_parallel: int | None = None) -> None:
    """``n_trials`` more trials of ``study`` as Ray Tune trials (at most ``max_parallel`` at once;
    one CPU each, and one GPU each when the cluster has GPUs)."""
    import optuna

    ray = import_ray()
    from ray import tune
    from ray.tune.schedulers import FIFOScheduler, MedianStoppingRule
    from ray.tune.search.optuna import OptunaSearch

    searcher = OptunaSearch(space=distributions(setup.space), metric="objective", mode="max",
                            sampler=optuna.samplers.TPESampler(seed=sampler_seed(plan.seed, study)), study_name=setup.name,
                            storage=optuna.storages.RDBStorage(setup.storage))
    scheduler = (MedianStoppingRule(time_attr="training_iteration", metric="objective", mode="max",
                                    grace_period=2, min_samples_required=3) if setup.prune else FIFOScheduler())
    gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
    trainable = tune.with_resources(tune.with_parameters(ray_trial, plan=plan), {"cpu": 1, "gpu": gpus})
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(search_alg=searcher, scheduler=scheduler, num_samples=n_trials,
                                    max_concurrent_trials=max_parallel),
        run_config=tune.RunConfig(name=setup.name, storage_path=str(Path(storage_path).resolve()), verbose=0),
    )
    tuner.fit()
