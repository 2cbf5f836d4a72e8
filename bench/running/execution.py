"""Execute one prepared run: seed, fit or train, encode, evaluate, write its artifacts, and log
metrics, tags and artifacts into the MLflow run the coordinator opened for it.

Execution never opens, reopens or closes a run: it returns a :class:`RunResult` (FAILED with
the reason when anything raised) and the coordinator ends the run when the result arrives.
"""

from __future__ import annotations

import random
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from bench.api.errors import BenchError
from bench.api.interfaces import BuildContext
from bench.api.methods import Ranking
from bench.config.paths import no_space, out_of_space
from bench.data.faces import QUERY, TRAIN, VAL
from bench.evaluation import evaluate, save_evaluation_artifacts
from bench.evaluation.codes import collapse_note, pack_codes, sign_codes
from bench.evaluation.encoding import encode_codes
from bench.evaluation.plugin_metrics import registered_metrics
from bench.evaluation.real_valued import evaluate_embeddings
from bench.running.identity import execution_tags, input_pipeline
from bench.running.inputs import RunInputs, deep_inputs, embedding_vectors
from bench.running.model_artifact import store_model
from bench.running.prepared import DeepRun, FittedRun, PreparedRun
from bench.running.spec import RunResult
from bench.tracking import tags as T
from bench.tracking.client import Tracker
from bench.tracking.cost_metrics import face_bytes
from bench.tracking.status import RunStatus
from bench.training.assembly import build_parts
from bench.training.batching import BatchSource
from bench.training.loop import RunFailed, TrainCallbacks, Trainer, TrainResult
from bench.training.resume import Resumer


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass
class Computed:
    """Codes and evaluation of one run (before logging)."""

    gallery_codes: np.ndarray  # (N, K) int8 codes, or (N, D) float32 embeddings when real_valued
    query_codes: np.ndarray
    evaluation: Any
    state: dict | None = None
    extra_metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)  # known only after training
    real_valued: bool = False  # a float top line: embeddings, not codes
    trained: torch.nn.Module | None = None  # a deep method's model (selected weights), for its model artifact
    inputs: RunInputs | None = None  # and what it reads


@dataclass
class Trained:
    """A deep method's trained model (its selected weights loaded) and what trained it."""

    model: Any
    result: TrainResult
    train_images: Any  # the whole training split (the closed-set gallery), held-out images included
    inputs: RunInputs  # what the model reads (images, or a frozen backbone's features)
    tags: dict[str, str] = field(default_factory=dict)


def build_normaliser(run: PreparedRun) -> Any:
    """The run's input normaliser: its method config's own (a released input pipeline) where
    it names one, else the protocol's, fitted on the training split."""
    normalisation, _ = input_pipeline(run.spec.protocol, run.config)
    return run.host.normalisers.build(normalisation, run.data.images, run.data.split)


def validation_scorer(run: PreparedRun, model: Any, gallery_images: Any, inputs: RunInputs) -> Callable[[], float] | None:
    """The validation mAP of ``model`` now (validation images against ``gallery_images``, the
    training split), or ``None`` when the dataset has no validation split. Never reads the queries."""
    val_x, val_y = inputs.part(VAL)
    if not len(val_y):
        return None
    train_y = run.data.part(TRAIN)[1]
    normaliser = inputs.normaliser

    def validate() -> float:
        g = encode_codes(model, gallery_images, normaliser, TRAIN, run.device)
        q = encode_codes(model, val_x, normaliser, VAL, run.device)
        return evaluate(q, val_y, g, train_y, run.spec.protocol.evaluation, device=str(run.device),
                        plugin_metrics={}).metrics["map"]
    return validate


def train_deep(
    run: DeepRun,
    normaliser: Any,
    *,
    log_metrics=lambda metrics, step: None,
    on_step=lambda step, value: None,
    resumer: Resumer | None = None,
    on_resume=lambda epoch: None,
    on_epoch=None,
) -> Trained:
    """Train a deep method on the training split (validating on the validation split only)
    and load its selected weights. ``on_epoch(loop, validate)``, when given, is called after
    every epoch with the loop state and the validation scorer (``bench tune`` reports there).

    ``training.holdout_fraction`` trains on the first part of the training split only (Keras'
    ``validation_split``, before shuffling); the gallery stays the whole split.
    ``training.init_from`` starts from another run's matching weights (tagged).
    """
    spec, data, device, config = run.spec, run.data, run.device, run.config
    inputs = deep_inputs(run, normaliser)
    train_x, train_y = inputs.part(TRAIN)
    accel = run.acceleration
    accel.activate()
    t = config.training
    kept = int(len(train_y) * (1 - t.holdout_fraction))  # Keras validation_split: the first part trains
    ctx = BuildContext(spec.bits, data.train_classes, tuple(train_x.shape[1:]), spec.seed, train_size=kept)
    model, loss = build_parts(run.host, config, ctx, backbone=inputs.backbone)
    tags: dict[str, str] = dict(inputs.tags)
    if t.init_from:
        from bench.training.checkpoint import load_matching

        tags[T.INIT_KEPT] = ",".join(load_matching(model, Path(t.init_from))) or "none"
    model, loss = accel.prepare_model(model.to(device)), loss.to(device)
    source = BatchSource(train_x[:kept], train_y[:kept], batch_size=t.batch_size, sampler=t.sampler,
                         ids_per_batch=t.ids_per_batch, seed=spec.seed, device=device,
                         memory_cap_bytes=accel.data_cap_bytes)
    trainer = Trainer.for_config(config, model, loss, source, inputs.normaliser, accel, inputs.augmentation)
    train_images = source.images if kept == len(train_y) else train_x
    validate = validation_scorer(run, model, train_images, inputs)
    start = None
    if resumer is not None:
        start = resumer.restore(model, loss, trainer.optimizer, trainer.scheduler, source.generator)
        if start is not None:
            on_resume(start.epoch)

    def on_epoch_end(loop) -> None:
        if resumer is not None:
            resumer.save(loop, model, loss, trainer.optimizer, trainer.scheduler, source.generator)
        if on_epoch is not None:
            on_epoch(loop, validate)
    result = trainer.fit(TrainCallbacks(validate, log_metrics, on_step, on_epoch_end), start)
    model.load_state_dict(result.state["model"])
    loss.load_state_dict(result.state["loss"])
    return Trained(model, result, train_images, inputs, tags)


def compute_run(
    run: PreparedRun,
    *,
    log_metrics=lambda metrics, step: None,
    on_step=lambda step, value: None,
    resumer: Resumer | None = None,
    on_resume=lambda epoch: None,
) -> Computed:
    """Fit or train the method, encode gallery and queries, evaluate. No tracking here.

    With a ``resumer``, a deep method checkpoints every epoch and continues from the run's
    last checkpoint when one exists (``on_resume(epoch)`` is called then).
    """
    spec, data, device = run.spec, run.data, run.device
    seed_everything(spec.seed)
    protocol = spec.protocol
    normaliser = build_normaliser(run)
    train_x, train_y = data.part(TRAIN)
    query_x, query_y = data.part(QUERY)
    gallery_part = data.gallery_part  # TRAIN (closed-set) or GALLERY (open-set: other identities)
    gallery_x, gallery_y = (train_x, train_y) if gallery_part == TRAIN else data.part(gallery_part)
    state = model = inputs = None
    extra: dict[str, float] = {}
    tags: dict[str, str] = {}
    if isinstance(run, FittedRun):
        method = run.method
        embeddings = embedding_vectors(run, normaliser) if method.inputs == "embeddings" else None

        def vectors(x: np.ndarray, part: int) -> np.ndarray:
            if embeddings is not None:
                return embeddings[data.split == part]
            normalised = normaliser.apply(torch.from_numpy(x), part)
            return (normalised.flatten(1) if method.inputs == "vectors" else normalised).numpy()

        encoder = method.fit(vectors(train_x, TRAIN), train_y, spec.bits, spec.seed, run.config)
        if method.ranking is Ranking.COSINE:  # a float top line: exact real-valued ranking
            gallery_f, query_f = (np.asarray(encoder(vectors(x, part)), np.float32)
                                  for x, part in ((gallery_x, gallery_part), (query_x, QUERY)))
            evaluation = evaluate_embeddings(query_f, query_y, gallery_f, gallery_y, protocol.evaluation)
            return Computed(gallery_f, query_f, evaluation, extra_metrics={"bytes_per_face": face_bytes(dim=gallery_f.shape[1])},
                            real_valued=True)
        gallery = sign_codes(encoder(vectors(gallery_x, gallery_part)))
        query = sign_codes(encoder(vectors(query_x, QUERY)))
    else:
        trained = train_deep(run, normaliser, log_metrics=log_metrics, on_step=on_step, resumer=resumer,
                             on_resume=on_resume)
        result, inputs, model = trained.result, trained.inputs, trained.model
        state = result.state
        extra = {"selected_epoch": float(result.selected_epoch), "train_steps": float(result.steps)}
        tags = {**trained.tags, T.ACCEL_STEP: result.step_status}
        gallery_in = trained.train_images if gallery_part == TRAIN else inputs.part(gallery_part)[0]
        gallery = encode_codes(trained.model, gallery_in, inputs.normaliser, gallery_part, device)
        query = encode_codes(trained.model, inputs.part(QUERY)[0], inputs.normaliser, QUERY, device)
    evaluation = evaluate(query, query_y, gallery, gallery_y, protocol.evaluation, device=str(device),
                          plugin_metrics=registered_metrics(
                              run.host, opt_in_metrics=protocol.evaluation.opt_in_metrics))
    extra["bytes_per_face"] = face_bytes(spec.bits)
    collapsed = collapse_note(gallery)
    if collapsed:  # flagged in the results table and `bench runs`
        tags[T.CODES_COLLAPSED] = collapsed
    return Computed(gallery, query, evaluation, state, extra, tags, trained=model, inputs=inputs)


def write_artifacts(folder: Path, run: PreparedRun, computed: Computed) -> None:
    """Resolved config, packed codes with labels, per-query AP, the selected checkpoint and,
    for a deep run, its model (:mod:`bench.running.model_artifact`; the reason when it is not stored)."""
    from bench.training.checkpoint import atomic_save

    spec, data = run.spec, run.data
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False))
    where: dict[str, Any] = {"gallery_labels": data.part(data.gallery_part)[1], "query_labels": data.part(QUERY)[1],
             "gallery_index": np.flatnonzero(data.split == data.gallery_part),
             "query_index": np.flatnonzero(data.split == QUERY),
             "identities": np.asarray(data.identities, dtype=str)}  # names by label (search results show them)
    if computed.real_valued:  # a float top line keeps its embeddings
        np.savez_compressed(folder / "embeddings.npz", gallery_embeddings=computed.gallery_codes,
                            query_embeddings=computed.query_codes, **where)
    else:
        np.savez_compressed(
            folder / "codes.npz",
            gallery_codes=pack_codes(computed.gallery_codes), query_codes=pack_codes(computed.query_codes),
            **where, bits=np.int64(spec.bits),
        )
    save_evaluation_artifacts(computed.evaluation, folder)
    if computed.state is not None:
        atomic_save(computed.state, folder / "checkpoint.pt")
    if computed.trained is not None and computed.inputs is not None and isinstance(run, DeepRun):
        computed.tags.update(store_model(folder, run, computed.trained, computed.inputs))


def execute_run(
    run: PreparedRun,
    tracker: Tracker,
    run_id: str,
    output_dir: Path,
    on_step=lambda step, value: None,
) -> RunResult:
    """Execute ``run`` inside the open MLflow run ``run_id`` (continuing from its last epoch
    checkpoint when one exists); a failure is logged with its traceback and returned as a
    FAILED result with the reason."""
    spec = run.spec
    tracker.set_tags(run_id, execution_tags(run.device, run.acceleration if isinstance(run, DeepRun) else None))
    folder = output_dir / spec.folder_name
    (folder / "traceback.txt").unlink(missing_ok=True)  # from an earlier attempt of this run
    resumer = Resumer(output_dir / "resume" / folder.name, run_id, spec.config_hash())
    start = time.perf_counter()
    try:
        computed = compute_run(
            run, log_metrics=lambda m, step: tracker.log_metrics(run_id, m, step),
            on_step=on_step, resumer=resumer,
            on_resume=lambda epoch: tracker.set_tags(run_id, {T.RESUMED_FROM_EPOCH: str(epoch)}),
        )
        seconds = time.perf_counter() - start
        metrics = {**computed.evaluation.metrics, **computed.extra_metrics, "wall_seconds": seconds}
        write_artifacts(folder, run, computed)
        if computed.tags:
            tracker.set_tags(run_id, computed.tags)
        tracker.log_metrics(run_id, metrics)
        tracker.log_artifacts(run_id, folder)
        resumer.clear()
        return RunResult(spec, RunStatus.FINISHED, metrics, run_id, seconds, collapsed=computed.tags.get(T.CODES_COLLAPSED, ""))
    except (RunFailed, BenchError, Exception) as exc:  # noqa: BLE001 - every failure is recorded
        reason = str(exc) if isinstance(exc, RunFailed | BenchError) else f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, BenchError) and out_of_space(exc, folder):
            reason = str(no_space(folder, "free space there or pass another --output"))
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "traceback.txt").write_text(traceback.format_exc())
            tracker.log_artifacts(run_id, folder)
        except OSError:  # a full disk: the reason still reaches the store
            pass
        return RunResult(spec, RunStatus.FAILED, {}, run_id, time.perf_counter() - start, reason)
