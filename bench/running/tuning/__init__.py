"""``bench tune``: fair hyperparameter search with Optuna over a method's declared search
space (:mod:`~bench.running.tuning.space`), one study per method and code length in an
Optuna storage beside the MLflow store (:mod:`~bench.running.tuning.study`), trials scored
on the validation split only (:mod:`~bench.running.tuning.trial`), run in process or with Ray
Tune (:mod:`~bench.running.tuning.ray_search`), then the best configuration run through the
normal run path and evaluated on the queries (:mod:`~bench.running.tuning.engine`)."""
