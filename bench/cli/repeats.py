"""One rule for repeated options: a list option (``--set``, ``--metric``, ...) adds up; any
other option given twice is refused in one line (click would keep the last one silently:
``--bits 12 --bits 24`` ran 24 bits only)."""

from __future__ import annotations

from typing import Any

from bench.api.errors import BenchError


def leaf_command(command: Any, argv: list[str]) -> tuple[Any, list[str]]:
    """The (sub)command ``argv`` names and the arguments after its name (``command`` is a
    click command or group: typer's vendored click, so it is read by its attributes)."""
    while hasattr(command, "commands") and argv:
        name = next((a for a in argv if not a.startswith("-")), None)
        sub = command.commands.get(name) if name else None
        if sub is None:
            break
        argv = argv[argv.index(name) + 1:]
        command = sub
    return command, argv


def check_repeated_options(command: Any, argv: list[str]) -> None:
    """Refuse a single-valued option given more than once.

    >>> import typer
    >>> demo = typer.Typer()
    >>> @demo.command()
    ... def run(bits: str = "12", set_: list[str] = typer.Option(None, "--set")): ...
    >>> run = typer.main.get_command(demo)
    >>> check_repeated_options(run, ["--set", "a=1", "--set", "b=2", "--bits", "12"])
    >>> check_repeated_options(run, ["--bits", "12", "--bits=24"])
    Traceback (most recent call last):
    bench.api.errors.BenchError: --bits given 2 times (12, 24); it takes one value: give it once (a comma list where it takes several, e.g. --bits 12,24)
    """
    leaf, args = leaf_command(command, argv)
    single: dict[str, Any] = {}
    for param in leaf.params:
        if param.param_type_name == "option" and not param.multiple and not getattr(param, "count", False):
            single.update({name: param for name in (*param.opts, *param.secondary_opts)})
    seen: dict[str, list[str]] = {}
    for i, arg in enumerate(args):
        if arg == "--":
            break
        name, eq, inline = arg.partition("=")
        if name in single:
            param = single[name]
            value = inline if eq else "" if param.is_flag else " ".join(args[i + 1:i + 2])
            seen.setdefault(param.opts[0], []).append(value or name)
    for option, values in seen.items():
        if len(values) > 1 and set(values) <= set(single) | {option}:  # a flag
            raise BenchError(f"{option} given {len(values)} times; give it once")
        if len(values) > 1:
            raise BenchError(f"{option} given {len(values)} times ({', '.join(values)}); it takes one value: give it once "
                             f"(a comma list where it takes several, e.g. --bits 12,24)")
