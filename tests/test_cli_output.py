"""What ``bench`` prints: a fast ``--help`` that imports no heavy module, help text that keeps
option names and defaults whole at 80 columns, a results table that fits 80 columns with
every value whole, and progress lines that tell the epoch, the step, the loss and the time."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from types import SimpleNamespace as N

import click
import typer
from rich.console import Console

from bench.tracking.status import RunStatus

HEAVY = ("torch", "mlflow", "pandas", "numpy", "matplotlib", "pydantic", "optuna", "ray",
         "bench.running", "bench.training", "bench.reports", "bench.evaluation", "bench.tracking.reading")


def test_importing_the_cli_imports_no_heavy_module():
    """Every command module is imported for ``bench --help``: heavy imports belong inside the
    command functions (the rule for every new command)."""
    code = ("import sys, bench.cli; from bench.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r} or m.startswith({HEAVY!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_the_run_defaults_are_the_protocol_defaults():
    from bench.cli import options
    from bench.config.protocol import ProtocolConfig

    defaults = ProtocolConfig()
    assert (options.DEFAULT_DATASET, options.DEFAULT_EPOCHS, options.DEFAULT_STANDARD, options.DEFAULT_SPLIT) == (
        defaults.dataset, defaults.epochs, defaults.standard, defaults.split)
    from bench.cli import data
    assert data.DEFAULT_INPUT_SIZE == defaults.input_size


def _helps(group: click.Group, prefix: str = "bench"):
    for name, command in group.commands.items():
        ctx = click.Context(command, info_name=f"{prefix} {name}", terminal_width=80, max_content_width=80)
        yield command, command.get_help(ctx)
        if isinstance(command, click.Group):
            yield from _helps(command, f"{prefix} {name}")


def test_help_at_80_columns_keeps_option_names_and_defaults_whole():
    from bench.cli import app

    group = typer.main.get_command(app)
    seen = 0
    for command, text in _helps(group):
        lines = text.splitlines()
        assert all(len(line) <= 80 for line in lines), text
        assert "…" not in text
        flat = re.sub(r"-\n\s+", "-", text)  # a default may wrap after a hyphen, never elsewhere
        flat = re.sub(r"\s+", " ", flat)
        for param in command.params:
            for opt in param.opts:
                if opt.startswith("-"):
                    assert any(re.search(rf"(^|[\s,]){re.escape(opt)}([\s,=/]|$)", line) for line in lines), (opt, text)
            default = param.default
            if param.param_type_name == "option" and default not in (None, False, "") and not param.is_flag:
                assert f"default: {default}" in flat, (param.name, text)
                seen += 1
    assert seen > 10  # the guard: defaults were found and checked


def _result(method, bits, metrics, seconds=1.5, status=RunStatus.FINISHED, **overrides):
    from bench.config.protocol import ProtocolConfig
    from bench.running.spec import RunResult, RunSpec

    spec = RunSpec(method=method, bits=bits, seed=0, protocol=ProtocolConfig(), method_config={}, overrides=overrides)
    return RunResult(spec, status, metrics, seconds=seconds)


def test_the_default_table_fits_80_columns_with_whole_values():
    from bench.cli.results_table import results_table

    metrics = {"map": 0.65512, "map_worst": 0.58123, "map_best": 0.78433, "precision_at_50": 0.1,
               "precision_at_10": 0.51234, "precision_r2": 0.2, "recall_r2": 0.3}
    results = [_result("pca-itq", 48, metrics, head="block", set=["pca-itq.iterations=5"]),
               _result("lsh", 12, {}, 0, RunStatus.FAILED)]
    console = Console(width=80, record=True, color_system=None)
    console.print(results_table(results))
    text = console.export_text()
    assert all(len(line) <= 80 for line in text.splitlines())
    assert "…" not in text
    assert "0.655 (0.581-0.784)" in text and "0.512" in text and "p@10" in text
    with_r = Console(width=80, record=True, color_system=None)
    with_r.print(results_table([_result("lsh", 12, {**metrics, "precision_at_r": 0.4321})]))
    shown = with_r.export_text()
    assert "p@R" in shown and "0.432" in shown
    wide = Console(width=80, record=True, color_system=None)
    wide.print(results_table(results, wide=True))
    assert "…" in wide.export_text()  # the guard: the wide table does not fit 80 columns


def test_bench_run_prints_a_whole_table_at_80_columns(tmp_path):
    env = {**os.environ, "COLUMNS": "80", "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    out = subprocess.run([sys.executable, "-c", "from bench.cli import main; main()", "run", "--method", "lsh",
                          "--bits", "12,24"], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "warning" not in out.stderr  # the default Ks suit ORL's gallery of 278: P@50, P@100, no P@500
    assert "…" not in out.stdout
    table = out.stdout[out.stdout.index("Hamming retrieval results"):]
    assert all(len(line) <= 80 for line in table.splitlines())
    rows = re.findall(r"^ *lsh +(12|24) +0 +(\d\.\d{3}) \((\d\.\d{3})-(\d\.\d{3})\) +\d\.\d{3} ", out.stdout, re.M)
    assert "p@R" in table
    assert [(b, m) for b, m, *_ in rows] == [("12", "0.276"), ("24", "0.417")]
    # not a terminal: one plain line per run event, with the overall progress
    assert "[1/2] lsh-12b-s0 started (fitted, no training)" in out.stdout
    assert re.search(r"lsh-24b-s0 FINISHED map=0.4172 in [\d.]+ s \| all: 2/2 runs, 100%", out.stdout)


def test_an_asked_k_beyond_the_gallery_is_computed_with_a_warning(tmp_path):
    from bench.tracking.reading import StoreReader

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    out = subprocess.run([sys.executable, "-c", "from bench.cli import main; main()", "run", "--method", "lsh",
                          "--bits", "12", "--set", "protocol.evaluation.precision_at=[50,500]"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=300,
                         env={**os.environ, "MLFLOW_TRACKING_URI": uri})
    assert out.returncode == 0, out.stderr
    assert "warning: precision_at_500: K exceeds the gallery of 278 images on orl" in " ".join(out.stderr.split())
    [run] = StoreReader(uri).search(tags={"facehash.method": "lsh"})
    assert {"precision_at_50", "precision_at_500"} <= set(run.data.metrics) and "precision_at_100" not in run.data.metrics


class _Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_plain_progress_prints_epochs_with_elapsed_and_eta(monkeypatch):
    from bench.cli import progress

    clock = _Clock()
    monkeypatch.setattr(progress.time, "monotonic", clock)
    monkeypatch.setattr(progress, "training_shape", lambda prepared: prepared)
    console = Console(width=200, record=True, color_system=None)
    reporter = progress.ProgressReporter(console, live=False, interval=10.0)
    deep = N(index=0, spec=N(name="dcbh-12b-s0"), prepared=progress.TrainingShape(steps=20, per_epoch=5))
    fitted = N(index=1, spec=N(name="lsh-12b-s0"), prepared=None)
    reporter.scheduled([deep, fitted])
    reporter.started(deep)
    for step in range(1, 21):
        clock.now += 1.0  # one second per step
        reporter.progress(deep, step, 1.0 / step)
    reporter.finished(deep, N(status="FINISHED", metrics={"map": 0.5}, seconds=20.0, reason=""))
    lines = console.export_text().splitlines()
    assert lines[0] == "[1/2] dcbh-12b-s0 started (4 epochs x 5 steps)"
    # epoch 1 (the first) and 4 (the last) print; 2 and 3 fall inside the 10 s interval
    assert lines[1] == ("dcbh-12b-s0 epoch 1/4 step 5/20 loss 0.2000 elapsed 0:00:04 eta 0:00:15 | "
                        "all: 0/2 runs, 23%, elapsed 0:00:05 eta 0:00:17")
    assert lines[2].startswith("dcbh-12b-s0 epoch 3/4 step 15/20")  # 10 s after the first line
    assert lines[3].startswith("dcbh-12b-s0 epoch 4/4 step 20/20 loss 0.0500 elapsed 0:00:19 eta 0:00:00")
    assert lines[4] == "dcbh-12b-s0 FINISHED map=0.5000 in 20.0 s | all: 1/2 runs, 95%, elapsed 0:00:20 eta 0:00:01"
    assert len(lines) == 5


def test_progress_counts_an_iteration_budget_and_its_partial_last_epoch(monkeypatch):
    from bench.api.methods import TrainingSpec
    from bench.cli import progress
    from bench.training.loop import step_budget

    clock = _Clock()
    monkeypatch.setattr(progress.time, "monotonic", clock)
    shape = progress.TrainingShape(steps=step_budget(TrainingSpec(epochs=50, iterations=12), 5), per_epoch=5)
    monkeypatch.setattr(progress, "training_shape", lambda prepared: prepared)
    console = Console(width=200, record=True, color_system=None)
    reporter = progress.ProgressReporter(console, live=False, interval=0.0)
    deep = N(index=0, spec=N(name="dsh-12b-s0"), prepared=shape)
    reporter.scheduled([deep])
    reporter.started(deep)
    for step in range(1, 13):
        clock.now += 1.0
        reporter.progress(deep, step, 1.0)
    lines = console.export_text().splitlines()
    assert lines[0] == "[1/1] dsh-12b-s0 started (3 epochs x 5 steps)"  # 12 steps: 5 + 5 + 2, not 50 epochs
    assert [line.split(" loss")[0] for line in lines[1:]] == [
        "dsh-12b-s0 epoch 1/3 step 5/12", "dsh-12b-s0 epoch 2/3 step 10/12", "dsh-12b-s0 epoch 3/3 step 12/12"]


def test_did_you_mean_offers_a_similar_name_or_a_described_one(fresh_host):
    from bench.api.errors import BenchError
    from bench.api.pluginhost import default_host

    datasets = default_host().datasets
    messages = {}
    for typo in ("youtube-faces", "synthface", "orll", "zzzz"):
        try:
            datasets.resolve(typo)
        except BenchError as exc:
            messages[typo] = str(exc)
    assert messages["youtube-faces"].endswith("(did you mean 'ytf'?)")  # from its description
    assert messages["synthface"].endswith("(did you mean 'synthfaces'?)")
    assert messages["orll"].endswith("(did you mean 'orl'?)")
    assert "did you mean" not in messages["zzzz"]
