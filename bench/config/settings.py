"""Resolve a method's typed config for one run: defaults, protocol, CLI part overrides
(``--backbone``, ``--head``, ``--loss``) and ``--set key=value`` settings.

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
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from bench.api.errors import BenchError
from bench.api.methods import DeepMethod, LossTerm, Method, PartSpec, StrictModel
from bench.config.protocol import ProtocolConfig

PART_KEYS = ("backbone", "head")
PART_FIELDS = frozenset(PartSpec.model_fields) - {"options"}  # name, lr_mult, decay_mult
TERM_FIELDS = frozenset(LossTerm.model_fields) - {"name", "options"}  # weight, lr_mult, decay_mult


def parse_bits(text: str) -> list[int]:
    """``"12,24"`` -> ``[12, 24]``; anything but positive integers is a one-line error.

    >>> parse_bits("12, 24,48")
    [12, 24, 48]
    """
    bits = []
    for item in str(text).split(","):
        item = item.strip()
        if not item.isdigit() or int(item) < 1:
            raise BenchError(f"--bits: '{item}' is not a positive integer; use e.g. --bits 12,24,36,48")
        bits.append(int(item))
    return bits


def parse_list(text: str) -> list[str]:
    """Comma list -> stripped names, empty items dropped."""
    return [item.strip() for item in str(text).split(",") if item.strip()]


def parse_sets(items: list[str]) -> list[tuple[str, Any]]:
    """``["a.b=1"]`` -> ``[("a.b", 1)]``; values are parsed as YAML scalars/lists.

    >>> parse_sets(["optimizer.lr=1e-3", "dcbh.variant=intended"])
    [('optimizer.lr', 0.001), ('dcbh.variant', 'intended')]
    """
    out = []
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise BenchError(f"--set '{item}': expected key=value, e.g. --set optimizer.lr=0.001")
        value = yaml.safe_load(raw) if raw.strip() else ""
        if isinstance(value, str) and _is_float(raw):
            value = float(raw)
        out.append((key.strip(), value))
    return out


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


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


def apply_loss_spec(losses: list[dict[str, Any]], spec: str) -> list[dict[str, Any]]:
    """Apply ``--loss``: ``a,b`` replaces; ``+p[:w]`` adds; ``-p`` removes.

    >>> [t["name"] for t in apply_loss_spec([{"name": "ce_code", "weight": 1.0}], "+center:0.01")]
    ['ce_code', 'center']
    >>> apply_loss_spec([{"name": "a"}], "b:2")
    [{'name': 'b', 'weight': 2.0}]
    """
    items = parse_list(spec)
    if not items:
        return losses
    if all(i[0] in "+-" for i in items):
        out = copy.deepcopy(losses)
    elif any(i[0] in "+-" for i in items):
        raise BenchError(f"--loss '{spec}': mix of replace and +/- items; use either a,b or +a,-b")
    else:
        out = []
    for item in items:
        op, body = (item[0], item[1:]) if item[0] in "+-" else ("=", item)
        name, _, weight = body.partition(":")
        if op == "-":
            if name not in [t["name"] for t in out]:
                raise BenchError(f"--loss -{name}: the method has no loss part '{name}'")
            out = [t for t in out if t["name"] != name]
            continue
        term: dict[str, Any] = {"name": name}
        if weight:
            if not _is_float(weight):
                raise BenchError(f"--loss {item}: weight '{weight}' is not a number")
            term["weight"] = float(weight)
        out.append(term)
    return out


def method_config(
    method_name: str,
    method: Method,
    protocol: ProtocolConfig,
    *,
    backbone: str | None = None,
    head: str | None = None,
    loss: str | None = None,
    sets: list[tuple[str, Any]] = (),
    known_methods: frozenset[str] = frozenset(),
) -> StrictModel:
    """The validated, resolved config of ``method`` for a run under ``protocol``."""
    data = method.default_config().model_dump(mode="python")
    deep = isinstance(method, DeepMethod)
    if deep:
        data["training"]["epochs"] = protocol.epochs
        if protocol.standard == "harness-standard":
            data["optimizer"] = protocol.harness_standard.optimizer.model_dump(mode="python")
            data["training"]["batch_size"] = protocol.harness_standard.batch_size
        if protocol.batch_size:
            data["training"]["batch_size"] = protocol.batch_size
        if backbone:
            data["backbone"] = {"name": backbone, "options": {}}
        if head:
            data["head"] = {"name": head, "options": {}}
        if loss:
            data["losses"] = apply_loss_spec(data["losses"], loss)
    elif backbone or head or loss:
        raise BenchError(
            f"method '{method_name}' is not a deep method; --backbone/--head/--loss apply to deep methods only"
        )
    for key, value in sets:
        parts = key.split(".")
        if len(parts) > 1 and parts[0] != method_name and parts[0] in known_methods:
            continue  # a setting for another method
        if parts[0] == method_name:
            parts = parts[1:]
        if parts[:2] == ["training", "epochs"]:
            raise BenchError("--set training.epochs: the epoch budget belongs to the protocol; use --epochs N")
        _set_method_key(data, parts, value, key, deep)
    config = validate(method.Config, data, f"method '{method_name}'")
    return method.resolve(config)


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


def validate(model: type[BaseModel], data: dict[str, Any], what: str) -> Any:
    """``model.model_validate(data)`` with the first error turned into one line."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            known = ", ".join(sorted(_field_names(model, err["loc"][:-1])))
            raise BenchError(f"--set: unknown key '{loc}' for {what}; known keys: {known}") from None
        raise BenchError(f"--set: invalid value for '{loc}' of {what}: {err['msg']}") from None


def _field_names(model: type[BaseModel], loc: tuple) -> list[str]:
    for part in loc:
        field = model.model_fields.get(str(part)) if isinstance(part, str) else None
        annotation = getattr(field, "annotation", None)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        else:
            return list(model.model_fields)
    return list(model.model_fields)
