"""The leaderboard flags rows whose runs come from different code (tag
``facehash.code_fingerprint``); runs stored without the tag count as ``unknown`` code.

Store (one protocol, written with MlflowClient as ``bench run`` writes runs):

    method  bits  seed  code fingerprint   map
    alpha    12    0    aaaa1111...        0.50
    alpha    12    1    aaaa1111...        0.52
    alpha    24    0    bbbb2222...        0.70   <- rerun after an edit: row mixed
    beta     12    0    cccc3333...        0.40
    beta     24    0    cccc3333...        0.60   <- one version: not flagged
    gamma    12    0    (no tag)           0.30
    gamma    24    0    (no tag)           0.35   <- all unknown: one version, not flagged
    delta    12    0    (no tag)           0.20
    delta    12    1    dddd4444...        0.22   <- unknown + known: mixed inside one cell
"""

from __future__ import annotations

import pandas as pd
import pytest

from bench.reports.build import ReportOptions, build_report
from bench.reports.export import cells_from_csv, cells_to_csv, to_markdown
from bench.tracking import tags

A, B, C, D = ("aaaa1111" * 4, "bbbb2222" * 4, "cccc3333" * 4, "dddd4444" * 4)
RUNS = [  # (method, bits, seed, code fingerprint or None, map)
    ("alpha", 12, 0, A, 0.50), ("alpha", 12, 1, A, 0.52), ("alpha", 24, 0, B, 0.70),
    ("beta", 12, 0, C, 0.40), ("beta", 24, 0, C, 0.60),
    ("gamma", 12, 0, None, 0.30), ("gamma", 24, 0, None, 0.35),
    ("delta", 12, 0, None, 0.20), ("delta", 12, 1, D, 0.22),
]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    folder = tmp_path_factory.mktemp("code-store")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment("code", artifact_location=(folder / "artifacts").as_uri())
    parent = client.create_run(exp, run_name="bench-run", tags={tags.KIND: "parent"}).info.run_id
    for method, bits, seed, code, value in RUNS:
        run_tags = {
            tags.PARENT_RUN: parent, tags.METHOD: method, tags.BITS: str(bits), tags.SEED: str(seed),
            tags.DATASET: "toy", tags.SPLIT_CHECKSUM: "split", tags.PROTOCOL_FINGERPRINT: "fp",
            tags.CONFIG_HASH: f"{method}-{bits}-{seed}",
        }
        if code is not None:
            run_tags[tags.CODE_FINGERPRINT] = code
        rid = client.create_run(exp, run_name=f"{method}-{bits}b-s{seed}", tags=run_tags).info.run_id
        client.log_batch(rid, metrics=[Metric("map", value, 0, 0)])
        client.set_terminated(rid, "FINISHED")
    return uri


@pytest.fixture(scope="module")
def report(store):
    return build_report(store, ReportOptions(resamples=100))


def flags(cells: pd.DataFrame) -> dict[tuple[str, int], tuple[bool, str]]:
    return {(c["variant"], int(c["bits"])): (bool(c["mixed_code"]), c["codes"]) for _, c in cells.iterrows()}


def test_cells_know_their_code_and_mixed_rows_are_flagged(report):
    assert flags(report.cells) == {
        ("alpha", 12): (True, A), ("alpha", 24): (True, B),
        ("beta", 12): (False, C), ("beta", 24): (False, C),
        ("gamma", 12): (False, "unknown"), ("gamma", 24): (False, "unknown"),
        ("delta", 12): (True, f"{D},unknown"),
    }
    notes = [n for n in report.notes if n.startswith("†")]
    assert notes == [
        "† alpha: its runs come from 2 versions of the code (code fingerprint aaaa1111: 12 bits seed 0, "
        "12 bits seed 1; bbbb2222: 24 bits seed 0); rerun the older ones to compare like with like",
        "† delta: its runs come from 2 versions of the code (code fingerprint dddd4444: 12 bits seed 1; "
        "unknown: 12 bits seed 0); rerun the older ones to compare like with like",
    ]
    assert any(line.startswith("†: the runs of this row") for line in report.legend)


def test_markdown_csv_and_html_show_the_flag(report, store, cli, tmp_path):
    lines = {line.split(" | ")[0][2:]: line for line in to_markdown(report.cells).splitlines()[2:] if line.startswith("| ")}
    assert lines["alpha"].count("†") == 2 and lines["delta"].count("†") == 1
    assert "†" not in lines["beta"] + lines["gamma"]
    back = cells_from_csv(cells_to_csv(report.cells))
    assert flags(back) == flags(report.cells)

    out = tmp_path / "r.html"
    code, _, err = cli("leaderboard", "--tracking-uri", store, "--format", "html", "--out", str(out), "--no-log")
    assert code == 0, err
    html = out.read_text()
    assert html.count('<span class="mixed"') == 3 and "† alpha: its runs come from 2 versions" in html
    code, out_text, err = cli("leaderboard", "--tracking-uri", store)
    assert code == 0 and "note: † delta: its runs come from 2 versions" in " ".join(err.split())

