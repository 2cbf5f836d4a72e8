"""Issue 24 items 7, 8 and 9: damaged code files, queries that cannot score, and small inputs
(huge ``--bits``, a repeated single-valued option, an experiment named ``..``)."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace as N

import numpy as np
import pytest
from rich.console import Console
from test_evaluation_cli import finished_run

from bench.cli.results_table import results_table
from bench.evaluation.codes import pack_codes
from bench.tracking.client import Tracker, artifact_location


def test_bits_beyond_the_limit_are_one_line(cli) -> None:
    code, _, err = cli("run", "--method", "lsh", "--bits", "99999999999999999999")
    assert code == 2 and err.strip() == (
        "error: --bits: 99999999999999999999 is above the limit of 4096 bits; use e.g. --bits 12,24,36,48")


def test_a_single_valued_option_given_twice_is_refused_and_lists_add_up(cli) -> None:
    code, _, err = cli("run", "--method", "lsh", "--bits", "12", "--bits", "24")
    assert code == 2 and err.strip().startswith("error: --bits given 2 times (12, 24)")
    code, _, err = cli("run", "--method", "lsh", "--bits=12", "--force", "--force")
    assert code == 2 and err.strip() == "error: --force given 2 times; give it once"
    code, _, err = cli("eval", "x", "--device", "cpu", "--device=cuda")
    assert code == 2 and "--device given 2 times (cpu, cuda)" in err
    # repeated list options still add up: both --set keys reach the settings check
    code, _, err = cli("run", "--method", "lsh", "--set", "center=true", "--set", "nokey=1")
    assert code == 2 and "unknown key 'nokey'" in err


def test_an_experiment_named_dotdot_keeps_artifacts_under_mlartifacts(tmp_path: Path) -> None:
    store = tmp_path / "mlflow.db"
    for name in ("..", ".", "a/../..", ".hidden"):
        location = Path(artifact_location(f"sqlite:///{store}", name).removeprefix("file://"))
        assert location.parent == tmp_path / "mlartifacts", name


def store_codes(store: str, folder: Path, **arrays) -> str:
    run_id, _ = finished_run(store, folder, with_codes=False)
    np.savez(folder / "codes.npz", **arrays)
    Tracker(store).log_artifacts(run_id, folder)
    return run_id


def test_damaged_codes_are_one_line(cli, store, tmp_path) -> None:
    garbage = store_codes(store, tmp_path / "a")
    (tmp_path / "a" / "codes.npz").write_bytes(b"not a zip file at all")
    Tracker(store).log_artifacts(garbage, tmp_path / "a")
    code, _, err = cli("eval", garbage, "--tracking-uri", store, "--device", "cpu")
    assert code == 2 and f"codes.npz of run '{garbage}' is damaged" in err and "bench run --force" in err
    assert len(err.strip().splitlines()) == 1
    objects = np.empty(2, dtype=object)
    objects[:] = [[1], [2, 3]]
    pickled = store_codes(store, tmp_path / "b", gallery_codes=objects, query_codes=objects,
                          gallery_labels=np.arange(2), query_labels=np.arange(2), bits=np.int64(12))
    code, _, err = cli("eval", pickled, "--tracking-uri", store, "--device", "cpu")
    assert code == 2 and "is damaged" in err and "Traceback" not in err


def test_queries_without_a_relevant_item_are_warned_about(cli, store, tmp_path) -> None:
    rng = np.random.default_rng(0)
    gallery = rng.choice(np.array([-1, 1], dtype=np.int8), (20, 12))
    query = rng.choice(np.array([-1, 1], dtype=np.int8), (4, 12))
    run_id = store_codes(store, tmp_path / "c", gallery_codes=pack_codes(gallery), query_codes=pack_codes(query),
                         gallery_labels=np.repeat(np.arange(3), [7, 7, 6]), query_labels=np.array([0, 1, 2, 3]),
                         bits=np.int64(12))
    code, _, err = cli("eval", run_id, "--tracking-uri", store, "--device", "cpu")
    assert code == 0 and "warning: 1 quer(y/ies) have no gallery image of their identity" in err


def render(table) -> str:
    out = io.StringIO()
    Console(file=out, width=250).print(table)
    return out.getvalue()


def result(metrics: dict[str, float]) -> N:
    spec = N(protocol=N(split="closed-set", split_seed=0), label="lsh", bits=12, seed=0, name="lsh-12b-s0")
    return N(spec=spec, metrics=metrics, seconds=1.0, status="FINISHED", collapsed="")


@pytest.mark.parametrize("wide", [False, True])
def test_the_results_table_marks_a_map_with_unscored_queries(wide: bool) -> None:
    marked = result({"map": 0.279, "map_worst": 0.2, "map_best": 0.3, "queries_without_relevant": 1.0})
    clean = result({"map": 0.5, "map_worst": 0.4, "map_best": 0.6, "queries_without_relevant": 0.0})
    text = render(results_table([marked, clean], wide=wide))
    assert ("0.2790!" if wide else "0.279 (0.200-0.300)!") in text
    assert "0.500 (0.400-0.600)!" not in text and "0.5000!" not in text
    assert "some queries have no relevant gallery item" in text
    assert "no relevant" not in render(results_table([clean], wide=wide))


def test_a_huge_sweep_grid_is_refused_from_its_lists(cli, tmp_path) -> None:
    """Issue 24 item 3: 9 keys of 10 values (10^9 runs) used to be expanded in full first."""
    keys = ["optimizer.lr", "optimizer.weight_decay", "protocol.epochs", "training.batch_size", "dcbh.alpha",
            "dcbh.beta", "dcbh.gamma", "dataset.seed", "protocol.input_size"]
    lines = ["methods: [dcbh]", "bits: [12]", "datasets: [synthfaces]", "overrides:"]
    lines += [f"  {key}: [{', '.join(str(v + 1) for v in range(10))}]" for key in keys]
    (tmp_path / "huge.yaml").write_text("\n".join(lines) + "\n")
    code, _, err = cli("sweep", str(tmp_path / "huge.yaml"))
    assert code == 2 and "the sweep spans 1,000,000,000 runs" in err and "--max-runs 1000000000" in err
    (tmp_path / "bad.yaml").write_text("methods: [lsh]\nbits: [8, 12]\ndatasets: [synthfaces]\noverrides:\n"
                                       "  nokey: [1, 2, 3]\n  protocol.epochs: [1, 2]\n")
    code, _, err = cli("sweep", str(tmp_path / "bad.yaml"), "--max-runs", "12")
    assert code == 2 and "nokey" in err
    code, _, err = cli("sweep", str(tmp_path / "bad.yaml"), "--max-runs", "11")
    assert code == 2 and "spans 12 runs" in err
