"""Export a run's encoder for use outside the harness: ONNX (through ``torch.onnx``'s
``torch.export``-based exporter, from the run's stored ``pt2`` program) or TorchScript (the
trace stored beside the model). Both take uint8 images ``images`` (N, C, H, W) at the run's
input size and give int8 ``codes`` (N, K) in {-1, +1}; the input pipeline that turns a file
into that array (grey or colour, crop, size) is written beside them as JSON.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import warnings
from enum import StrEnum
from pathlib import Path

import numpy as np
import torch

from bench.api.errors import BenchError
from bench.retrieval.runs import RunHandle
from bench.tracking.models import TORCHSCRIPT_FILE


class ExportFormat(StrEnum):
    ONNX = "onnx"
    TORCHSCRIPT = "torchscript"


SUFFIX = {ExportFormat.ONNX: ".onnx", ExportFormat.TORCHSCRIPT: ".pt"}


def export_encoder(handle: RunHandle, fmt: ExportFormat, target: Path) -> list[Path]:
    """Write the run's encoder in ``fmt`` to ``target`` (written beside it, then moved in) and
    its input pipeline and code length to ``target`` + ``.json``; returns both paths."""
    stored = handle.model
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    if fmt == ExportFormat.ONNX:
        write_onnx(stored.encoder, handle.pipeline.channels, handle.pipeline.size, partial)
    else:
        shutil.copyfile(handle.model_file(TORCHSCRIPT_FILE), partial)
    partial.replace(target)
    card = target.with_name(target.name + ".json")
    card.write_text(json.dumps({"run_id": handle.run_id, "run": handle.name, "format": fmt.value,
                                "inputs": "images: uint8 (N, C, H, W)", "outputs": "codes: int8 (N, bits) in {-1, +1}",
                                **stored.metadata}, indent=2))
    return [target, card]


def write_onnx(encoder: torch.nn.Module, channels: int, size: int, path: Path) -> None:
    """``encoder`` as an ONNX file with a dynamic batch dimension."""
    example = torch.zeros((2, channels, size, size), dtype=torch.uint8)
    batch = torch.export.Dim("batch")
    quiet = io.StringIO()
    try:
        with contextlib.redirect_stdout(quiet), warnings.catch_warnings():  # the exporter prints its progress
            # a loaded export program reports training mode; it has no dropout or batch statistics left to switch
            warnings.filterwarnings("ignore", message="Exporting a model while it is in training mode")
            program = torch.onnx.export(encoder, (example,), dynamo=True, input_names=["images"],
                                        output_names=["codes"], dynamic_shapes=({0: batch},), external_data=False)
        if program is None:
            raise RuntimeError("the exporter returned no program")
        program.save(str(path), external_data=False)
    except Exception as exc:  # noqa: BLE001 - an operator ONNX lacks
        raise BenchError(f"the encoder cannot be exported to ONNX ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''}); try --format torchscript") from None


def onnx_codes(path: Path, images: np.ndarray) -> np.ndarray:
    """Codes of ``images`` from an exported ONNX encoder (onnxruntime, CPU)."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["codes"], {"images": np.ascontiguousarray(images)})[0]


def torchscript_codes(path: Path, images: np.ndarray) -> np.ndarray:
    """Codes of ``images`` from an exported TorchScript encoder."""
    module = torch.jit.load(str(path))
    with torch.no_grad():
        return module(torch.from_numpy(np.ascontiguousarray(images))).numpy()
