"""A finished run as a retrieval system: its stored model (encoder, input pipeline, code
length) and its stored codes (gallery and queries with their ids and identities), downloaded
once into a working folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.api.errors import BenchError
from bench.data.imagefile import InputPipeline, decode_image
from bench.evaluation.codes import unpack_codes
from bench.tracking import tags as T
from bench.tracking.models import MODEL_DIR, StoredModel, load_model
from bench.tracking.reading import StoreReader
from bench.tracking.status import RunStatus

CODES_FILE = "codes.npz"
EMBEDDINGS_FILE = "embeddings.npz"  # a float top line's run (e.g. dlib-float) stores these instead of codes
CODES_KEYS = ("gallery_codes", "query_codes", "gallery_labels", "query_labels", "gallery_index", "query_index", "bits")


@dataclass
class Codes:
    """A run's stored codes: (N, K) int8 in {-1, +1}, labels, and each image's position in
    the dataset (its id)."""

    bits: int
    gallery: np.ndarray
    gallery_labels: np.ndarray
    gallery_ids: np.ndarray
    query: np.ndarray
    query_labels: np.ndarray
    query_ids: np.ndarray
    identities: np.ndarray  # names by label (empty for runs stored before names were kept)


@dataclass
class Embeddings:
    """A float top line run's stored embeddings (N, D) float32 and labels."""

    gallery: np.ndarray
    gallery_labels: np.ndarray
    query: np.ndarray
    query_labels: np.ndarray


@dataclass
class RunHandle:
    """One finished run of the store, its artifacts downloaded on demand into ``folder``."""

    reader: StoreReader
    run: Any  # the MLflow run
    folder: Path

    @property
    def run_id(self) -> str:
        return self.run.info.run_id

    @property
    def name(self) -> str:
        return self.run.data.tags.get(T.RUN_NAME, self.run_id)

    def identity(self, label: int) -> str:
        """The identity name of ``label`` (the label as text for runs stored without names)."""
        names = self.codes.identities
        return str(names[label]) if 0 <= label < len(names) else str(label)

    @cached_property
    def codes(self) -> Codes:
        path = self._artifact(CODES_FILE, why="only finished child runs of `bench run` store codes")
        with np.load(path) as data:
            missing = set(CODES_KEYS) - set(data.files)
            if missing:
                raise BenchError(f"{CODES_FILE} of run '{self.name}' lacks {', '.join(sorted(missing))}; "
                                 "re-run it with `bench run`")
            bits = int(data["bits"])
            return Codes(bits, unpack_codes(data["gallery_codes"], bits), data["gallery_labels"], data["gallery_index"],
                         unpack_codes(data["query_codes"], bits), data["query_labels"], data["query_index"],
                         data["identities"] if "identities" in data.files else np.array([], dtype=str))

    @property
    def is_float(self) -> bool:
        """The run stored float embeddings (``embeddings.npz``) and no codes."""
        paths = self.reader.artifact_paths(self.run_id)
        return EMBEDDINGS_FILE in paths and CODES_FILE not in paths

    @cached_property
    def embeddings(self) -> Embeddings:
        path = self._artifact(EMBEDDINGS_FILE, why="only finished float top line runs (e.g. dlib-float) store embeddings")
        with np.load(path) as data:
            keys = ("gallery_embeddings", "query_embeddings", "gallery_labels", "query_labels")
            missing = set(keys) - set(data.files)
            if missing:
                raise BenchError(f"{EMBEDDINGS_FILE} of run '{self.name}' lacks {', '.join(sorted(missing))}; "
                                 "re-run it with `bench run`")
            return Embeddings(np.asarray(data["gallery_embeddings"], np.float32), data["gallery_labels"],
                              np.asarray(data["query_embeddings"], np.float32), data["query_labels"])

    @cached_property
    def model(self) -> StoredModel:
        stored = self.run.data.tags.get(T.MODEL, "")
        if stored.startswith("not stored"):
            raise BenchError(f"run '{self.name}' has no model: {stored[len('not stored: '):]}; "
                             "its codes can still be indexed and searched by --query-split")
        if MODEL_DIR not in self.reader.artifact_paths(self.run_id):
            raise BenchError(f"run '{self.name}' has no model artifact (a fitted method, or a run from before "
                             "models were stored); re-run a deep method with `bench run` to encode new images")
        return load_model(self.reader.download(self.run_id, MODEL_DIR, self.folder))

    @property
    def pipeline(self) -> InputPipeline:
        return InputPipeline.from_dict(self.model.metadata["input"])

    def model_file(self, name: str) -> Path:
        """A file stored beside the run's model (e.g. its TorchScript trace)."""
        path = self.folder / MODEL_DIR / name
        self.model  # noqa: B018 - downloads the model folder (and checks the run has one)
        if not path.is_file():
            raise BenchError(f"run '{self.name}' stored its model without {name}; re-run it with `bench run`")
        return path

    def encode(self, images: np.ndarray) -> np.ndarray:
        """Codes (N, K) int8 in {-1, +1} of uint8 images at the model's input size."""
        with torch.no_grad():
            return self.model.encoder(torch.from_numpy(np.ascontiguousarray(images))).numpy()

    def encode_files(self, paths: list[Path], aligned: bool = False) -> np.ndarray:
        """Codes of image files, each read through the run's input pipeline (``aligned``: the
        files are face chips already aligned as the run's dataset aligns them)."""
        images = np.stack([decode_image(read_file(p), self.pipeline, str(p), aligned) for p in paths])
        return self.encode(images)

    def _artifact(self, path: str, why: str) -> Path:
        if path not in self.reader.artifact_paths(self.run_id):
            raise BenchError(f"run '{self.name}' has no {path} artifact; {why}")
        return self.reader.download(self.run_id, path, self.folder)


def read_file(path: Path) -> bytes:
    """The bytes of ``path``; a one-line error when it cannot be read."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise BenchError(f"cannot read {path}: {exc.strerror or exc}; give an existing image file") from None


def open_run(reader: StoreReader, ref: str, folder: Path) -> RunHandle:
    """The finished child run ``ref`` names (id, unique name or id prefix); a run that is
    not finished is a one-line error."""
    run = reader.find(ref)
    name = run.data.tags.get(T.RUN_NAME, run.info.run_id)
    if T.METHOD not in run.data.tags:
        raise BenchError(f"run '{name}' is a parent run; name one of its child runs (`bench runs` lists them)")
    if run.info.status != RunStatus.FINISHED:
        raise BenchError(f"run '{name}' is {run.info.status}, not finished; only a finished run has codes and a "
                         "model (finish it with `bench run`, which resumes it)")
    folder.mkdir(parents=True, exist_ok=True)
    return RunHandle(reader, run, folder)
