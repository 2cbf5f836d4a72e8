"""The names of the MLflow tags the harness writes and reads back: the runner writes with
these constants and the reports and stores query with them, so the two never drift.

``column(TAG)`` is the name pandas frames from ``search_runs`` give a tag.
"""

from __future__ import annotations

from bench.api.deviations import deviation_tag

PREFIX = "facehash."

METHOD = "facehash.method"
METHOD_KIND = "facehash.method_kind"
BITS = "facehash.bits"
SEED = "facehash.seed"
DATASET = "facehash.dataset"
SPLIT_CHECKSUM = "facehash.split_checksum"
PROTOCOL_FINGERPRINT = "facehash.protocol_fingerprint"
CONFIG_HASH = "facehash.config_hash"
CODE_FINGERPRINT = "facehash.code_fingerprint"
STANDARD = "facehash.standard"
OVERRIDES = "facehash.overrides"
DEVICE = "facehash.device"
DEVICE_NAME = "facehash.device_name"
RESUMED_FROM_EPOCH = "facehash.resumed_from_epoch"
REEVALUATED = "facehash.reevaluated"
ACCEL_STEP = "facehash.accel.step"
ACCEL_PREFIX = "facehash.accel."  # how a run used its device (precision, memory format, ...)
DEVIATION_PREFIX = PREFIX + deviation_tag("")  # a method's stated deviations
SPLIT = "facehash.split"  # closed-set or open-set
SPLIT_SEED = "facehash.split_seed"
INPUT_NORMALISATION = "facehash.input.normalisation"  # the normaliser a run used (protocol's or method's)
INPUT_AUGMENTATION = "facehash.input.augmentation"
DATA_PREFIX = "facehash.data."  # what the dataset asks its runs to carry (FaceData.meta["run_tags"])
VALIDATION_IMAGES = "facehash.split.validation_images"  # 0: the gallery is the whole training file
RELEASED_METRICS = "facehash.released.metrics"  # plugin metrics a released run asks for by name
LOOP_PREFIX = "facehash.loop."  # each released-loop option of TrainingSpec that a run turns on
INIT_KEPT = "facehash.loop.init_kept"  # model entries training.init_from left as initialised
RELEASED_DEVIATION_PREFIX = PREFIX + deviation_tag("released.")  # options given on top of standard=released

# parent runs
KIND = "facehash.kind"
SWEEP_HASH = "facehash.sweep_hash"
SWEEP_FILE = "facehash.sweep_file"
COMMAND = "facehash.command"
RUNS_RAN = "facehash.runs_ran"
RUNS_SKIPPED = "facehash.runs_skipped"
RUNS_FAILED = "facehash.runs_failed"

# bench tune: the tuning parent (KIND "tuning") and its trial runs (KIND "trial"), and the
# final runs of the best configuration (TUNED_STUDY set)
TUNE_STUDY = "facehash.tune.study"  # the Optuna study of a tuning parent or trial run
TUNE_STORAGE = "facehash.tune.storage"  # where the study lives (an Optuna storage URL)
TUNE_TRIAL = "facehash.tune.trial"  # the trial's number in the study (Ray: its Ray trial id)
TUNE_TRIAL_STATE = "facehash.tune.trial_state"  # complete, pruned or diverged
TUNE_TRIAL_CONFIG_HASH = "facehash.tune.trial_config_hash"  # a trial is never a finished run
TUNE_EXECUTOR = "facehash.tune.executor"  # optuna (in process) or ray
TUNED_STUDY = "facehash.tuned.study"  # a final run of a study's best configuration
TUNED_FAMILY = "facehash.tuned.family"  # the study name shared by one tuning procedure's studies on each split
TUNED_TRIALS = "facehash.tuned.trials"  # finished trials of the study when its best was chosen
TUNED_TRIAL_EPOCHS = "facehash.tuned.trial_epochs"  # the budget per trial (the protocol's epochs)
TUNED_BEST_TRIAL = "facehash.tuned.best_trial"
TUNED_VAL_MAP = "facehash.tuned.val_map"  # the best trial's objective (validation mAP)
TUNED_PARAMS = "facehash.tuned.params"  # JSON of the chosen --set values

FAILURE_REASON = "failure_reason"
GIT_COMMIT = "git_commit"
VERSION_HARNESS = "versions.facehash_bench"
VERSION_TORCH = "versions.torch"
VERSION_PLUGINS = "versions.plugins"
VERSIONS_PREFIX = "versions."
PARENT_RUN = "mlflow.parentRunId"
RUN_NAME = "mlflow.runName"

# run ownership (bench.tracking.ownership) and what a run's data allowed (bench.running.planning)
OWNER = "facehash.owner"
HEARTBEAT = "facehash.heartbeat"
EVAL_FINGERPRINT = "facehash.eval_fingerprint"
SELECTION_APPLIED = "facehash.selection_applied"


# MLflow's own names (mlflow.utils.mlflow_tags), so its UI and search show them
MLFLOW_GIT_COMMIT = "mlflow.source.git.commit"
MLFLOW_USER = "mlflow.user"
CPU_MODEL = "facehash.cpu_model"
CPU_BF16_NATIVE = "facehash.cpu_bf16_native"  # "true" / "false": whether auto precision is bf16 here
MODEL = "facehash.model"  # a deep run's model artifact: "stored", or "not stored: <why>"
CODES_COLLAPSED = "facehash.codes_collapsed"  # set only when they did: "all codes identical" or "N of B bits constant"

# a run on a pretrained backbone's features (bench.config.protocol.PretrainedSpec, or a fitted
# method on embeddings): which backbone, frozen or fine-tune, the fine-tuned rate multiplier
PRETRAINED_BACKBONE = "facehash.pretrained.backbone"
PRETRAINED_MODE = "facehash.pretrained.mode"
PRETRAINED_LR_MULT = "facehash.pretrained.lr_mult"
PRETRAINED_INPUT_SIZE = "facehash.pretrained.input_size"  # the image size the backbone reads, where it is not the protocol's
# the run's dataset when the pretrained network was trained partly on it (its scores are not on unseen faces)
PRETRAINED_TRAINED_ON = "facehash.pretrained.trained_on"
RANKING = "facehash.ranking"  # hamming (binary codes) or cosine (a float top line's embeddings)


def column(tag: str) -> str:
    """The column of ``tag`` in a runs frame.

    >>> column(METHOD)
    'tags.facehash.method'
    """
    return f"tags.{tag}"
