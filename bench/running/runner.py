"""Plan runs (method x bits x seed) and execute one run: data, fit or train, encode,
evaluate, and log everything to MLflow.

Planning validates every input (methods, bits, parts, settings, data) before anything is
written to the tracking store.
"""

from __future__ import annotations

import json
import random
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from bench import __version__
from bench.api.contract import check_parts
from bench.api.errors import BenchError
from bench.api.interfaces import BuildContext
from bench.api.methods import DeepMethod, FittedMethod, StrictModel
from bench.api.pluginhost import PluginHost
from bench.config.device import resolve_device
from bench.config.hashing import stable_hash
from bench.config.protocol import ProtocolConfig, fingerprint
from bench.config.settings import method_config
from bench.data.faces import QUERY, TRAIN, VAL, FaceData
from bench.data.preprocess import Normaliser
from bench.evaluation import evaluate, save_evaluation_artifacts
from bench.evaluation.codes import pack_codes, sign_codes
from bench.evaluation.encoding import encode_codes
from bench.tracking.client import Tracker, flatten, git_commit
from bench.training.acceleration import AccelerationSpec, resolve_acceleration
from bench.training.assembly import build_parts
from bench.training.batching import BatchSource
from bench.training.loop import RunFailed, TrainCallbacks, Trainer
from bench.training.resume import Resumer


class RunSpec(StrictModel):
    """Everything that defines one run; serialisable, so executors can ship it."""

    method: str
    bits: int
    seed: int
    protocol: ProtocolConfig
    method_config: dict[str, Any]
    overrides: dict[str, Any] = {}
    data_root: str | None = None
    device: str = "auto"
    acceleration: AccelerationSpec = AccelerationSpec()

    @property
    def name(self) -> str:
        return f"{self.method}-{self.bits}b-s{self.seed}"

    def config_hash(self) -> str:
        """Identifies the run's full configuration (not where its data lives or its device).

        A precision asked for explicitly (``--precision fp32|bf16``) is part of it, so such a
        run never stands in for a default one; ``auto`` is not (it resolves per device)."""
        payload = self.model_dump(mode="json", include={"method", "bits", "seed", "protocol", "method_config"})
        if self.acceleration.precision != "auto":
            payload["precision"] = self.acceleration.precision
        return stable_hash(payload)[:16]


@dataclass
class RunResult:
    """What a run produced, for the results table."""

    spec: RunSpec
    status: str
    metrics: dict[str, float] = field(default_factory=dict)
    run_id: str | None = None
    seconds: float = 0.0
    reason: str = ""


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def plan_runs(
    host: PluginHost,
    *,
    methods: list[str],
    bits: list[int],
    seeds: list[int],
    protocol: ProtocolConfig,
    backbone: str | None = None,
    head: str | None = None,
    loss: str | None = None,
    sets: list[tuple[str, Any]] = (),
    data_root: str | None = None,
    device: str = "auto",
    acceleration: AccelerationSpec | None = None,
) -> list[RunSpec]:
    """Expand and validate runs; raises :class:`BenchError` on any bad input."""
    # the device and its execution settings (e.g. --cuda-graph on without a GPU) fail before any run
    resolve_acceleration(acceleration or AccelerationSpec(), resolve_device(device))
    known = frozenset(host.methods.names())
    specs = []
    for name in methods:
        method = host.methods.get(name)
        for b in bits:
            problem = method.check_bits(b)
            if problem:
                raise BenchError(f"method '{name}' cannot use {b} bits: {problem}")
            config = method_config(
                name, method, protocol, backbone=backbone, head=head, loss=loss, sets=sets,
                known_methods=known,
            )
            if isinstance(method, DeepMethod):
                check_parts(host, config)
            overrides = {"backbone": backbone, "head": head, "loss": loss,
                         "set": [f"{k}={v}" for k, v in sets]}
            for seed in seeds:
                specs.append(RunSpec(
                    method=name, bits=b, seed=seed, protocol=protocol,
                    method_config=config.model_dump(mode="json"),
                    overrides={k: v for k, v in overrides.items() if v},
                    data_root=data_root, device=device,
                    # execution settings concern deep training only; fitted methods keep the defaults
                    acceleration=(acceleration if isinstance(method, DeepMethod) else None) or AccelerationSpec(),
                ))
    return specs


@dataclass
class Computed:
    """Codes and evaluation of one run (before logging)."""

    gallery_codes: np.ndarray
    query_codes: np.ndarray
    evaluation: Any
    state: dict | None = None
    extra_metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)  # known only after training


def compute_run(
    host: PluginHost,
    spec: RunSpec,
    data: FaceData,
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
    seed_everything(spec.seed)
    device = resolve_device(spec.device)
    method = host.methods.get(spec.method)
    config = method.Config.model_validate(spec.method_config)
    protocol = spec.protocol
    normaliser = Normaliser(protocol.normalisation, data.images, data.split)
    train_x, train_y = data.part(TRAIN)
    query_x, query_y = data.part(QUERY)
    state = None
    extra: dict[str, float] = {}
    tags: dict[str, str] = {}
    if isinstance(method, FittedMethod):
        def vectors(x: np.ndarray, part: int) -> np.ndarray:
            return normaliser.apply(torch.from_numpy(x), part).flatten(1).numpy()

        encoder = method.fit(vectors(train_x, TRAIN), train_y, spec.bits, spec.seed, config)
        gallery = sign_codes(encoder(vectors(train_x, TRAIN)))
        query = sign_codes(encoder(vectors(query_x, QUERY)))
    else:
        accel = resolve_acceleration(spec.acceleration, device)
        accel.activate()
        ctx = BuildContext(spec.bits, data.num_classes, data.image_shape, spec.seed, train_size=len(train_y))
        model, loss = build_parts(host, config, ctx)
        model, loss = accel.prepare_model(model.to(device)), loss.to(device)
        t = config.training
        source = BatchSource(train_x, train_y, batch_size=t.batch_size, sampler=t.sampler,
                             ids_per_batch=t.ids_per_batch, seed=spec.seed, device=device,
                             memory_cap_bytes=accel.data_cap_bytes)
        trainer = Trainer.for_config(config, model, loss, source, normaliser, accel, protocol.augmentation)
        val_x, val_y = data.part(VAL)
        validate = None
        if len(val_y):
            def validate() -> float:
                g = encode_codes(model, source.images, normaliser, TRAIN, device)
                q = encode_codes(model, val_x, normaliser, VAL, device)
                return evaluate(q, val_y, g, train_y, protocol.evaluation, device=str(device),
                                legacy=False).metrics["map"]
        start, on_epoch_end = None, lambda loop: None
        if resumer is not None:
            start = resumer.restore(model, loss, trainer.optimizer, trainer.scheduler, source.generator)
            if start is not None:
                on_resume(start.epoch)

            def on_epoch_end(loop) -> None:
                resumer.save(loop, model, loss, trainer.optimizer, trainer.scheduler, source.generator)
        result = trainer.fit(TrainCallbacks(validate, log_metrics, on_step, on_epoch_end), start)
        model.load_state_dict(result.state["model"])
        loss.load_state_dict(result.state["loss"])
        state = result.state
        extra = {"selected_epoch": float(result.selected_epoch), "train_steps": float(result.steps)}
        tags = {"facehash.accel.step": result.step_status}
        gallery = encode_codes(model, source.images, normaliser, TRAIN, device)
        query = encode_codes(model, query_x, normaliser, QUERY, device)
    evaluation = evaluate(query, query_y, gallery, train_y, protocol.evaluation, device=str(device))
    return Computed(gallery, query, evaluation, state, extra, tags)


def write_artifacts(folder: Path, spec: RunSpec, data: FaceData, computed: Computed) -> None:
    """Resolved config, packed codes with labels, per-query AP and the selected checkpoint."""
    from bench.training.checkpoint import atomic_save

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False))
    np.savez_compressed(
        folder / "codes.npz",
        gallery_codes=pack_codes(computed.gallery_codes), query_codes=pack_codes(computed.query_codes),
        gallery_labels=data.part(TRAIN)[1], query_labels=data.part(QUERY)[1],
        gallery_index=np.flatnonzero(data.split == TRAIN), query_index=np.flatnonzero(data.split == QUERY),
        bits=np.int64(spec.bits),
    )
    save_evaluation_artifacts(computed.evaluation, folder)
    if computed.state is not None:
        atomic_save(computed.state, folder / "checkpoint.pt")


def device_tags(device: torch.device) -> dict[str, str]:
    """Where a run actually trains (set by the process that executes it)."""
    tags = {"facehash.device": str(device)}
    if device.type == "cuda":
        tags["facehash.device_name"] = torch.cuda.get_device_name(device)
    return tags


def acceleration_tags(host: PluginHost, spec: RunSpec, device: torch.device) -> dict[str, str]:
    """How a deep run uses its device (precision, memory format, compile, ...); none for fitted methods."""
    if not isinstance(host.methods.get(spec.method), DeepMethod):
        return {}
    return {f"facehash.{k}": v for k, v in resolve_acceleration(spec.acceleration, device).tags().items()}


def run_tags(host: PluginHost, spec: RunSpec, data: FaceData, device: torch.device | None) -> dict[str, str]:
    method = host.methods.get(spec.method)
    config = method.Config.model_validate(spec.method_config)
    checksum = data.checksum()
    tags = {
        "facehash.method": spec.method, "facehash.bits": str(spec.bits), "facehash.seed": str(spec.seed),
        "facehash.dataset": spec.protocol.dataset, "facehash.split_checksum": checksum,
        "facehash.protocol_fingerprint": fingerprint(spec.protocol, checksum),
        "facehash.config_hash": spec.config_hash(), "facehash.standard": spec.protocol.standard,
        "facehash.method_kind": method.kind, "facehash.overrides": json.dumps(spec.overrides),
        "git_commit": git_commit(),
        "versions.facehash_bench": __version__, "versions.torch": torch.__version__,
        "versions.plugins": json.dumps(host.versions, sort_keys=True),
    }
    if device is not None:
        tags.update(device_tags(device))
    tags.update({f"facehash.{k}": v for k, v in method.tags(config).items()})
    return tags


def execute_run(
    host: PluginHost,
    spec: RunSpec,
    data: FaceData,
    tracker: Tracker,
    experiment_id: str,
    parent_id: str | None,
    output_dir: Path,
    on_step=lambda step, value: None,
    run_id: str | None = None,
) -> RunResult:
    """Run one spec as a child MLflow run; a failure marks the run FAILED with its reason.

    ``run_id``: an existing run to execute in (opened by a sweep, or an interrupted run to
    continue from its last checkpoint); by default a new child run is opened.
    """
    device = resolve_device(spec.device)
    if run_id is None:
        run_id = open_run(host, spec, data, tracker, experiment_id, parent_id)
    tracker.set_tags(run_id, {**device_tags(device), **acceleration_tags(host, spec, device)})
    tracker.client.update_run(run_id, status="RUNNING")
    folder = output_dir / f"{spec.name}-{spec.config_hash()[:8]}"
    (folder / "traceback.txt").unlink(missing_ok=True)  # from an earlier attempt of this run
    resumer = Resumer(output_dir / "resume" / folder.name, run_id, spec.config_hash())
    start = time.perf_counter()
    try:
        computed = compute_run(
            host, spec, data, log_metrics=lambda m, step: tracker.log_metrics(run_id, m, step),
            on_step=on_step, resumer=resumer,
            on_resume=lambda epoch: tracker.set_tags(run_id, {"facehash.resumed_from_epoch": str(epoch)}),
        )
        seconds = time.perf_counter() - start
        metrics = {**computed.evaluation.metrics, **computed.extra_metrics, "wall_seconds": seconds}
        write_artifacts(folder, spec, data, computed)
        if computed.tags:
            tracker.set_tags(run_id, computed.tags)
        tracker.log_metrics(run_id, metrics)
        tracker.log_artifacts(run_id, folder)
        tracker.end(run_id, "FINISHED")
        resumer.clear()
        return RunResult(spec, "FINISHED", metrics, run_id, seconds)
    except (RunFailed, BenchError, Exception) as exc:  # noqa: BLE001 - every failure is recorded
        reason = str(exc) if isinstance(exc, RunFailed | BenchError) else f"{type(exc).__name__}: {exc}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "traceback.txt").write_text(traceback.format_exc())
        tracker.set_tags(run_id, {"failure_reason": reason[:4000]})
        tracker.log_artifacts(run_id, folder)
        tracker.end(run_id, "FAILED")
        return RunResult(spec, "FAILED", {}, run_id, time.perf_counter() - start, reason)


def open_run(
    host: PluginHost, spec: RunSpec, data: FaceData, tracker: Tracker, experiment_id: str,
    parent_id: str | None,
) -> str:
    """Create the child run of ``spec`` with its tags and parameters; returns its id."""
    run_id = tracker.start_run(experiment_id, spec.name, run_tags(host, spec, data, None), parent_id)
    tracker.log_params(run_id, flatten({"method": {"name": spec.method, **spec.method_config},
                                        "protocol": spec.protocol.model_dump(mode="json"),
                                        "bits": spec.bits, "seed": spec.seed}))
    return run_id
