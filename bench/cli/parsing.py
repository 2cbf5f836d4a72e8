"""Command-line text into typed values: comma lists, bit lengths, seeds, ``--set key=value``
items, the ``--loss`` syntax and the execution flags. Every bad value is a one-line
:class:`BenchError`; what the values mean is resolved in :mod:`bench.config.settings`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, get_args

from bench.api.errors import BenchError

if TYPE_CHECKING:  # imported where used: `bench --help` stays free of numpy and torch
    from pydantic import BaseModel

    from bench.config.settings import LossEdit
    from bench.training.acceleration import AccelerationSpec


def parse_list(text: str) -> list[str]:
    """Comma list -> stripped names, empty items dropped.

    >>> parse_list(" lsh, ,dcbh")
    ['lsh', 'dcbh']
    """
    return [item.strip() for item in str(text).split(",") if item.strip()]


MAX_BITS = 4096  # far beyond any published code length; larger ones only fail deep inside a run


def parse_bits(text: str) -> list[int]:
    """``"12,24"`` -> ``[12, 24]``; anything but integers from 1 to ``MAX_BITS`` is a one-line error.

    >>> parse_bits("12, 24,48")
    [12, 24, 48]
    >>> parse_bits("99999999999999999999")
    Traceback (most recent call last):
    bench.api.errors.BenchError: --bits: 99999999999999999999 is above the limit of 4096 bits; use e.g. --bits 12,24,36,48
    """
    bits = []
    for item in str(text).split(","):
        item = item.strip()
        if not item.isdigit() or int(item) < 1:
            raise BenchError(f"--bits: '{item}' is not a positive integer; use e.g. --bits 12,24,36,48")
        if int(item) > MAX_BITS:
            raise BenchError(f"--bits: {item} is above the limit of {MAX_BITS} bits; use e.g. --bits 12,24,36,48")
        bits.append(int(item))
    return bits


def parse_seeds(text: str, option: str = "--seeds") -> list[int]:
    """``"0,1"`` -> ``[0, 1]``; nothing given means seed 0. A seed is an integer from 0 to
    2**32 - 1 (numpy's seeds; a negative one fails there, a larger one would alias).

    >>> parse_seeds("0, 4294967295"), parse_seeds("")
    ([0, 4294967295], [0])
    >>> parse_seeds("-1")
    Traceback (most recent call last):
    bench.api.errors.BenchError: --seeds: '-1' is not an integer from 0 to 4294967295; use e.g. --seeds 0,1,2
    """
    seeds = []
    for item in parse_list(text):
        if not item.isdigit() or int(item) >= 2**32:
            raise BenchError(f"{option}: '{item}' is not an integer from 0 to {2**32 - 1}; use e.g. {option} 0,1,2")
        seeds.append(int(item))
    return seeds or [0]


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
        import yaml

        value = yaml.safe_load(raw) if raw.strip() else ""
        if isinstance(value, str) and _is_float(raw):
            value = float(raw)
        out.append((key.strip(), value))
    return out


def parse_loss(text: str | None) -> list[LossEdit]:
    """``--loss``: ``a,b`` replaces the loss parts; ``+p[:w]`` adds one; ``-p`` removes one.

    >>> [str(e) for e in parse_loss("+center:0.01,-quantization")]
    ['+center:0.01', '-quantization']
    >>> parse_loss("b:2")
    [LossEdit(op='=', name='b', weight=2.0)]
    """
    from bench.config.settings import LossEdit

    items = parse_list(text or "")
    if any(i[0] in "+-" for i in items) and not all(i[0] in "+-" for i in items):
        raise BenchError(f"--loss '{text}': mix of replace and +/- items; use either a,b or +a,-b")
    edits = []
    for item in items:
        op, body = (item[0], item[1:]) if item[0] in "+-" else ("=", item)
        name, _, weight = body.partition(":")
        if op == "-":
            edits.append(LossEdit(op, name))
            continue
        if weight and not _is_float(weight):
            raise BenchError(f"--loss {item}: weight '{weight}' is not a number")
        edits.append(LossEdit(op, name, float(weight) if weight else None))
    return edits


def acceleration_spec(precision: str = "auto", compile: bool = False,
                      device_data_mb: float | None = None, cuda_graph: str = "auto") -> AccelerationSpec:
    """The spec from command-line values; a bad value is a one-line :class:`BenchError`.

    >>> acceleration_spec("bf16").precision
    'bf16'
    """
    from bench.training.acceleration import AccelerationSpec

    check_choice("--precision", precision, AccelerationSpec, "precision",
                 auto="bf16 where the GPU or CPU computes it natively, else fp32")
    if device_data_mb is not None and device_data_mb < 0:
        raise BenchError(f"--device-data-mb {device_data_mb}: give a size in MiB >= 0")
    check_choice("--cuda-graph", cuda_graph, AccelerationSpec, "cuda_graph", auto="eager on CUDA until measured")
    return AccelerationSpec(precision=precision, compile=compile, device_data_mb=device_data_mb,
                            cuda_graph=cuda_graph)


def check_choice(flag: str, value: str, model: type[BaseModel], field: str, auto: str) -> None:
    """Raise a one-line :class:`BenchError` unless ``value`` is one of the choices the ``Literal``
    of ``model.field`` declares (``auto``: what the choice ``auto`` means, for the message).

    >>> from bench.training.acceleration import AccelerationSpec
    >>> check_choice("--cuda-graph", "maybe", AccelerationSpec, "cuda_graph", auto="on CUDA")
    Traceback (most recent call last):
    bench.api.errors.BenchError: --cuda-graph 'maybe': use auto (on CUDA), on or off
    """
    choices = get_args(model.model_fields[field].annotation)
    if value not in choices:
        named = [f"{c} ({auto})" if c == "auto" else str(c) for c in choices]
        raise BenchError(f"{flag} '{value}': use {', '.join(named[:-1])} or {named[-1]}")


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
