"""Plan runs (method x bits x seed x split seed) and resolve each once into a :class:`PreparedRun`: the
method, its validated config, the device and its acceleration settings, the dataset (its
checksum computed once), the protocol and code fingerprints and the run's tags.

Planning validates every input (methods, bits, parts, settings, device, data) before anything
is written to the tracking store. Executors that run in other processes ship only the
:class:`RunSpec` and prepare it there once, with :func:`prepare_run`.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.api.contract import check_parts
from bench.api.errors import BenchError
from bench.api.methods import DeepMethod, DeepMethodConfig, FittedMethod, StrictModel
from bench.api.pluginhost import PluginHost
from bench.config.device import resolve_device
from bench.config.protocol import (
    BackboneMode,
    PretrainedSpec,
    ProtocolConfig,
    evaluation_fingerprint,
    fingerprint,
)
from bench.config.settings import applies_to, method_config
from bench.data.faces import RUN_TAGS, VAL, FaceData
from bench.data.loading import apply_split, dataset_for
from bench.evaluation.plugin_metrics import registered_metrics
from bench.running.identity import code_fingerprint, identity_tags, input_pipeline
from bench.running.prepared import DeepRun, FittedRun, PreparedRun
from bench.running.request import PartChoice, RunRequest
from bench.running.spec import RunSpec
from bench.running.views import backbone_view, is_pretrained, run_backbone
from bench.tracking import tags as T
from bench.training.acceleration import Acceleration, AccelerationSpec, resolve_acceleration


def prepare_run(
    host: PluginHost,
    spec: RunSpec,
    *,
    data: FaceData | None = None,
    config: StrictModel | None = None,
    device: torch.device | None = None,
    acceleration: Acceleration | None = None,
) -> PreparedRun:
    """Resolve ``spec`` once; what is not given is derived from it (the dataset through the
    per-process cache of :func:`bench.data.loading.dataset_for`)."""
    method = host.methods.get(spec.method)
    if config is None:
        config = method.Config.model_validate(spec.method_config)
    device = device if device is not None else resolve_device(spec.device)
    data = data if data is not None else dataset_for(host, spec.protocol, spec.data_root)
    protocol_fp = fingerprint(spec.protocol, data.pool_checksum(), trained=isinstance(method, DeepMethod))
    code = code_fingerprint(host, spec, method, config)
    tags = {**identity_tags(host, spec, method, config, data, protocol_fp, code),
            T.EVAL_FINGERPRINT: evaluation_fingerprint(spec.protocol, data.pool_checksum()),
            **view_tags(host, spec, method, config, data)}
    if isinstance(method, DeepMethod) and isinstance(config, DeepMethodConfig):
        tags.update(selection_tags(config, data))
        acceleration = acceleration if acceleration is not None else resolve_acceleration(spec.acceleration, device)
        return DeepRun(spec=spec, host=host, device=device, data=data, protocol_fingerprint=protocol_fp,
                       code_fingerprint=code, tags=tags, method=method, config=config, acceleration=acceleration)
    if isinstance(method, FittedMethod):
        return FittedRun(spec=spec, host=host, device=device, data=data, protocol_fingerprint=protocol_fp,
                         code_fingerprint=code, tags=tags, method=method, config=config)
    raise BenchError(f"method '{spec.method}' is a {type(method).__name__}; register a DeepMethod "
                     "(with a DeepMethodConfig) or a FittedMethod")


def view_tags(host: PluginHost, spec: RunSpec, method: DeepMethod | FittedMethod, config: StrictModel,
              data: FaceData) -> dict[str, str]:
    """What the data a run's pretrained backbone reads says of its images (e.g. how many
    faces went unaligned: ``FaceData.meta["run_tags"]`` as ``facehash.data.*``), and the
    view's normaliser; loading the view here also checks it before any run starts."""
    backbone = run_backbone(method, config, spec.protocol)
    if backbone is None:
        return {}
    normalisation, _ = input_pipeline(spec.protocol, config)
    view, view_normalisation = backbone_view(host, spec.protocol, spec.data_root, backbone, data, normalisation)
    if view is data:
        return {}
    tags = {f"{T.DATA_PREFIX}{k}": str(v) for k, v in view.meta.get(RUN_TAGS, {}).items()}
    return {**tags, T.PRETRAINED_INPUT_SIZE: str(view.image_shape[1]),
            T.INPUT_NORMALISATION: view_normalisation}


def check_split_seeds(split_seeds: Sequence[int]) -> list[int]:
    """The split seeds as a list; each must be given once, as an integer >= 0."""
    split_seeds = list(split_seeds)
    if len(set(split_seeds)) != len(split_seeds) or min(split_seeds) < 0:
        raise BenchError(f"--split-seeds {','.join(map(str, split_seeds))}: give each split seed once, "
                         "as an integer >= 0")
    return split_seeds


SELECTION_FALLBACK = "last (val_map asked, no validation split)"  # the tag when val_map cannot be served


def check_selection(spec: RunSpec, config: DeepMethodConfig, data: FaceData, sets: Sequence[tuple[str, Any]]) -> None:
    """Refuse checkpoint selection by validation mAP on data without a validation split when
    the command line asked for it; a method whose default asks for it keeps the last epoch
    (:func:`selection_tags` records that)."""
    if config.training.selection != "val_map" or np.any(data.split == VAL):
        return
    if any(key.endswith("training.selection") for key, _ in sets):
        raise BenchError(
            f"--set training.selection=val_map: dataset '{spec.protocol.dataset}' has no validation split; "
            "give it one (e.g. --set dataset.val=1) or select by train_loss or last")


def selection_tags(config: DeepMethodConfig, data: FaceData) -> dict[str, str]:
    """What chose a deep run's checkpoint: its selection rule, or ``last`` (with the reason)
    when the rule is ``val_map`` and the data has no validation split."""
    training = config.training
    if training.selection == "val_map" and not np.any(data.split == VAL):
        return {T.SELECTION_APPLIED: SELECTION_FALLBACK}
    return {T.SELECTION_APPLIED: training.selection}


def check_deep_config(host: PluginHost, config: DeepMethodConfig) -> None:
    """Every part of a deep config exists and accepts its options, its normaliser exists and
    the checkpoint it starts from is there (nothing is built)."""
    check_parts(host, config)
    if config.normalisation:
        host.normalisers.resolve(config.normalisation)
    if config.training.init_from and not Path(config.training.init_from).is_file():
        raise BenchError(f"training.init_from: no checkpoint at {config.training.init_from}; "
                         "give a finished run's checkpoint.pt (its artifact or bench-output folder)")


def released_protocol(host: PluginHost, protocol: ProtocolConfig) -> ProtocolConfig:
    """The protocol of ``standard='released'``: the gallery is the whole training file, so a
    registered dataset with a ``val`` option gets ``val=0`` unless it was given (a given value
    is kept and tagged as a deviation)."""
    options = dict(protocol.dataset_options)
    if protocol.dataset in host.datasets and "val" not in options:
        factory = host.datasets.get(protocol.dataset)
        if "val" in inspect.signature(getattr(factory, "func", factory)).parameters:
            options["val"] = 0
    return protocol.model_copy(update={"dataset_options": options})


def with_pretrained(host: PluginHost, protocol: ProtocolConfig, backbone: str | None,
                    mode: str | None) -> ProtocolConfig:
    """The protocol with the pretrained backbone deep methods run on: ``--backbone NAME``
    with ``--backbone-mode`` (frozen or fine-tune; default frozen for a
    :class:`PretrainedBackbone`), on top of what ``protocol.pretrained`` already says (a
    sweep file, ``--set protocol.pretrained.lr_mult=X``). Without a mode, a backbone that is
    not pretrained replaces each deep method's own and trains from scratch, as before."""
    given = protocol.pretrained
    if backbone is None:
        if mode is not None or (given is not None and not given.backbone):
            raise BenchError("--backbone-mode and protocol.pretrained need a backbone: "
                             "add --backbone NAME (bench plugins lists the backbones)")
        return protocol
    pretrained = is_pretrained(host, backbone)
    if mode is None and given is None and not pretrained:
        return protocol
    try:
        chosen = BackboneMode(mode) if mode is not None else given.mode if given is not None else BackboneMode.FROZEN
    except ValueError:
        raise BenchError(f"--backbone-mode '{mode}': use frozen (features computed once, only the head and "
                         "the loss train) or fine-tune (the backbone trains at a reduced rate)") from None
    spec = (given or PretrainedSpec()).model_dump()
    spec.update(backbone=backbone, mode=chosen)
    return protocol.model_copy(update={"pretrained": PretrainedSpec(**spec)})


def plan_runs(host: PluginHost, request: RunRequest, *, data: FaceData | None = None) -> list[PreparedRun]:
    """Expand and validate the runs of ``request``, then prepare each; raises
    :class:`BenchError` on any bad input, before anything is loaded or written.

    ``data``: the runs' dataset, when it is not the protocol's registered one (tests, scripts);
    an open-set protocol re-splits it by identity.
    """
    if not request.methods:
        raise BenchError("--method names no method; give one or a comma list, e.g. --method lsh,dcbh")
    protocol, acceleration = resolve_protocol(host, request)
    resolved_device = resolve_device(request.device)
    # the device and its execution settings (e.g. --cuda-graph on without a GPU) fail before any run
    resolved_accel = resolve_acceleration(acceleration, resolved_device)
    host.normalisers.resolve(protocol.normalisation)  # an unknown name fails here, listing the known ones
    registered_metrics(host, opt_in_metrics=protocol.evaluation.opt_in_metrics)  # unknown names fail here
    protocols = split_protocols(protocol, request.split_seeds, given_data=data is not None)
    known = frozenset(host.methods.names())
    planned = [planned for name in request.methods
               for planned in expand_method(host, name, request, protocols, acceleration, known)]
    # after every other check: loading may build the dataset's cache entry
    split_data = {p.split_seed: dataset_for(host, p, request.data_root) if data is None else apply_split(data, p)
                  for p in protocols}
    for spec, config in planned:
        if isinstance(config, DeepMethodConfig):
            check_selection(spec, config, split_data[spec.protocol.split_seed], request.parts.sets)
    return [prepare_run(host, spec, data=split_data[spec.protocol.split_seed], config=config,
                        device=resolved_device, acceleration=resolved_accel) for spec, config in planned]


def resolve_protocol(host: PluginHost, request: RunRequest) -> tuple[ProtocolConfig, AccelerationSpec]:
    """The protocol every run follows (its pretrained backbone, :func:`with_pretrained`; the
    ``released`` standard's gallery, :func:`released_protocol`) and the execution settings
    asked for (the released code's float32 arithmetic under ``standard='released'``)."""
    protocol = with_pretrained(host, request.protocol, request.parts.backbone, request.parts.backbone_mode)
    acceleration = request.acceleration
    if protocol.standard == "released":
        protocol = released_protocol(host, protocol)
        if acceleration.precision == "auto":
            acceleration = acceleration.model_copy(update={"precision": "fp32"})
    return protocol, acceleration


def split_protocols(protocol: ProtocolConfig, split_seeds: Sequence[int] | None, *,
                    given_data: bool) -> list[ProtocolConfig]:
    """One protocol per split seed (default: the protocol's own ``split_seed``)."""
    seeds = check_split_seeds(split_seeds) if split_seeds else [protocol.split_seed]
    if given_data and protocol.split == "closed-set" and seeds != [protocol.split_seed]:
        raise BenchError("split seeds of a closed-set protocol re-split the registered dataset; "
                         "with data given, use the open-set split or drop the split seeds")
    return [protocol.model_copy(update={"split_seed": k}) for k in seeds]


def expand_method(host: PluginHost, name: str, request: RunRequest, protocols: list[ProtocolConfig],
                  acceleration: AccelerationSpec, known: frozenset[str]) -> list[tuple[RunSpec, StrictModel]]:
    """The run specs of one method (each split protocol x bits x seed) with its config,
    validated once: its bits, its config and, for a deep method, its parts."""
    method, parts, protocol = host.methods.get(name), request.parts, protocols[0]
    for b in request.bits:
        problem = method.check_bits(b)
        if problem:
            raise BenchError(f"method '{name}' cannot use {b} bits: {problem}")
    config = method_config(  # one validated config serves every bit length and seed
        name, method, protocol, backbone=parts.backbone, head=parts.head, loss=parts.loss, sets=parts.sets,
        known_methods=known,
    )
    deep = isinstance(config, DeepMethodConfig)
    if isinstance(config, DeepMethodConfig):
        check_deep_config(host, config)
    overrides = run_overrides(name, parts, protocol, deep_method=isinstance(method, DeepMethod), known=known)
    return [(RunSpec(method=name, bits=b, seed=seed, protocol=split_protocol,
                     method_config=config.model_dump(mode="json"), overrides=overrides,
                     data_root=request.data_root, device=request.device,
                     # execution settings concern deep training only; fitted methods keep the defaults
                     acceleration=acceleration if deep else AccelerationSpec()), config)
            for split_protocol in protocols for b in request.bits for seed in request.seeds]


def run_overrides(name: str, parts: PartChoice, protocol: ProtocolConfig, *, deep_method: bool,
                  known: frozenset[str]) -> dict[str, Any]:
    """What a run of method ``name`` was asked to change (its ``overrides``, part of its
    identity): the parts given and the ``--set`` settings that apply to it."""
    pretrained = protocol.pretrained if deep_method else None
    mode = pretrained.mode.value if pretrained is not None else None
    # a sweep's protocol.pretrained.backbone names its runs as --backbone does
    net = parts.backbone if parts.backbone is not None or pretrained is None else pretrained.backbone
    overrides = {"backbone": net, "backbone_mode": mode, "head": parts.head,
                 "loss": ",".join(str(e) for e in parts.loss),
                 "set": [f"{k}={v}" for k, v in parts.sets if applies_to(k, name, known)]}
    return {k: v for k, v in overrides.items() if v}
