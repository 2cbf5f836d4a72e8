"""A run's encoder as an MLflow model: the ``pytorch`` flavour (and its pyfunc), saved in
MLflow's ``pt2`` format (a ``torch.export`` program: loading it runs no pickle and needs no
plugin code), with its tensor signature (uint8 images in, int8 codes out) and the metadata
that encoding new images needs (``facehash`` key: code length, input pipeline, normalisation).

Written into a run's artifact folder as ``model/`` by execution; read back by
:mod:`bench.retrieval`.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.api.errors import BenchError

MODEL_DIR = "model"  # the artifact folder of a run's model
METADATA_KEY = "facehash"
TORCHSCRIPT_FILE = "encoder.torchscript.pt"  # the same encoder traced, beside the MLflow model


@dataclass
class StoredModel:
    """An encoder loaded from a run's model folder and what it was saved with."""

    encoder: torch.nn.Module  # uint8 (N, C, H, W) -> int8 (N, bits)
    metadata: dict[str, Any]

    @property
    def bits(self) -> int:
        return int(self.metadata["bits"])


def save_model(encoder: torch.nn.Module, folder: Path, example: np.ndarray, bits: int, metadata: dict[str, Any]) -> Path:
    """Save ``encoder`` (eval mode, on the CPU) as an MLflow model in ``folder / model``,
    replacing an earlier one; ``example``: a few input images (at least 2, so the batch
    dimension stays dynamic). Returns the model folder."""
    import mlflow.pytorch
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Schema, TensorSpec

    target = folder / MODEL_DIR
    partial = folder / (MODEL_DIR + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    channels, height, width = example.shape[1:]
    signature = ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.uint8), (-1, channels, height, width), "images")]),
        outputs=Schema([TensorSpec(np.dtype(np.int8), (-1, bits), "codes")]),
    )
    quiet = logging.getLogger("mlflow")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # its notes on pickle and requirements concern other formats
    try:
        mlflow.pytorch.save_model(
            encoder.eval(), str(partial), serialization_format="pt2", signature=signature,
            input_example=np.ascontiguousarray(example[:2]),
            pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"],
            metadata={METADATA_KEY: {"bits": bits, **metadata}},
        )
    finally:
        quiet.setLevel(level)
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    return target


def load_model(folder: Path) -> StoredModel:
    """The encoder of the MLflow model in ``folder`` (a run's downloaded ``model/``)."""
    import mlflow.pytorch
    from mlflow.models import Model

    try:
        meta = Model.load(str(folder / "MLmodel")).metadata or {}
        encoder = mlflow.pytorch.load_model(str(folder))
    except Exception as exc:  # noqa: BLE001 - a damaged or foreign model folder
        raise BenchError(f"the model in {folder} cannot be loaded ({type(exc).__name__}: {exc}); "
                         "re-run the run with `bench run`") from None
    if METADATA_KEY not in meta:
        raise BenchError(f"the model in {folder} was not saved by facehash-bench (no '{METADATA_KEY}' metadata)")
    return StoredModel(encoder, json.loads(json.dumps(meta[METADATA_KEY])))
