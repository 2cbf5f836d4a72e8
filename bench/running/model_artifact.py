"""What a finished deep run keeps to encode new images: its selected weights and input
pipeline as one encoder (:class:`bench.evaluation.encoder.CodeEncoder`), saved as an MLflow
model in the run's ``model/`` artifact (:func:`bench.tracking.models.save_model`), with a
TorchScript trace of the same encoder beside it (``bench export --format torchscript``).

A model that cannot be saved (a backbone ``torch.export`` cannot trace) does not fail the run:
the run is tagged ``facehash.model`` with the reason, and ``bench encode`` says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.data.faces import QUERY, SPLIT_NAMES
from bench.data.imagefile import pipeline_for
from bench.evaluation.encoder import CodeEncoder
from bench.running.inputs import RunInputs
from bench.running.prepared import DeepRun
from bench.running.views import expected_inputs, view_protocol
from bench.tracking import tags as T
from bench.tracking.models import TORCHSCRIPT_FILE, save_model


def model_metadata(run: DeepRun, inputs: RunInputs) -> dict[str, Any]:
    """The metadata a run's model is saved with: method, dataset, the input pipeline of the
    images the model reads (the protocol's, or its pretrained backbone's view of them:
    :mod:`bench.running.views`), the normalisation and the split whose statistics new images take."""
    protocol = run.spec.protocol
    if protocol.pretrained is not None:
        protocol = view_protocol(protocol, expected_inputs(run.host, protocol.pretrained.backbone))
    factory = run.host.datasets.resolve(protocol.dataset)[0].factory if protocol.dataset in run.host.datasets else None
    pipeline = pipeline_for(inputs.samples, factory or (lambda: None), dict(protocol.dataset_options))
    return {"method": run.spec.method, "dataset": protocol.dataset, "input": pipeline.as_dict(),
            "normalisation": inputs.normaliser.kind, "normalisation_split": SPLIT_NAMES[QUERY],
            "config_hash": run.spec.config_hash(), "trained_on": run.device.type}


def store_model(folder: Path, run: DeepRun, model: torch.nn.Module, inputs: RunInputs) -> dict[str, str]:
    """Save the run's encoder (``model`` with its selected weights, reading ``inputs``) into
    ``folder / model``; returns the ``facehash.model`` tag: ``stored`` or why not."""
    if inputs.backbone is not None:
        return {T.MODEL: "not stored: the head trained on a frozen backbone's precomputed features; an encoder "
                         "of images (backbone and head together) is not stored yet"}
    was_device = next(model.parameters()).device
    encoder = CodeEncoder(model.cpu().eval(), inputs.normaliser, QUERY)
    example = np.ascontiguousarray(inputs.part(QUERY)[0][:2])
    try:
        with torch.no_grad():  # one eager pass first: the normaliser keeps real tensors, not traced ones
            encoder(torch.from_numpy(example))
        target = save_model(encoder, folder, example, run.spec.bits, model_metadata(run, inputs))
        traced = torch.jit.trace(encoder, torch.from_numpy(example), check_trace=False)
        partial = target / (TORCHSCRIPT_FILE + ".partial")  # written, then moved in: never half a file
        traced.save(str(partial))
        partial.replace(target / TORCHSCRIPT_FILE)
        return {T.MODEL: "stored"}
    except Exception as exc:  # noqa: BLE001 - the run's results stand without a model
        return {T.MODEL: f"not stored: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"}
    finally:
        model.to(was_device)
