"""Retrieval cost (issue 26, items 4-5): distractors follow the gallery's code distribution,
the measured recall and distances agree with a brute-force reference, heap per face of a flat
index is its code size, ``bench cost`` logs the study to the run, the benchmark's smoke mode."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.retrieval.cost import CostSettings, FloatKind, measure, measure_sizes
from bench.retrieval.distractors import CodeModel, FloatModel
from bench.retrieval.index import IndexKind

ROOT = Path(__file__).resolve().parents[1]


def clustered(bits=48, identities=30, per_identity=6, flip=0.08, seed=0):
    """Codes {0, 1} of identities with skewed bit marginals (so uniform bits do not match)."""
    rng = np.random.default_rng(seed)
    centres = (rng.random((identities, bits)) < np.linspace(0.1, 0.9, bits)).astype(np.uint8)
    labels = np.repeat(np.arange(identities), per_identity)
    return centres[labels] ^ (rng.random((len(labels), bits)) < flip).astype(np.uint8), labels


def within_distance(codes01, per_identity):
    """Mean Hamming distance between codes of one identity (consecutive blocks)."""
    blocks = codes01[: len(codes01) // per_identity * per_identity].reshape(-1, per_identity, codes01.shape[1])
    pairs = (blocks[:, :, None, :] != blocks[:, None, :, :]).sum(axis=3)
    return pairs.sum() / (len(blocks) * per_identity * (per_identity - 1))


def statistics_match(gallery01, labels, other01, per_identity):
    """Bit means within 0.05 and within-identity distance within 15% of the gallery's."""
    order = np.argsort(labels, kind="stable")
    means = np.abs(gallery01.mean(axis=0) - other01.mean(axis=0)).max() < 0.05
    ours, theirs = within_distance(gallery01[order], per_identity), within_distance(other01, per_identity)
    return bool(means and abs(ours - theirs) < 0.15 * ours)


def test_distractors_follow_the_gallery_statistics_and_uniform_bits_do_not():
    gallery, labels = clustered()
    model = CodeModel.fit(gallery, labels)
    distractors = np.unpackbits(model.packed(60_000, seed=1), axis=1, count=48)
    assert model.per_identity == 6
    assert statistics_match(gallery, labels, distractors, 6)
    uniform = np.random.default_rng(2).integers(0, 2, distractors.shape, dtype=np.uint8)
    assert not statistics_match(gallery, labels, uniform, 6)  # the check can fail
    # new identities, not copies of the gallery's: most centres differ from every gallery centre
    centres = distractors[::6][:500]
    nearest = (centres[:, None, :] != model.centres[None]).sum(axis=2).min(axis=1)
    assert (nearest > 0).mean() > 0.9


def test_packed_distractors_pad_a_12_bit_code_with_zero_bits():
    gallery, labels = clustered(bits=12)
    packed = CodeModel.fit(gallery, labels).packed(1000, seed=0)
    assert packed.shape == (1000, 2) and not (packed[:, 1] & 0x0F).any()


def test_float_model_refits_its_own_samples():
    gallery, labels = clustered()
    model = FloatModel.modelled_on(CodeModel.fit(gallery, labels), dim=16, seed=0)
    raw = np.repeat(model.centres, 200, axis=0) + np.random.default_rng(0).standard_normal((len(model.centres) * 200, 16)) * model.spread
    refit = FloatModel.fit(raw, np.repeat(np.arange(len(model.centres)), 200))
    assert np.allclose(refit.spread, model.spread, rtol=0.1)
    assert np.allclose(np.linalg.norm(model.vectors(100, 0), axis=1), 1, atol=1e-5)


def brute_force(database, queries, k):
    """Hamming distances of packed rows by numpy, the k-th nearest distance per query."""
    distances = np.unpackbits(database[None] ^ queries[:, None], axis=2).sum(axis=2)
    return np.sort(distances, axis=1)[:, k - 1], distances


def test_recall_and_distances_agree_with_a_brute_force_reference():
    gallery, labels = clustered()
    database = CodeModel.fit(gallery, labels).packed(20_000, seed=3)
    queries = np.packbits(gallery[::6], axis=1)
    settings = CostSettings(k=10, queries=5, batch=5, batches=1)
    kth, distances = brute_force(database, queries, 10)
    exact_row, exact = measure(IndexKind.FLAT, database, queries, 48, settings)
    assert (exact.distances[:, -1] == kth).all() and exact_row.recall is None
    row, hits = measure(IndexKind.HASH, database, queries, 48, settings, exact)
    true = np.take_along_axis(distances, np.where(hits.positions < 0, 0, hits.positions), axis=1)
    expected = ((true <= kth[:, None]) & (hits.positions >= 0)).mean()
    assert row.recall == pytest.approx(expected) and 0 < row.recall < 1  # not a trivially perfect index
    assert exact_row.code_bytes == 6 and exact_row.ram_bytes_per_face == pytest.approx(6, abs=0.5)


def test_measure_sizes_nests_galleries_caps_kinds_and_adds_the_exact_reference():
    gallery, labels = clustered()
    database = CodeModel.fit(gallery, labels).packed(3000, seed=0)
    settings = CostSettings(queries=3, batch=3, batches=1)
    rows = measure_sizes([IndexKind.MULTIHASH, IndexKind.HNSW], database, database[:4], 48, [1000, 3000], settings,
                         {IndexKind.HNSW: 1000})
    assert [(r.kind, r.size) for r in rows] == [("flat", 1000), ("multihash", 1000), ("hnsw", 1000),
                                               ("flat", 3000), ("multihash", 3000)]
    vectors = FloatModel.modelled_on(CodeModel.fit(gallery, labels), 8, 0).vectors(500, 1)
    rows = measure_sizes([FloatKind.HNSW], vectors, vectors[:4], 8, [500], settings, {})
    assert [r.kind for r in rows] == ["float-flat", "float-hnsw"] and rows[1].recall == 1.0  # queries in the set
    assert rows[0].code_bytes == 32


def method_run(store, tmp_path):
    """A finished child run of a fitted method (12-bit codes, no model) as `bench run` stores one."""
    from bench.evaluation.codes import pack_codes
    from bench.tracking import tags
    from bench.tracking.client import Tracker

    rng = np.random.default_rng(0)
    gallery, query = rng.choice(np.array([-1, 1], dtype=np.int8), (40, 12)), rng.choice(np.array([-1, 1], dtype=np.int8), (6, 12))
    tracker = Tracker(store)
    run_id = tracker.start_run(tracker.experiment("cost-test"), "lsh-12b-s0", {tags.METHOD: "lsh"})
    folder = tmp_path / "art"
    folder.mkdir()
    np.savez_compressed(folder / "codes.npz", gallery_codes=pack_codes(gallery), query_codes=pack_codes(query),
                        gallery_labels=rng.integers(0, 4, 40), query_labels=rng.integers(0, 4, 6),
                        gallery_index=np.arange(40), query_index=np.arange(40, 46), bits=np.int64(12))
    tracker.log_artifacts(run_id, folder)
    tracker.end(run_id)
    return run_id


def test_bench_cost_logs_the_study_to_the_run(cli, store, tmp_path, monkeypatch):
    from bench.tracking.reading import StoreReader

    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    run_id = method_run(store, tmp_path)
    out = tmp_path / "cost.json"
    code, stdout, err = cli("cost", run_id, "--sizes", "200,1000", "--queries", "3", "--batch", "3",
                            "--kinds", "flat,multihash", "--float-dim", "8", "--out", str(out))
    assert code == 0, err
    assert "multihash" in stdout and "peak memory" in stdout
    study = json.loads(out.read_text())
    assert study["bits"] == 12 and {r["kind"] for r in study["rows"]} == {"flat", "multihash", "float-flat", "float-hnsw"}
    run = StoreReader(store).run(run_id)
    assert run.data.metrics["cost_bytes_per_face"] == 1.5  # face_bytes: 12 bits / 8, as the run's bytes_per_face
    assert {r["code_bytes"] for r in study["rows"] if r["kind"] == "multihash"} == {2}  # the index pads to 16 bits
    assert "cost_multihash_1e3_recall" in run.data.metrics and "cost_flat_200_query_ms" in run.data.metrics
    assert "retrieval_cost.json" in StoreReader(store).artifact_paths(run_id)


@pytest.mark.parametrize("args, message", [
    (["--kinds", "flat,bogus"], "unknown index kind 'bogus'"),
    (["--sizes", "ten"], "--sizes ten"),
    (["--cap", "nope=10"], "unknown index kind 'nope'"),
])
def test_bench_cost_bad_input_is_one_line_and_exit_2(cli, store, tmp_path, monkeypatch, args, message):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    run_id = method_run(store, tmp_path)
    code, _, err = cli("cost", run_id, *args)
    assert code == 2 and message in err and "Traceback" not in err


def test_benchmark_script_smoke_mode_runs_and_checks_itself():
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "retrieval_cost.py"), "--smoke"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "smoke check passed" in done.stdout


def test_leaderboard_and_html_report_show_the_cost_of_each_row(cli, store, tmp_path, monkeypatch):
    from bench.tracking.reading import StoreReader

    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    tiny = ["--dataset", "synthfaces", "--set", "dataset.identities=6", "--set", "dataset.images_per_identity=6",
            "--set", "dataset.val=1", "--set", "dataset.query=2"]
    assert cli("run", "--method", "lsh", "--bits", "12,48", "--epochs", "1", *tiny)[0] == 0
    assert cli("run", "--method", "dcbh", "--bits", "12", "--epochs", "1", *tiny)[0] == 0  # one protocol
    code, out, err = cli("leaderboard")
    assert code == 0 and "retrieval cost" not in out  # nothing measured yet: no table
    code, out, err = cli("cost", "--sizes", "1e6", "--kinds", "flat,multihash", "--float-dim", "8",  # every run
                         "--queries", "3", "--batch", "3", "--cap", "float-hnsw=10")
    assert code == 0 and "lsh-12b-s0" in out and "lsh-48b-s0" in out, err
    assert " ".join(out.split()).count("encoder: not measured (run 'lsh-") == 2  # fitted methods have no model
    reader = StoreReader(store)
    deep = reader.run(reader.find("dcbh-12b-s0").info.run_id).data.metrics
    assert deep["cost_encode_images_per_s"] > 0 and deep["cost_encode_ms_per_image"] > 0
    code, _, err = cli("cost", "lsh-48b-s0", "--sizes", "1000", "--kinds", "flat", "--float-dim", "0", "--queries", "3")
    run_id = reader.find("lsh-48b-s0").info.run_id
    study = json.loads(reader.download(run_id, "retrieval_cost.json", tmp_path / "dl").read_text())
    assert code == 0 and {(r["kind"], r["size"]) for r in study["rows"]} >= {("flat", 1000), ("flat", 10**6),
                                                                                ("multihash", 10**6)}  # merged
    code, _, err = cli("cost", "--out", str(tmp_path / "x.json"))
    assert code == 2 and "--out writes one run's results" in err
    code, out, err = cli("leaderboard")
    assert code == 0 and "retrieval cost at 10^6 faces" in out and "MIH recall@1e6" in out
    code, _, err = cli("leaderboard", "--format", "html", "--out", str(tmp_path / "r.html"), "--gallery-queries", "0")
    html = (tmp_path / "r.html").read_text()
    assert code == 0 and 'id="cost"' in html and "against bytes per face and query time at 10^6 faces" in html


def test_accuracy_cost_plot_needs_query_times(tmp_path):
    import pandas as pd

    from bench.reports.cost import accuracy_cost_plot

    table = pd.DataFrame({"variant": ["a", "a", "b"], "bits": [12, 48, 48], "map": [0.3, 0.5, 0.6],
                          "B/face": [2.0, 6.0, 6.0], "flat ms@1e6": [3.0, 4.0, 4.1], "float B/face": [512.0] * 3,
                          "float ms@1e6": [60.0] * 3})
    path = accuracy_cost_plot(table, "map", tmp_path / "p.png")
    assert path is not None and path.read_bytes()[:4] == b"\x89PNG"
    assert accuracy_cost_plot(table.drop(columns="flat ms@1e6"), "map", tmp_path / "q.png") is None


def float_gallery(dim=32, identities=30, per_identity=6, seed=0):
    """Clustered float embeddings (a shared offset, identity centres, within-identity noise) as a
    face network's; not unit norm, as dlib's are not."""
    rng = np.random.default_rng(seed)
    centres = 0.6 * rng.standard_normal(dim) + rng.standard_normal((identities, dim))
    labels = np.repeat(np.arange(identities), per_identity)
    return (centres[labels] + 0.3 * rng.standard_normal((len(labels), dim))) * 2.5, labels


def float_statistics(vectors, per_identity):
    """Mean vector, and mean cosine within an identity's consecutive rows and between identities."""
    groups = vectors[: len(vectors) // per_identity * per_identity].reshape(-1, per_identity, vectors.shape[1])
    within = np.einsum("gid,gjd->gij", groups, groups)
    off = ~np.eye(per_identity, dtype=bool)
    means = groups.mean(axis=1)
    between = (means @ means.T)[~np.eye(len(means), dtype=bool)]
    return vectors.mean(axis=0), within[:, off].mean(), between.mean()


def test_float_distractors_follow_the_gallery_embeddings_and_isotropic_noise_does_not():
    from bench.retrieval.distractors import normalise
    from bench.retrieval.study import grown_embeddings

    raw, labels = float_gallery()
    grown, queries = grown_embeddings(raw, labels, raw[:3], 30 * 6 + 3000, seed=1)
    gallery, distractors = grown[: len(raw)], grown[len(raw):]
    assert np.allclose(np.linalg.norm(grown, axis=1), 1, atol=1e-5) and np.allclose(queries, normalise(raw[:3]))
    g_mean, g_within, g_between = float_statistics(gallery, 6)
    d_mean, d_within, d_between = float_statistics(distractors, 6)
    assert np.abs(g_mean - d_mean).max() < 0.05  # the same offset direction
    assert abs(g_within - d_within) < 0.05 and abs(g_between - d_between) < 0.1
    noise = normalise(np.random.default_rng(2).standard_normal(distractors.shape))
    n_mean, n_within, _ = float_statistics(noise, 6)
    assert np.abs(g_mean - n_mean).max() > 0.1 and abs(g_within - n_within) > 0.3


def float_run(store, tmp_path):
    """A finished float top line run (embeddings.npz, no codes) as `bench run --method dlib-float` stores one."""
    from bench.tracking import tags
    from bench.tracking.client import Tracker

    raw, labels = float_gallery(dim=16, identities=8, per_identity=5)
    tracker = Tracker(store)
    run_id = tracker.start_run(tracker.experiment("cost-test"), "dlib-float-48b-s0", {tags.METHOD: "dlib-float"})
    folder = tmp_path / "float-art"
    folder.mkdir()
    np.savez_compressed(folder / "embeddings.npz", gallery_embeddings=raw.astype(np.float32),
                        query_embeddings=raw[::5].astype(np.float32) + 0.01, gallery_labels=labels,
                        query_labels=labels[::5], gallery_index=np.arange(40), query_index=np.arange(40, 48))
    tracker.log_artifacts(run_id, folder)
    tracker.end(run_id)
    return run_id


def test_bench_cost_measures_a_float_run_on_its_own_embeddings(cli, store, tmp_path, monkeypatch):
    from bench.tracking.reading import StoreReader

    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    run_id = float_run(store, tmp_path)
    out = tmp_path / "cost.json"
    code, stdout, err = cli("cost", run_id, "--sizes", "200,1000", "--queries", "3", "--batch", "3",
                            "--cap", "float-hnsw=200", "--out", str(out))
    assert code == 0, err
    assert "16-D float embeddings" in stdout and "own 16-D embeddings" in stdout
    study = json.loads(out.read_text())
    assert study["dim"] == 16 and study["bits"] == 0 and study["gallery"] == 40
    assert [(r["kind"], r["size"]) for r in study["rows"]] == [("float-flat", 200), ("float-hnsw", 200),
                                                               ("float-flat", 1000)]
    assert all(r["code_bytes"] == 64 for r in study["rows"]) and study["rows"][1]["recall"] is not None
    metrics = StoreReader(store).run(run_id).data.metrics
    assert metrics["cost_bytes_per_face"] == 64 == metrics["cost_float_bytes_per_face"]  # 16 float32
    assert "cost_float-hnsw_200_recall" in metrics and "cost_float-flat_1e3_ram_bytes_per_face" in metrics
