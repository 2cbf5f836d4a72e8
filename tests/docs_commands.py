"""Commands and files a reader would copy from README.md and docs/*.md, and how the docs
test runs them on tiny budgets (used by tests/test_docs.py).

A ```bash block runs unless the line before it is ``<!-- not-run: <reason> -->``; a yaml
block whose first line is ``# NAME`` is the file ``NAME`` the commands may use. ``bench run``
and ``bench sweep`` keep their methods, options and settings but run one code length, one
seed and one epoch on a tiny ``synthfaces`` set, in a temporary store and folder (the
dataset a command names must exist); ``bench cost`` measures galleries of 1,000 faces. Setup lines (the install script, the test suite
itself) are skipped.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
NOT_RUN = re.compile(r"^<!--\s*not-run:(.*?)-->\s*$")
SETUP = ("bash scripts/install.sh", "pytest")  # the environment and this very test suite
TINY_DATA = ["--dataset", "synthfaces", "--set", "dataset.identities=6", "--set", "dataset.images_per_identity=6",
             "--set", "dataset.val=1", "--set", "dataset.query=2"]
TINY_SWEEP = {"dataset.identities": 6, "dataset.images_per_identity": 6, "dataset.val": 1, "dataset.query": 2}
DROPPED = ("--tracking-uri", "--output", "--data-root")  # the test's store, folder and data instead


@dataclass
class Block:
    """One fenced block of a document."""

    doc: Path
    line: int
    lang: str
    text: str
    not_run: str | None = None  # the reason given, when marked

    def where(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.line}"


@dataclass
class Plan:
    """What a block's commands become: argv lists for ``bench`` and the names of the
    datasets they named (which must exist)."""

    commands: list[list[str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    datasets: list[str] = field(default_factory=list)


def blocks(doc: Path) -> list[Block]:
    """Every fenced block of ``doc`` with its language and not-run mark.

    >>> import tempfile; p = Path(tempfile.mkdtemp()) / "d.md"
    >>> _ = p.write_text("<!-- not-run: needs a GPU -->\\n```bash\\nbench x\\n```\\n```yaml\\n# a.yaml\\nk: 1\\n```\\n")
    >>> [(b.lang, b.text, b.not_run) for b in blocks(p)]
    [('bash', 'bench x', 'needs a GPU'), ('yaml', '# a.yaml\\nk: 1', None)]
    """
    found, lines = [], doc.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        fence = re.match(r"^```(\w*)\s*$", lines[i])
        if fence and fence.group(1):
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            before = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
            mark = NOT_RUN.match(before.strip())
            found.append(Block(doc, i + 1, fence.group(1), "\n".join(lines[i + 1:end]),
                               mark.group(1).strip() if mark else None))
            i = end
        i += 1
    return found


def files(doc_blocks: list[Block]) -> dict[str, str]:
    """The yaml blocks that name a file on their first line (``# sweep.yaml``)."""
    out = {}
    for b in doc_blocks:
        first = b.text.splitlines()[0] if b.text else ""
        name = re.match(r"^#\s*([\w.-]+\.ya?ml)\s*$", first)
        if b.lang == "yaml" and name:
            out[name.group(1)] = b.text
    return out


def commands(text: str) -> list[list[str]]:
    """The shell commands of a block: continuation lines joined, comments dropped, ``&&``
    chains split.

    >>> commands("a b \\\\\\n  c   # note\\nx && y z")
    [['a', 'b', 'c'], ['x'], ['y', 'z']]
    """
    out = []
    for line in re.sub(r"\\\n", " ", text).splitlines():
        tokens = shlex.split(line, comments=True)
        while tokens:
            cut = tokens.index("&&") if "&&" in tokens else len(tokens)
            out.append(tokens[:cut])
            tokens = tokens[cut + 1:]
    return [c for c in out if c]


def shrink_run(argv: list[str], datasets: list[str]) -> list[str]:
    """A ``bench run`` argv on the tiny budget; the dataset it names goes to ``datasets``.

    >>> shrink_run(["run", "--method", "dcbh", "--bits", "12,24", "--epochs", "9", "--set", "dataset.x=1",
    ...             "--tracking-uri", "sqlite:///m.db"], [])[:8]
    ['run', '--method', 'dcbh', '--bits', '12', '--epochs', '1', '--seeds']
    """
    first = lambda v: v.split(",")[0]  # noqa: E731
    return _shrink(argv, datasets, {"--bits": first, "--seeds": first, "--epochs": lambda v: "1"},
                   (("--epochs", "1"), ("--seeds", "0"), ("--bits", "12")))


def shrink_tune(argv: list[str], datasets: list[str]) -> list[str]:
    """A ``bench tune`` argv on the tiny budget: two trials of one epoch, one final seed.

    >>> shrink_tune(["tune", "--method", "ddh", "--trials", "6", "--epochs", "3", "--bits", "12"], [])[:11]
    ['tune', '--method', 'ddh', '--trials', '2', '--epochs', '1', '--bits', '12', '--final-seeds', '0']
    """
    first = lambda v: v.split(",")[0]  # noqa: E731
    return _shrink(argv, datasets, {"--bits": first, "--final-seeds": first, "--epochs": lambda v: "1",
                                    "--trials": lambda v: str(min(int(v), 2))},
                   (("--trials", "2"), ("--epochs", "1"), ("--bits", "12"), ("--final-seeds", "0")))


def shrink_cost(argv: list[str]) -> list[str]:
    """A ``bench cost`` argv on the tiny budget: galleries of 1,000 faces, 3 queries timed.

    >>> shrink_cost(["cost", "dcbh-48b-s0", "--sizes", "1e4,1e7", "--queries", "100", "--tracking-uri", "x"])
    ['cost', 'dcbh-48b-s0', '--sizes', '1000', '--queries', '3', '--batch', '3']
    """
    tiny = {"--sizes": "1000", "--queries": "3", "--batch": "3"}
    out, i = [], 0
    while i < len(argv):
        if argv[i] in DROPPED or argv[i] in tiny:
            i += 2
            continue
        out.append(argv[i])
        i += 1
    return out + [token for pair in tiny.items() for token in pair]


def _shrink(argv: list[str], datasets: list[str], values: dict, defaults: tuple) -> list[str]:
    """``argv`` with each option of ``values`` mapped, the ``defaults`` added where missing,
    the test's store and tiny data instead of the named ones."""
    out, i = [], 0
    while i < len(argv):
        arg = argv[i]
        if arg in DROPPED or arg == "--dataset" or (arg == "--set" and argv[i + 1].startswith("dataset.")):
            if arg == "--dataset":
                datasets.append(argv[i + 1])
            i += 2
            continue
        out += [arg, values[arg](argv[i + 1])] if arg in values else [arg]
        i += 2 if arg in values else 1
    for flag, default in defaults:
        if flag not in out:
            out += [flag, default]
    return out + TINY_DATA


def shrink_sweep(text: str) -> tuple[str, list[str]]:
    """A sweep file on the tiny budget, and the datasets it named."""
    sweep = yaml.safe_load(text)
    named = list(sweep.get("datasets") or [])
    sweep["bits"], sweep["seeds"] = sweep["bits"][:1], (sweep.get("seeds") or [0])[:1]
    sweep["datasets"] = ["synthfaces"]
    sweep.pop("data_root", None)
    sweep.pop("experiment", None)
    overrides = {k: (v[:1] if isinstance(v, list) else v) for k, v in (sweep.get("overrides") or {}).items()
                 if not k.startswith("dataset.")}
    sweep["overrides"] = {**overrides, "protocol.epochs": 1, **TINY_SWEEP}
    return yaml.safe_dump(sweep), named


def plan(block: Block) -> Plan:
    """The ``bench`` argv lists a runnable bash block becomes."""
    result = Plan()
    for tokens in commands(block.text):
        if tokens[:2] == ["/usr/bin/time", "-v"]:
            tokens = tokens[2:]
        tokens = [Path(tokens[0]).name if tokens[0].startswith(".venv/bin/") else tokens[0], *tokens[1:]]
        line = " ".join(tokens)
        if any(line.startswith(s) for s in SETUP):
            result.skipped.append(line)
            continue
        if tokens[0] != "bench":
            raise AssertionError(f"{block.where()}: `{line}` is not a bench command; mark the block "
                                 "<!-- not-run: <reason> --> or make it runnable")
        argv = tokens[1:]
        if argv and argv[0] == "run":
            argv = shrink_run(argv, result.datasets)
        elif argv and argv[0] == "tune":
            argv = shrink_tune(argv, result.datasets)
        elif argv and argv[0] == "cost":
            argv = shrink_cost(argv)
        elif argv and argv[0] == "sweep":
            argv = [a for i, a in enumerate(argv) if a not in DROPPED and (i == 0 or argv[i - 1] not in DROPPED)]
        result.commands.append(argv)
    return result


def referenced_paths(doc: Path) -> list[str]:
    """Repository paths a document names: relative links and `code` spans that look like a
    file of the repository (``benchmarks/eval_table.py``)."""
    text = doc.read_text(encoding="utf-8")
    links = [t for t in re.findall(r"\]\(([^)#\s]+)\)", text) if "://" not in t and not t.startswith("mailto:")]
    tops = "|".join(p.name for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith("."))
    spans = re.findall(rf"`((?:{tops})/[\w./-]+\.\w+)`", text)
    return sorted(set(links + spans))
