"""Report statistics, galleries and plots checked against brute force and hand-made cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.api.errors import BenchError
from bench.evaluation.codes import pack_codes
from bench.reports import plots
from bench.reports.gallery import GREEN, RED, frame_colours, run_gallery, select, top_matches
from bench.reports.stats import bootstrap_ci, holm, paired_signflip_test


def test_bootstrap_interval_contains_mean_and_shrinks_with_more_queries():
    rng = np.random.default_rng(1)
    widths = []
    for n in (50, 500, 5000):
        ap = rng.beta(2, 3, size=n)
        lo, hi = bootstrap_ci(ap, resamples=1000, seed=0)
        assert lo < ap.mean() < hi
        widths.append(hi - lo)
    assert widths[0] > widths[1] > widths[2]
    # the width follows the normal approximation 2 * 1.96 * sd / sqrt(n) to within 15%
    assert widths[2] == pytest.approx(2 * 1.96 * ap.std() / np.sqrt(5000), rel=0.15)


def test_paired_test_flags_a_clearly_better_method_and_not_an_identical_one():
    rng = np.random.default_rng(2)
    reference = rng.uniform(0.2, 0.8, size=200)
    better = np.clip(reference + rng.normal(0.05, 0.03, size=200), 0, 1)
    noise = reference + rng.normal(0.0, 0.03, size=200)  # same mean in expectation
    assert paired_signflip_test(better, reference, resamples=2000) < 0.001
    assert paired_signflip_test(reference.copy(), reference, resamples=2000) == 1.0
    assert paired_signflip_test(noise, reference, resamples=2000) > 0.05
    # Monte Carlo p agrees with the exact sign-flip p-value on a tiny case (2^6 flips)
    a, b = np.array([0.9, 0.8, 0.7, 0.75, 0.6, 0.65]), np.array([0.5, 0.6, 0.72, 0.5, 0.55, 0.6])
    d = a - b
    signs = np.array(np.meshgrid(*[[-1, 1]] * 6)).reshape(6, -1).T
    exact = np.mean(np.abs(signs @ d) >= abs(d.sum()) - 1e-12)
    assert paired_signflip_test(a, b, resamples=20000) == pytest.approx(exact, abs=0.01)


def test_holm_matches_hand_computation():
    assert holm([0.01, 0.02, 0.5, 0.001]) == [0.03, 0.04, 0.5, 0.004]


def test_top_matches_equal_brute_force_with_stable_ties():
    rng = np.random.default_rng(3)
    q = np.where(rng.random((5, 12)) > 0.5, 1, -1)
    g = np.where(rng.random((40, 12)) > 0.5, 1, -1)
    idx, dist = top_matches(q, g, 10)
    for i in range(5):
        d = [int(np.sum(q[i] != g[j])) for j in range(40)]
        expected = sorted(range(40), key=lambda j: (d[j], j))[:10]
        assert idx[i].tolist() == expected and dist[i].tolist() == [d[j] for j in expected]


def fake_run(tmp_path, bits=8):
    """A dataset of 12 images (4 identities) and a codes.npz where gallery/query indices are shuffled."""
    rng = np.random.default_rng(4)
    labels = np.repeat(np.arange(4), 3)
    images = rng.integers(0, 256, size=(12, 3, 8, 8), dtype=np.uint8)
    query_index = np.array([2, 5, 8, 11])
    gallery_index = np.array([10, 0, 7, 1, 4, 9, 3, 6])
    codes = np.where(rng.random((12, bits)) > 0.5, 1, -1).astype(np.int8)
    path = tmp_path / "codes.npz"
    np.savez(path, gallery_codes=pack_codes(codes[gallery_index]), query_codes=pack_codes(codes[query_index]),
             gallery_labels=labels[gallery_index], query_labels=labels[query_index],
             gallery_index=gallery_index, query_index=query_index, bits=np.int64(bits))
    return path, images, labels, codes


def test_gallery_selection_maps_back_to_dataset_indices(tmp_path):
    path, images, labels, codes = fake_run(tmp_path)
    queries, results, dist = select(np.load(path), labels, count=2, k=5)
    assert queries.tolist() == [2, 11]  # evenly spaced over the 4 queries
    gallery = [10, 0, 7, 1, 4, 9, 3, 6]
    for row, q in enumerate(queries):
        d = {j: int(np.sum(codes[q] != codes[j])) for j in gallery}
        expected = sorted(gallery, key=lambda j: (d[j], gallery.index(j)))[:5]
        assert results[row].tolist() == expected and dist[row].tolist() == [d[j] for j in expected]
    colours = frame_colours(labels[queries], labels[results])
    assert ((colours == GREEN) == (labels[results] == labels[queries][:, None])).all()
    assert set(np.unique(colours)) <= {GREEN, RED}
    png = run_gallery(path, images, labels, "t", tmp_path / "g.png", count=2, k=5)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_gallery_refuses_a_changed_dataset(tmp_path):
    path, images, labels, _ = fake_run(tmp_path)
    with pytest.raises(BenchError, match="do not match the rebuilt dataset"):
        select(np.load(path), (labels + 1) % 4)


def test_plots_write_pngs_and_skip_missing_curves(tmp_path):
    cells = pd.DataFrame({"variant": ["a", "a", "b"], "bits": [12, 24, 12], "mean": [0.3, 0.5, 0.4],
                          "std": [0.01, np.nan, 0.02]})
    published = pd.DataFrame({"method": ["a"], "source": ["paper"], "bits": [12], "map": [0.6]})
    assert plots.metric_vs_bits(cells, "map", tmp_path / "m.png", published).stat().st_size > 1000
    assert plots.pr_curves({}, ["a"], tmp_path / "pr.png") is None
    curves = {("a", 12): [{"pr_recall": [0.1, 0.5, 1.0], "pr_precision": [0.9, 0.5, 0.1]}] * 2}
    assert plots.pr_curves(curves, ["a", "b"], tmp_path / "pr.png").is_file()
    runs = pd.DataFrame({"variant": ["a", "b"], "bits": [12, 12], "metrics.precision_at_50": [0.5, 0.4],
                         "metrics.precision_at_100": [0.3, 0.2]})
    assert plots.precision_at_k(runs, ["a", "b"], tmp_path / "pk.png").is_file()
    assert plots.precision_at_k(runs[["variant", "bits"]], ["a"], tmp_path / "pk2.png") is None
