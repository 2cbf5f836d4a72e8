"""Plan runs (method x bits x seed) and resolve each once into a :class:`PreparedRun`: the
method, its validated config, the device and its acceleration settings, the dataset (its
checksum computed once), the protocol and code fingerprints and the run's tags.

Planning validates every input (methods, bits, parts, settings, device, data) before anything
is written to the tracking store. Executors that run in other processes ship only the
:class:`RunSpec` and prepare it there once, with :func:`prepare_run`.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from bench.api.contract import check_parts
from bench.api.errors import BenchError
from bench.api.methods import DeepMethod, Method
from bench.api.pluginhost import PluginHost
from bench.config.device import resolve_device
from bench.config.protocol import ProtocolConfig, fingerprint
from bench.config.settings import LossEdit, applies_to, method_config
from bench.data.faces import FaceData
from bench.data.loading import dataset_for
from bench.running.identity import code_fingerprint, identity_tags
from bench.running.spec import RunSpec
from bench.training.acceleration import Acceleration, AccelerationSpec, resolve_acceleration


@dataclass
class PreparedRun:
    """One run with everything resolved, for execution and for the coordinator."""

    spec: RunSpec
    host: PluginHost
    method: Method
    config: Any  # the method's Config, validated once
    device: torch.device
    acceleration: Acceleration | None  # None for fitted methods (they do not train)
    data: FaceData
    protocol_fingerprint: str
    code_fingerprint: str
    tags: dict[str, str]  # what the run is opened with (bench.running.identity.identity_tags)

    @property
    def checksum(self) -> str:
        """The split checksum of the run's data (computed once, kept on the data)."""
        return self.data.checksum()


def prepare_run(
    host: PluginHost,
    spec: RunSpec,
    *,
    data: FaceData | None = None,
    config: Any = None,
    device: torch.device | None = None,
    acceleration: Acceleration | None = None,
) -> PreparedRun:
    """Resolve ``spec`` once; what is not given is derived from it (the dataset through the
    per-process cache of :func:`bench.data.loading.dataset_for`)."""
    method = host.methods.get(spec.method)
    if config is None:
        config = method.Config.model_validate(spec.method_config)
    device = device if device is not None else resolve_device(spec.device)
    if not isinstance(method, DeepMethod):
        acceleration = None
    elif acceleration is None:
        acceleration = resolve_acceleration(spec.acceleration, device)
    data = data if data is not None else dataset_for(host, spec.protocol, spec.data_root)
    protocol_fp = fingerprint(spec.protocol, data.checksum())
    code = code_fingerprint(host, spec, method, config)
    tags = identity_tags(host, spec, method, config, data, protocol_fp, code)
    return PreparedRun(spec, host, method, config, device, acceleration, data, protocol_fp, code, tags)


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


def plan_runs(
    host: PluginHost,
    *,
    methods: list[str],
    bits: list[int],
    seeds: list[int],
    protocol: ProtocolConfig,
    backbone: str | None = None,
    head: str | None = None,
    loss: Sequence[LossEdit] = (),
    sets: Sequence[tuple[str, Any]] = (),
    data_root: str | None = None,
    device: str = "auto",
    acceleration: AccelerationSpec | None = None,
    data: FaceData | None = None,
) -> list[PreparedRun]:
    """Expand and validate runs, then prepare each; raises :class:`BenchError` on any bad input.

    ``data``: the runs' dataset, when it is not the protocol's registered one (tests, scripts).
    """
    acceleration = acceleration or AccelerationSpec()
    if protocol.standard == "released":
        protocol = released_protocol(host, protocol)
        if acceleration.precision == "auto":  # the released code's float32 arithmetic
            acceleration = acceleration.model_copy(update={"precision": "fp32"})
    resolved_device = resolve_device(device)
    # the device and its execution settings (e.g. --cuda-graph on without a GPU) fail before any run
    resolved_accel = resolve_acceleration(acceleration, resolved_device)
    host.normalisers.resolve(protocol.normalisation)  # an unknown name fails here, listing the known ones
    known = frozenset(host.methods.names())
    planned = []
    for name in methods:
        method = host.methods.get(name)
        deep = isinstance(method, DeepMethod)
        overrides = {"backbone": backbone, "head": head, "loss": ",".join(str(e) for e in loss),
                     "set": [f"{k}={v}" for k, v in sets if applies_to(k, name, known)]}
        for b in bits:
            problem = method.check_bits(b)
            if problem:
                raise BenchError(f"method '{name}' cannot use {b} bits: {problem}")
        config = method_config(  # one validated config serves every bit length and seed
            name, method, protocol, backbone=backbone, head=head, loss=loss, sets=sets, known_methods=known,
        )
        if deep:
            check_parts(host, config)
            if config.normalisation:
                host.normalisers.resolve(config.normalisation)
            if config.training.init_from and not Path(config.training.init_from).is_file():
                raise BenchError(f"training.init_from: no checkpoint at {config.training.init_from}; "
                                 "give a finished run's checkpoint.pt (its artifact or bench-output folder)")
        for b in bits:
            for seed in seeds:
                spec = RunSpec(
                    method=name, bits=b, seed=seed, protocol=protocol,
                    method_config=config.model_dump(mode="json"),
                    overrides={k: v for k, v in overrides.items() if v},
                    data_root=data_root, device=device,
                    # execution settings concern deep training only; fitted methods keep the defaults
                    acceleration=acceleration if deep else AccelerationSpec(),
                )
                planned.append((spec, config))
    if data is None:  # after every other check: loading may build the dataset's cache entry
        data = dataset_for(host, protocol, data_root)
    return [prepare_run(host, spec, data=data, config=config, device=resolved_device,
                        acceleration=resolved_accel) for spec, config in planned]
