"""Resolve a method's typed config for one run: defaults, protocol, CLI part overrides
(``--backbone``, ``--head``, ``--loss``) and ``--set key=value`` settings (parsed from text
in :mod:`bench.cli.parsing`).

``--set`` keys:
``dataset.K`` -> dataset option; ``protocol.K`` -> protocol field;
``<method>.K`` -> that method only; ``backbone.K`` / ``head.K`` -> part option
(``.name`` switches the part, ``.lr_mult`` / ``.decay_mult`` scale its learning rate and
weight decay); ``loss.PART.weight`` (or ``.lr_mult``, ``.decay_mult``) / ``loss.PART.K`` ->
a loss term;
anything else is a dotted path into the method config (``optimizer.lr``).
``--loss`` takes ``a,b`` (replace), ``+part[:weight]`` (add), ``-part`` (remove).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from bench.api.errors import BenchError
from bench.api.methods import DeepMethod, LossTerm, Method, PartSpec, StrictModel
from bench.config.protocol import DEFAULT_EPOCHS, BackboneMode, PretrainedSpec, ProtocolConfig

PART_KEYS = ("backbone", "head")
PART_FIELDS = frozenset(PartSpec.model_fields) - {"options"}  # name, lr_mult, decay_mult
TERM_FIELDS = frozenset(LossTerm.model_fields) - {"name", "options"}  # weight, lr_mult, decay_mult


def split_sets(sets: list[tuple[str, Any]]) -> tuple[dict[str, Any], dict[str, Any], list[tuple[str, Any]]]:
    """Separate dataset options, protocol fields and method settings.

    >>> split_sets([("dataset.identities", 5), ("protocol.epochs", 3), ("lr", 1)])
    ({'identities': 5}, {'epochs': 3}, [('lr', 1)])
    """
    dataset, protocol, method = {}, {}, []
    for key, value in sets:
        head, _, rest = key.partition(".")
        if head == "dataset" and rest:
            dataset[rest] = value
        elif head == "protocol" and rest:
            protocol[rest] = value
        else:
            method.append((key, value))
    return dataset, protocol, method


def build_protocol(base: dict[str, Any], protocol_sets: dict[str, Any], dataset_options: dict[str, Any]) -> ProtocolConfig:
    """Validate the protocol from CLI fields plus ``protocol.*`` and ``dataset.*`` settings."""
    data = copy.deepcopy(base)
    for key, value in protocol_sets.items():
        _set_path(data, key.split("."), value, key)
    data.setdefault("dataset_options", {}).update(dataset_options)
    return validate(ProtocolConfig, data, "protocol")


@dataclass(frozen=True)
class LossEdit:
    """One item of ``--loss``: ``op`` is ``=`` (one part of a replacing list), ``+`` (add the
    part, with an optional weight) or ``-`` (remove it).

    >>> str(LossEdit("+", "center", 0.01)), str(LossEdit("=", "a", 2.0)), str(LossEdit("-", "q"))
    ('+center:0.01', 'a:2', '-q')
    """

    op: str
    name: str
    weight: float | None = None

    def __str__(self) -> str:
        text = ("" if self.op == "=" else self.op) + self.name
        if self.weight is None:
            return text
        weight = repr(float(self.weight))
        return f"{text}:{weight.removesuffix('.0')}"


def apply_loss_edits(losses: list[dict[str, Any]], edits: list[LossEdit]) -> list[dict[str, Any]]:
    """The method's loss terms after ``--loss``: ``=`` items replace the list, ``+`` and ``-``
    items edit it.

    >>> [t["name"] for t in apply_loss_edits([{"name": "ce_code", "weight": 1.0}], [LossEdit("+", "center", 0.01)])]
    ['ce_code', 'center']
    >>> apply_loss_edits([{"name": "a"}], [LossEdit("=", "b", 2.0)])
    [{'name': 'b', 'weight': 2.0}]
    """
    if not edits:
        return losses
    out = [] if all(e.op == "=" for e in edits) else copy.deepcopy(losses)
    for edit in edits:
        if edit.op == "-":
            if edit.name not in [t["name"] for t in out]:
                raise BenchError(f"--loss -{edit.name}: the method has no loss part '{edit.name}'")
            out = [t for t in out if t["name"] != edit.name]
            continue
        term: dict[str, Any] = {"name": edit.name}
        if edit.weight is not None:
            term["weight"] = edit.weight
        out.append(term)
    return out


def applies_to(key: str, method_name: str, known_methods: frozenset[str]) -> bool:
    """Whether the ``--set`` key ``key`` concerns ``method_name`` (not another method's
    ``<method>.K`` setting).

    >>> applies_to("dcbh.variant", "dcbh", frozenset({"dcbh", "ddh"})), applies_to("ddh.x", "dcbh", frozenset({"dcbh", "ddh"}))
    (True, False)
    """
    parts = key.split(".")
    return not (len(parts) > 1 and parts[0] != method_name and parts[0] in known_methods)


def method_config(
    method_name: str,
    method: Method,
    protocol: ProtocolConfig,
    *,
    backbone: str | None = None,
    head: str | None = None,
    loss: Sequence[LossEdit] = (),
    sets: Sequence[tuple[str, Any]] = (),
    known_methods: frozenset[str] = frozenset(),
) -> StrictModel:
    """The validated, resolved config of ``method`` for a run under ``protocol``.

    Under ``standard='released'`` a method's :meth:`~bench.api.methods.Method.released_config`
    replaces its defaults (its own budget included); an epoch budget given on top replaces
    the released one (the method's deviation tags record it)."""
    released = method.released_config() if protocol.standard == "released" else None
    data = (released or method.default_config()).model_dump(mode="python")
    deep = isinstance(method, DeepMethod)
    if deep and released is not None:
        if protocol.epochs is not None:
            data["training"].update(epochs=protocol.epochs, iterations=None)
    elif deep:
        data["training"]["epochs"] = protocol.epochs or DEFAULT_EPOCHS
    if deep:
        if protocol.standard == "harness-standard":
            data["optimizer"] = protocol.harness_standard.optimizer.model_dump(mode="python")
            data["training"]["batch_size"] = protocol.harness_standard.batch_size
            data["training"]["selection"] = "val_map"  # one checkpoint rule for every method
        if protocol.batch_size:
            data["training"]["batch_size"] = protocol.batch_size
        if protocol.pretrained is not None:
            data["backbone"] = pretrained_part(protocol.pretrained)
        elif backbone:
            data["backbone"] = {"name": backbone, "options": {}}
        if head:
            data["head"] = {"name": head, "options": {}}
        if loss:
            data["losses"] = apply_loss_edits(data["losses"], list(loss))
    elif backbone and not (head or loss) and isinstance(data.get("backbone"), dict):
        data["backbone"] = {"name": backbone}  # a fitted method on a frozen backbone
    elif backbone or head or loss:
        raise BenchError(
            f"method '{method_name}' is not a deep method; --backbone/--head/--loss apply to deep methods "
            "(and --backbone to the pretrained-feature floors) only"
        )
    for key, value in sets:
        if not applies_to(key, method_name, known_methods):
            continue  # a setting for another method
        parts = key.split(".")
        if parts[0] == method_name:
            parts = parts[1:]
        if parts[:2] == ["training", "epochs"]:
            raise BenchError("--set training.epochs: the epoch budget belongs to the protocol; use --epochs N")
        if deep and protocol.pretrained is not None and parts[0] == "backbone":
            raise BenchError(f"--set {key}: the pretrained backbone's settings belong to the protocol; "
                             "use --backbone, --backbone-mode or --set protocol.pretrained.lr_mult=X")
        _set_method_key(data, parts, value, key, deep)
    config = validate(method.Config, data, f"method '{method_name}'")
    return method.resolve(config)


def pretrained_part(spec: PretrainedSpec) -> dict[str, Any]:
    """The backbone part of a deep method on the protocol's pretrained backbone: its name and,
    fine-tuned, its learning-rate multiplier (frozen, nothing of it trains).

    >>> pretrained_part(PretrainedSpec(backbone="net", mode="fine-tune"))
    {'name': 'net', 'options': {}, 'lr_mult': 0.1}
    """
    part: dict[str, Any] = {"name": spec.backbone, "options": {}}
    if spec.mode is BackboneMode.FINE_TUNE:
        part["lr_mult"] = spec.lr_mult
    return part


def _set_method_key(data: dict, parts: list[str], value: Any, key: str, deep: bool) -> None:
    if deep and parts[0] in PART_KEYS and len(parts) == 2:
        target = data[parts[0]]
        if parts[1] in PART_FIELDS:
            target[parts[1]] = value
        else:
            target.setdefault("options", {})[parts[1]] = value
        return
    if deep and parts[0] == "loss" and len(parts) == 3:
        terms = [t for t in data["losses"] if t["name"] == parts[1]]
        if not terms:
            known = ", ".join(t["name"] for t in data["losses"])
            raise BenchError(f"--set {key}: the method has no loss part '{parts[1]}' (it has {known}); add it with --loss +{parts[1]}")
        if parts[2] in TERM_FIELDS:
            terms[0][parts[2]] = value
        else:
            terms[0].setdefault("options", {})[parts[2]] = value
        return
    _set_path(data, parts, value, key)


def _set_path(data: dict, parts: list[str], value: Any, key: str) -> None:
    node = data
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {} if part not in node else node[part]
            if not isinstance(node[part], dict):
                raise BenchError(f"--set {key}: '{part}' is a value, not a group of settings")
        node = node[part]
    node[parts[-1]] = value


def validate(model: type[BaseModel], data: dict[str, Any], what: str, source: str = "--set") -> Any:
    """``model.model_validate(data)`` with the first error turned into one line that starts
    with ``source`` (the option or file the data came from)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            known = ", ".join(sorted(_field_names(model, err["loc"][:-1])))
            where = f" for {what}" if what else ""
            raise BenchError(f"{source}: unknown key '{loc}'{where}; known keys: {known}") from None
        where = f" of {what}" if what else ""
        raise BenchError(f"{source}: invalid value for '{loc}'{where}: {err['msg']}") from None


def _field_names(model: type[BaseModel], loc: tuple) -> list[str]:
    for part in loc:
        field = model.model_fields.get(str(part)) if isinstance(part, str) else None
        annotation = field.annotation if field is not None else None
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        else:
            return list(model.model_fields)
    return list(model.model_fields)
