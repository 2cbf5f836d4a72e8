"""The docs run: every ```bash block of README.md and docs/*.md (on tiny budgets, see
tests/docs_commands.py), every sweep file they show or name, every repository file they name; a
block that cannot run says why (``<!-- not-run: <reason> -->``)."""

from __future__ import annotations

import pytest

from tests.docs_commands import DOCS, ROOT, blocks, files, plan, referenced_paths, shrink_sweep


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_not_run_mark_gives_a_reason(doc):
    for block in blocks(doc):
        assert block.not_run is None or block.not_run, f"{block.where()}: not-run needs a reason"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_named_file_exists(doc):
    missing = [p for p in referenced_paths(doc) if not (ROOT / p).exists() and not (doc.parent / p).exists()]
    assert not missing, f"{doc.name} names files that do not exist: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_bash_block_runs(doc, cli, tmp_path, monkeypatch):
    from bench.api.pluginhost import default_host

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    doc_blocks = blocks(doc)
    known = default_host().datasets.names()
    for name, text in files(doc_blocks).items():
        tiny, named = shrink_sweep(text)
        assert set(named) <= set(known), f"{doc.name}: {name} names unknown datasets {set(named) - set(known)}"
        (tmp_path / name).write_text(tiny)
    ran = 0
    for block in doc_blocks:
        if block.lang != "bash" or block.not_run is not None:
            continue
        steps = plan(block)
        assert set(steps.datasets) <= set(known), f"{block.where()}: unknown datasets {steps.datasets}"
        for argv in steps.commands:
            if argv[:1] == ["sweep"] and len(argv) > 1 and not (tmp_path / argv[1]).exists():
                committed = ROOT / argv[1]  # a sweep file of the repository, named by its path
                assert committed.is_file(), f"{block.where()}: no sweep file {argv[1]} shown or committed"
                tiny, named = shrink_sweep(committed.read_text(encoding="utf-8"))
                assert set(named) <= set(known), f"{argv[1]} names unknown datasets {set(named) - set(known)}"
                (tmp_path / argv[1]).parent.mkdir(parents=True, exist_ok=True)
                (tmp_path / argv[1]).write_text(tiny)
            code, out, err = cli(*argv)
            assert code == 0, f"{block.where()}: bench {' '.join(argv)} exited {code}: {err[-2000:]}"
            ran += 1
    runnable = [b for b in doc_blocks if b.lang == "bash" and b.not_run is None]
    assert ran or not runnable or all(not plan(b).commands for b in runnable)
