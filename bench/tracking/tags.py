"""The names of the MLflow tags the harness writes and reads back: the runner writes with
these constants and the reports and stores query with them, so the two never drift.

``column(TAG)`` is the name pandas frames from ``search_runs`` give a tag.
"""

from __future__ import annotations

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
DEVIATION_PREFIX = "facehash.deviation."
INPUT_NORMALISATION = "facehash.input.normalisation"  # the normaliser a run used (protocol's or method's)
INPUT_AUGMENTATION = "facehash.input.augmentation"
VALIDATION_IMAGES = "facehash.split.validation_images"  # 0: the gallery is the whole training file
RELEASED_METRICS = "facehash.released.metrics"  # plugin metrics a released run asks for by name
LOOP_PREFIX = "facehash.loop."  # each released-loop option of TrainingSpec that a run turns on
INIT_KEPT = "facehash.loop.init_kept"  # model entries training.init_from left as initialised
RELEASED_DEVIATION_PREFIX = "facehash.deviation.released."  # options given on top of standard=released

# parent runs
KIND = "facehash.kind"
SWEEP_HASH = "facehash.sweep_hash"
SWEEP_FILE = "facehash.sweep_file"
COMMAND = "facehash.command"
RUNS_RAN = "facehash.runs_ran"
RUNS_SKIPPED = "facehash.runs_skipped"
RUNS_FAILED = "facehash.runs_failed"

FAILURE_REASON = "failure_reason"
GIT_COMMIT = "git_commit"
VERSION_HARNESS = "versions.facehash_bench"
VERSION_TORCH = "versions.torch"
VERSION_PLUGINS = "versions.plugins"
VERSIONS_PREFIX = "versions."
PARENT_RUN = "mlflow.parentRunId"
RUN_NAME = "mlflow.runName"


def column(tag: str) -> str:
    """The column of ``tag`` in a runs frame.

    >>> column(METHOD)
    'tags.facehash.method'
    """
    return f"tags.{tag}"
