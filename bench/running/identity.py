"""What identifies a run in the tracking store: its configuration hash, its data split and the
code that trains it (:func:`code_fingerprint`), written as tags when the run is opened
(:func:`identity_tags`), plus where it executes (:func:`execution_tags`).

A finished run stands in for a new one only when all three match, so editing a plugin's loss
and rerunning trains again instead of reusing numbers the old code produced.
"""

from __future__ import annotations

import getpass
import hashlib
import inspect
import json
import platform
from pathlib import Path
from typing import Any

import torch

from bench import __version__
from bench.api.methods import DeepMethodConfig, FittedMethod, Method, StrictModel
from bench.api.pluginhost import PluginHost
from bench.api.registry import Entry, Registry
from bench.config.hashing import stable_hash
from bench.config.protocol import BackboneMode, ProtocolConfig
from bench.data.faces import RUN_TAGS, VAL, FaceData
from bench.running.spec import RunSpec
from bench.running.views import run_backbone, trained_on
from bench.tracking import tags as T
from bench.tracking.client import git_commit
from bench.training.acceleration import Acceleration, cpu_has_native_bf16

# the optimizer settings each optimizer reads (bench.training.assembly.build_optimizer); the
# others are not logged for it
OPTIMIZER_ONLY = {"momentum": ("sgd",), "betas": ("adam", "adamw"), "eps": ("adam", "adamw")}


def used_entries(host: PluginHost, spec: RunSpec, config: StrictModel) -> list[Entry]:
    """The registry entries a run uses: its method, its dataset (when registered) and, for a
    deep method, its backbone, head and every loss part."""
    entries = [host.methods.resolve(spec.method)[0]]
    if spec.protocol.dataset in host.datasets:
        entries.append(host.datasets.resolve(spec.protocol.dataset)[0])
    if isinstance(config, DeepMethodConfig):
        parts: list[tuple[Registry, str]] = [(host.backbones, config.backbone.name), (host.heads, config.head.name)]
        parts += [(host.losses, term.name) for term in config.losses]
        entries += [registry.resolve(name)[0] for registry, name in parts]
    elif isinstance(method := host.methods.get(spec.method), FittedMethod):
        backbone = method.embedding_backbone(config)
        if backbone is not None:  # a fitted method on a backbone's embeddings
            entries.append(host.backbones.resolve(backbone.name)[0])
    return entries


def defining_classes(obj: Any) -> list[type]:
    """The classes whose source defines ``obj``: the class of an instance (a method object),
    or the class or function itself, with its base classes from the same top-level package
    (a plugin's own hierarchy; the harness and torch are covered by their versions).

    >>> [c.__name__ for c in defining_classes(json.JSONDecoder())]
    ['JSONDecoder']
    """
    target = getattr(obj, "func", obj)  # functools.partial factories
    if not (inspect.isclass(target) or inspect.isfunction(target)):
        target = type(target)
    if not inspect.isclass(target):
        return [target]
    package = target.__module__.split(".")[0]
    return [c for c in target.__mro__ if c.__module__.split(".")[0] == package]


def source_digest(obj: Any) -> tuple[str, str]:
    """``(module name, sha256 of its source file)`` of the module that defines ``obj``."""
    module = getattr(obj, "__module__", "") or "?"
    try:
        path = inspect.getsourcefile(obj)
        if path is None:
            return module, "no source"
        with open(path, "rb") as fh:
            return module, hashlib.sha256(fh.read()).hexdigest()
    except (OSError, TypeError):
        return module, "no source"


def code_fingerprint(host: PluginHost, spec: RunSpec, method: Method, config: StrictModel) -> str:
    """A hash of the code behind a run: the harness version, the versions of the plugin
    distributions that provide its method and parts, and the source files of the modules
    that define them (the method object's class and its config class included)."""
    entries = used_entries(host, spec, config)
    objects = [method, type(config), *(entry.factory for entry in entries)]
    sources = dict(source_digest(cls) for obj in objects for cls in defining_classes(obj))
    payload = {
        "harness": __version__,
        "plugins": {entry.plugin: entry.version for entry in entries},
        "sources": sources,
    }
    return stable_hash(payload)[:16]


def identity_tags(host: PluginHost, spec: RunSpec, method: Method, config: StrictModel, data: FaceData,
                  protocol_fingerprint: str, code: str) -> dict[str, str]:
    """The tags a run is opened with: what it is, on which data, under which code."""
    tags = {
        T.METHOD: spec.method, T.BITS: str(spec.bits), T.SEED: str(spec.seed),
        T.DATASET: spec.protocol.dataset, T.SPLIT_CHECKSUM: data.checksum(),
        T.SPLIT: spec.protocol.split, T.SPLIT_SEED: str(spec.protocol.split_seed),
        T.PROTOCOL_FINGERPRINT: protocol_fingerprint,
        T.CONFIG_HASH: spec.config_hash(), T.CODE_FINGERPRINT: code, T.STANDARD: spec.protocol.standard,
        T.METHOD_KIND: method.kind, T.OVERRIDES: json.dumps(spec.overrides),
        T.GIT_COMMIT: git_commit(), T.MLFLOW_USER: _user(),
        T.VERSION_HARNESS: __version__, T.VERSION_TORCH: torch.__version__,
        T.VERSION_PLUGINS: json.dumps(host.versions, sort_keys=True),
    }
    if tags[T.GIT_COMMIT] != "unknown":
        tags[T.MLFLOW_GIT_COMMIT] = tags[T.GIT_COMMIT]
    normalisation, augmentation = input_pipeline(spec.protocol, config)
    tags.update({T.INPUT_NORMALISATION: normalisation, T.INPUT_AUGMENTATION: augmentation,
                 T.VALIDATION_IMAGES: str(int((data.split == VAL).sum()))})
    tags.update({f"{T.DATA_PREFIX}{k}": str(v) for k, v in data.meta.get(RUN_TAGS, {}).items()})
    tags.update(pretrained_tags(spec, method, config))
    backbone = run_backbone(method, config, spec.protocol)
    if backbone is not None and trained_on(host, backbone, spec.protocol.dataset):
        tags[T.PRETRAINED_TRAINED_ON] = spec.protocol.dataset
    if isinstance(config, DeepMethodConfig):
        training = config.training
        tags.update({f"{T.LOOP_PREFIX}{name}": str(getattr(training, name)) for name in type(training).added_fields
                     if getattr(training, name) != type(training).model_fields[name].default})
    if spec.protocol.standard == "released":
        tags.update(released_tags(host, spec, method))
    tags.update({f"{T.PREFIX}{k}": v for k, v in method.tags(config).items()})
    return tags


def pretrained_tags(spec: RunSpec, method: Method, config: StrictModel) -> dict[str, str]:
    """A run on a pretrained backbone's features: the backbone, its mode (a fitted method on
    embeddings is frozen), the fine-tuned rate multiplier, how the method's outputs rank
    (fitted methods), and what the dataset says of its images (e.g. face-alignment fallbacks,
    ``FaceData.meta["run_tags"]``)."""
    tags: dict[str, str] = {}
    pretrained = spec.protocol.pretrained
    if isinstance(config, DeepMethodConfig) and pretrained is not None:
        tags.update({T.PRETRAINED_BACKBONE: pretrained.backbone, T.PRETRAINED_MODE: pretrained.mode.value})
        if pretrained.lr_mult is not None:
            tags[T.PRETRAINED_LR_MULT] = str(pretrained.lr_mult)
    elif isinstance(method, FittedMethod):
        tags[T.RANKING] = method.ranking.value
        backbone = method.embedding_backbone(config)
        if backbone is not None:
            tags.update({T.PRETRAINED_BACKBONE: backbone.name, T.PRETRAINED_MODE: BackboneMode.FROZEN.value})
    return tags


def run_params(spec: RunSpec) -> dict[str, Any]:
    """The parameters a run logs: its method config and protocol, without what does not apply
    (an optimizer's settings another optimizer reads, the harness standard's settings on a run
    under its method's own standard).

    >>> from bench.config.protocol import ProtocolConfig
    >>> spec = RunSpec(method="m", bits=8, seed=0, protocol=ProtocolConfig(),
    ...                method_config={"optimizer": {"name": "adam", "lr": 0.1, "momentum": 0.9}})
    >>> p = run_params(spec)
    >>> p["method"]["optimizer"], "harness_standard" in p["protocol"]
    ({'name': 'adam', 'lr': 0.1}, False)
    """
    protocol = spec.protocol.model_dump(mode="json")
    if protocol["standard"] != "harness-standard":
        protocol.pop("harness_standard")
    else:
        protocol["harness_standard"]["optimizer"] = _applicable(protocol["harness_standard"]["optimizer"])
    method = {k: _applicable(v) if k == "optimizer" else v for k, v in spec.method_config.items()}
    return {"method": {"name": spec.method, **method}, "protocol": protocol, "bits": spec.bits, "seed": spec.seed}


def _applicable(optimizer: Any) -> Any:
    if not isinstance(optimizer, dict) or "name" not in optimizer:
        return optimizer
    return {k: v for k, v in optimizer.items() if optimizer["name"] in OPTIMIZER_ONLY.get(k, (optimizer["name"],))}


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``, else :func:`platform.processor`)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def input_pipeline(protocol: ProtocolConfig, config: StrictModel) -> tuple[str, str]:
    """The run's normaliser name and augmentation: a deep method config's own (a released input
    pipeline) where it sets them, else the protocol's."""
    if not isinstance(config, DeepMethodConfig):
        return protocol.normalisation, protocol.augmentation
    return config.normalisation or protocol.normalisation, config.augmentation or protocol.augmentation


def released_tags(host: PluginHost, spec: RunSpec, method: Method) -> dict[str, str]:
    """What a ``standard='released'`` run asks for and every option given on top of it
    (``deviation.released.<what>``): a budget, a batch size, part or ``--set`` overrides,
    a validation split, metrics no plugin registers, a method without released code."""
    protocol, tags = spec.protocol, {}
    deviation = T.RELEASED_DEVIATION_PREFIX
    metrics = method.released_metrics
    tags[T.RELEASED_METRICS] = ",".join(metrics) or "none"
    missing = [name for name in metrics if name not in host.metrics]
    if missing:
        tags[deviation + "metrics"] = f"not registered by any plugin: {','.join(missing)}"
    if method.released_config() is None:
        tags[deviation + "method"] = "the method has no released configuration; its defaults ran"
    if protocol.epochs is not None:
        tags[deviation + "epochs"] = f"--epochs {protocol.epochs} replaces the method's released budget"
    if protocol.batch_size is not None:
        tags[deviation + "batch_size"] = f"--batch-size {protocol.batch_size} replaces the released batch"
    if spec.overrides:
        tags[deviation + "overrides"] = json.dumps(spec.overrides, sort_keys=True)
    if protocol.dataset_options.get("val", 0) != 0:
        tags[deviation + "validation"] = f"val={protocol.dataset_options['val']}: the gallery is not the whole training file"
    return tags


def execution_tags(device: torch.device, acceleration: Acceleration | None) -> dict[str, str]:
    """Where a run actually trains and how it uses its device (precision, memory format,
    compile, ...; none for fitted methods), set by the process that executes it."""
    tags = {T.DEVICE: str(device), T.CPU_MODEL: cpu_model(),
            T.CPU_BF16_NATIVE: str(cpu_has_native_bf16()).lower()}
    if device.type == "cuda":
        tags[T.DEVICE_NAME] = torch.cuda.get_device_name(device)
    if acceleration is not None:
        tags.update({f"{T.PREFIX}{k}": v for k, v in acceleration.tags().items()})
    return tags
