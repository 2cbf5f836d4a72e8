"""Leaderboard reports on a store filled with synthetic runs of fixed numbers.

Store layout (written with MlflowClient, same tags and parent/child structure as
``bench run``); protocol fingerprint ``fpA`` (newest) on dataset ``toy``:

    variant                  bits  seeds -> map
    alpha [variant=released]  12   0 -> 0.50 (older duplicate) / 0.55 (newest), 1 -> 0.60, 2 -> 0.70
    alpha [variant=released]  24   0 -> 0.70, 1 -> 0.80
    alpha [variant=intended]  12   0 -> 0.30
    beta                      12   0 -> 0.40, 1 -> 0.44
    beta                      24   0 -> 0.90   (map_legacy 0.85; alpha runs log map_worst/map_best = map -0.25/+0.125)
    twin                      24   0 -> 0.90   (per-query AP identical to beta's)
    beta                      24   5 -> 0.99   FAILED run: ignored

plus ``gamma`` (12 bits, map 0.2) under an older fingerprint ``fpB``.
Per-query AP of a run = its map + a fixed zero-mean offset pattern over 60 queries.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import yaml

from bench.api.errors import BenchError
from bench.config.protocol import ProtocolConfig
from bench.reports.build import ReportOptions, build_report
from bench.reports.export import cells_from_csv, cells_to_csv, from_json, to_json, to_markdown
from bench.reports.query import choose_fingerprint, load_runs

QUERIES = 60
OFFSETS = np.tile([-0.05, -0.02, 0.0, 0.01, 0.02, 0.04], QUERIES // 6)  # mean 0
T0 = 1_700_000_000_000  # ms

RUNS = [  # (fingerprint, method, variant, bits, seed, map, start offset s, status)
    ("fpA", "alpha", "released", 12, 0, 0.50, 10, "FINISHED"),
    ("fpA", "alpha", "released", 12, 0, 0.55, 90, "FINISHED"),
    ("fpA", "alpha", "released", 12, 1, 0.60, 11, "FINISHED"),
    ("fpA", "alpha", "released", 12, 2, 0.70, 12, "FINISHED"),
    ("fpA", "alpha", "released", 24, 0, 0.70, 13, "FINISHED"),
    ("fpA", "alpha", "released", 24, 1, 0.80, 14, "FINISHED"),
    ("fpA", "alpha", "intended", 12, 0, 0.30, 15, "FINISHED"),
    ("fpA", "beta", None, 12, 0, 0.40, 16, "FINISHED"),
    ("fpA", "beta", None, 12, 1, 0.44, 17, "FINISHED"),
    ("fpA", "beta", None, 24, 0, 0.90, 18, "FINISHED"),
    ("fpA", "twin", None, 24, 0, 0.90, 19, "FINISHED"),
    ("fpA", "beta", None, 24, 5, 0.99, 20, "FAILED"),
    ("fpB", "gamma", None, 12, 0, 0.20, 1, "FINISHED"),
]


def write_store(uri: str, folder) -> None:
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment("synthetic", artifact_location=(folder / "artifacts").as_uri())
    parents = {}
    for fp, start in (("fpA", 5), ("fpB", 0)):
        run = client.create_run(exp, start_time=T0 + start * 1000, run_name=f"bench-run-{fp}", tags={
            "facehash.kind": "parent", "facehash.protocol_fingerprint": fp, "facehash.dataset": "toy",
            "facehash.split_checksum": f"split-{fp}", "facehash.command": f"bench run --method all ({fp})"})
        parents[fp] = run.info.run_id
    protocol = ProtocolConfig(dataset="toy", epochs=3).model_dump(mode="json")
    for i, (fp, method, variant, bits, seed, value, start, status) in enumerate(RUNS):
        config = {"lr": 0.001} | ({"variant": variant} if variant else {})
        config_hash = f"{method}-{variant}-{bits}-{seed}"
        tags = {
            "mlflow.parentRunId": parents[fp], "facehash.method": method, "facehash.bits": str(bits),
            "facehash.seed": str(seed), "facehash.dataset": "toy", "facehash.split_checksum": f"split-{fp}",
            "facehash.protocol_fingerprint": fp, "facehash.config_hash": config_hash,
            "facehash.standard": "as-published", "facehash.method_kind": "fitted",
            "facehash.overrides": json.dumps({"set": [f"variant={variant}"]} if variant == "intended" else {}),
            "facehash.device": "cpu", "git_commit": "abc123", "versions.facehash_bench": "0.1.0",
            "versions.torch": "2.14.1", "versions.plugins": "{}",
        }
        if method == "alpha":
            tags["facehash.deviation"] = "none (synthetic)"
        run = client.create_run(exp, start_time=T0 + start * 1000, run_name=f"{method}-{bits}b-s{seed}-{i}", tags=tags)
        rid = run.info.run_id
        params = {"method.name": method, **{f"method.{k}": v for k, v in config.items()},
                  "bits": bits, "seed": seed, "protocol.dataset": "toy"}
        metrics = {"map": value, "precision_at_50": value / 2, "precision_at_100": value / 3}
        if method == "beta" and bits == 24:
            metrics["map_legacy"] = value - 0.05
        if method == "alpha":  # tie bounds of the expected AP
            metrics |= {"map_worst": value - 0.25, "map_best": value + 0.125}
        client.log_batch(rid, params=[Param(k, str(v)) for k, v in params.items()],
                         metrics=[Metric(k, v, T0, 0) for k, v in metrics.items()])
        art = folder / f"art{i}"
        art.mkdir()
        np.save(art / "per_query_ap.npy", value + OFFSETS)
        spec = {"method": method, "bits": bits, "seed": seed, "protocol": protocol, "method_config": config,
                "overrides": json.loads(tags["facehash.overrides"]), "data_root": None, "device": "auto"}
        (art / "config.yaml").write_text(yaml.safe_dump(spec))
        client.log_artifacts(rid, str(art))
        client.set_terminated(rid, status)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("synthetic-store")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    write_store(uri, folder)
    return uri


@pytest.fixture(scope="module")
def report(synthetic):
    return build_report(synthetic, ReportOptions(reference="beta", resamples=1000))


def cell(cells: pd.DataFrame, variant: str, bits: int) -> pd.Series:
    [row] = [r for _, r in cells.iterrows() if r["variant"] == variant and r["bits"] == bits]
    return row


def test_pivot_mean_std_seeds_and_best_are_exact(report):
    cells = report.cells
    expected = {  # (variant, bits): (mean, std, n, seeds, best)
        ("alpha [variant=released]", 12): (np.mean([0.55, 0.6, 0.7]), np.std([0.55, 0.6, 0.7], ddof=1), 3, "0,1,2", True),
        ("alpha [variant=released]", 24): (0.75, math.sqrt(0.005), 2, "0,1", False),
        ("alpha [variant=intended]", 12): (0.30, math.nan, 1, "0", False),
        ("beta", 12): (0.42, math.sqrt(0.0008), 2, "0,1", False),
        ("beta", 24): (0.90, math.nan, 1, "0", True),
        ("twin", 24): (0.90, math.nan, 1, "0", True),
    }
    assert len(cells) == len(expected)
    for (variant, bits), (mean, std, n, seeds, best) in expected.items():
        c = cell(cells, variant, bits)
        assert c["mean"] == pytest.approx(mean, abs=1e-12)
        assert (math.isnan(c["std"]) and math.isnan(std)) or c["std"] == pytest.approx(std, abs=1e-12)
        assert (c["n_seeds"], c["seeds"], bool(c["best"])) == (n, seeds, best), (variant, bits)
    released = cell(cells, "alpha [variant=released]", 12)
    assert (released["tie_worst"], released["tie_best"]) == pytest.approx((np.mean([0.55, 0.6, 0.7]) - 0.25, np.mean([0.55, 0.6, 0.7]) + 0.125))
    assert math.isnan(cell(cells, "beta", 12)["tie_best"])
    # ranked by the variant's average cell mean: twin .9, alpha .683, beta .66, intended .3
    assert list(dict.fromkeys(cells["variant"])) == ["twin", "alpha [variant=released]", "beta", "alpha [variant=intended]"]
    assert report.runset.duplicates == 1 and any("identical config hash" in n for n in report.notes)


def test_bootstrap_interval_contains_the_mean(report):
    for _, c in report.cells.iterrows():
        assert c["queries"] == QUERIES
        assert c["ci_low"] < c["mean"] < c["ci_high"]
        assert c["ci_high"] - c["ci_low"] < 0.05  # offsets span only 0.09


def test_paired_test_flags_better_and_worse_not_identical(report):
    verdicts = {(c["variant"], c["bits"]): c["vs_reference"] for _, c in report.cells.iterrows()}
    assert verdicts == {
        ("alpha [variant=released]", 12): "better", ("alpha [variant=released]", 24): "worse",
        ("alpha [variant=intended]", 12): "worse", ("beta", 12): "reference", ("beta", 24): "reference",
        ("twin", 24): "n.s.",
    }
    assert cell(report.cells, "twin", 24)["p_holm"] == 1.0
    assert cell(report.cells, "alpha [variant=released]", 12)["p_holm"] < 0.01


def test_most_recent_fingerprint_by_default_and_choice(synthetic):
    runs = load_runs(synthetic)
    assert runs.fingerprint == "fpA" and list(runs.found["fingerprint"]) == ["fpA", "fpB"]
    assert set(runs.runs["tags.facehash.method"]) == {"alpha", "beta", "twin"}
    other = load_runs(synthetic, protocol="fpB")
    assert set(other.runs["tags.facehash.method"]) == {"gamma"}


def test_mixing_fingerprints_is_refused(synthetic, cli):
    found = load_runs(synthetic).found
    with pytest.raises(BenchError, match="never compared"):
        choose_fingerprint(found, "fpA,fpB")
    with pytest.raises(BenchError, match="matches no"):
        choose_fingerprint(found, "zzz")
    code, out, err = cli("leaderboard", "--tracking-uri", synthetic, "--protocol", "fpA,fpB")
    assert code == 2 and "never compared" in err and out == ""


def test_csv_and_json_round_trip(report):
    back = cells_from_csv(cells_to_csv(report.cells))
    pd.testing.assert_frame_equal(back, report.cells.reset_index(drop=True), check_exact=True)
    cells, meta = from_json(to_json(report.cells, report.meta()))
    pd.testing.assert_frame_equal(cells, report.cells.reset_index(drop=True), check_exact=True)
    assert meta["protocol_fingerprint"] == "fpA" and meta["fingerprints_found"] == ["fpA", "fpB"]


def test_cli_csv_stdout_and_fingerprint_listing(synthetic, cli):
    code, out, err = cli("leaderboard", "--tracking-uri", synthetic, "--format", "csv", "--experiment", "synthetic")
    assert code == 0, err
    assert "fpA (toy, standard method-defaults, 11 runs" in err and "fpB (toy, standard method-defaults, 1 runs" in err and "using fpA (the most recent)" in err
    cells = cells_from_csv(out)
    assert cell(cells, "beta", 12)["mean"] == pytest.approx(0.42)
    assert math.isnan(cell(cells, "beta", 12)["p_value"])  # no --reference
    code, _, err = cli("leaderboard", "--tracking-uri", synthetic, "--format", "csv", "--protocol", "fpB")
    assert code == 0 and "using fpB (--protocol fpB)" in err


def test_each_table_format_shows_what_its_legend_describes(report, synthetic, tmp_path, cli):
    from bench.reports.html import render_html

    assert any(line.startswith("ties: ") for line in report.legend)  # alpha's runs have tie bounds
    html = render_html(report)
    assert "ties 0." in html and "<li>ties: mean over seeds" in html  # the HTML cells show them
    code, out, err = cli("leaderboard", "--tracking-uri", synthetic, "--protocol", "fpA", "--format", "md",
                         "--no-log", "--reference", "beta")
    assert code == 0, err
    assert "ties" not in out  # its cells carry no tie bounds, so neither does its legend
    for shown, described in (("± ", "mean ± sample std"), (" [0.", "[a, b]"), ("Δ", "Δ: the mean minus beta's")):
        assert shown in out and described in out
    code, out, err = cli("leaderboard", "--tracking-uri", synthetic, "--protocol", "fpA", "--no-log")
    assert code == 0 and "ties" not in out, out


def test_markdown_marks_best_and_published_rows(report, tmp_path):
    path = tmp_path / "published.yaml"
    path.write_text(yaml.safe_dump([
        {"method": "beta", "dataset": "toy", "bits": 24, "map": 0.95, "source": "Paper 2020"},
        {"method": "beta", "dataset": "other", "bits": 24, "map": 0.5, "source": "elsewhere"},
    ]))
    from bench.reports.published import gap_table, load_published

    published = load_published(path, "toy")
    text = to_markdown(report.cells, published, report.table_legend)
    [beta_line] = [line for line in text.splitlines() if line.startswith("| beta |")]
    assert beta_line.split(" | ")[2].startswith("**0.9000**") or beta_line.split(" | ")[2].startswith("**0.9000 ")
    assert "± -" not in text and "± –" not in text  # one seed: no std shown, no placeholder
    assert "| beta (published: Paper 2020) | – | 0.9500 |" in text and "elsewhere" not in text
    [gap] = gap_table(published, report.runset.runs).to_dict(orient="records")
    assert (gap["variant"], gap["map"], gap["map_legacy"]) == ("beta", 0.9, 0.85)
    assert gap["gap"] == pytest.approx(-0.05)


def test_published_file_errors(tmp_path):
    from bench.reports.published import load_published

    bad = tmp_path / "bad.yaml"
    bad.write_text("- {method: x, dataset: toy, bits: 12, map: 1.5, source: s}\n")
    with pytest.raises(BenchError, match="row 1, map"):
        load_published(bad)
    with pytest.raises(BenchError, match="no such file"):
        load_published(tmp_path / "missing.yaml")


def test_bad_options_are_one_line_errors(synthetic, cli):
    code, _, err = cli("leaderboard", "--tracking-uri", synthetic, "--metric", "nope")
    assert code == 2 and "logged metrics: map, map_best, map_legacy, map_worst, precision_at_100, precision_at_50" in err
    code, _, err = cli("leaderboard", "--tracking-uri", synthetic, "--reference", "alpha")
    assert code == 2 and "several variants" in err
    code, _, err = cli("leaderboard", "--tracking-uri", synthetic, "--experiment", "nope")
    assert code == 2 and "known: Default, synthetic" in err
    code, _, err = cli("leaderboard", "--tracking-uri", synthetic, "--format", "pdf")
    assert code == 2 and "use one of table" in err


def test_html_report_is_self_contained(synthetic, cli, tmp_path):
    from mlflow.tracking import MlflowClient

    out = tmp_path / "r.html"
    client = MlflowClient(tracking_uri=synthetic)
    parent = load_runs(synthetic).parent_ids[0]
    code, _, err = cli("leaderboard", "--tracking-uri", synthetic, "--format", "html", "--out", str(out),
                       "--reference", "beta")
    assert code == 0, err
    assert not client.list_artifacts(parent, "leaderboard")  # without --log the store is only read
    code, _, err = cli("leaderboard", "--tracking-uri", synthetic, "--format", "html", "--out", str(out),
                       "--reference", "beta", "--log")
    assert code == 0, err
    html = out.read_text()
    assert '<table id="leaderboard">' in html and "http" not in html.replace("http-equiv", "")
    assert html.count('src="data:image/png;base64,') == 2  # map vs bits, precision@K (no PR curves, no codes)
    assert "bench run --method beta --bits 12,24 --seeds 0,1 --dataset toy --epochs 3" in html
    assert "--set variant=intended" in html and "split-fpA" in html and "abc123" in html
    assert "no run stored a precision-recall curve" in html
    logged = {a.path for a in client.list_artifacts(parent, "leaderboard")}
    assert {"leaderboard/map_vs_bits.png", "leaderboard/precision_at_k.png", "leaderboard/leaderboard-fpA.html"} <= logged


def test_bench_ui_serves_the_store_on_a_free_port_and_stops_cleanly(synthetic):
    import os
    import signal
    import subprocess
    import sys
    import time
    import urllib.request
    from pathlib import Path

    bench = Path(sys.executable).with_name("bench")
    proc = subprocess.Popen([str(bench), "ui", "--tracking-uri", synthetic], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith(f"MLflow UI for {synthetic} at http://127.0.0.1:"), line
        url = line.split(" at ")[1].split()[0]
        deadline, body = time.time() + 120, ""
        while time.time() < deadline and proc.poll() is None:
            try:
                request = urllib.request.Request(f"{url}/api/2.0/mlflow/experiments/search",
                                                 data=b'{"max_results": 10}', headers={"Content-Type": "application/json"})
                body = urllib.request.urlopen(request, timeout=5).read().decode()
                break
            except OSError:
                time.sleep(1)
        assert '"name": "synthetic"' in body.replace('":"', '": "'), body
        assert _serving(url), "no process found serving the port (the check below would be vacuous)"
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    time.sleep(1)
    assert not _serving(url), "the UI server outlived bench ui"


def _serving(url: str) -> list:
    """Processes whose command line holds ``--port PORT``."""
    from pathlib import Path

    needle = b"--port\0" + url.rsplit(":", 1)[1].encode() + b"\0"
    return [p for p in Path("/proc").glob("[0-9]*") if needle in _cmdline(p)]


def _cmdline(proc_dir) -> bytes:
    try:
        return (proc_dir / "cmdline").read_bytes()
    except OSError:
        return b""
