"""pytest-benchmark view of the evaluation engine (a smaller size than eval_table.py).

    .venv/bin/pytest benchmarks/bench_evaluation.py --benchmark-only

2,000 queries x 20,000 gallery x 48 bits, 10 classes: our full evaluation, the same
without map_legacy, faiss's distance matrix and the peer-style loop on 200 queries.
The full-size table (and the targets) is benchmarks/eval_table.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from eval_table import clustered, faiss_matrix, peer_style, plugins  # noqa: E402

from bench.config.protocol import EvaluationSpec  # noqa: E402
from bench.evaluation import evaluate  # noqa: E402

SPEC = EvaluationSpec(precision_at=[50])


@pytest.fixture(scope="module")
def codes():
    gallery, gl, query, ql = clustered(np.random.default_rng(0), (20_000, 2_000), 48, 10)
    evaluate(query[:8], ql[:8], gallery[:100], gl[:100], SPEC, device="cpu", plugin_metrics=plugins())  # load the kernel
    return query, ql, gallery, gl


def test_ours_full(benchmark, codes):
    benchmark(evaluate, *codes, SPEC, device="cpu", plugin_metrics=plugins())


def test_ours_without_legacy(benchmark, codes):
    benchmark(evaluate, *codes, SPEC, device="cpu", plugin_metrics={})


def test_faiss_distance_matrix(benchmark, codes):
    query, _, gallery, _ = codes
    benchmark(faiss_matrix, query, gallery)


def test_peer_style_200_queries(benchmark, codes):
    query, ql, gallery, gl = codes
    benchmark.pedantic(peer_style, args=(query[:200], ql[:200], gallery, gl), rounds=1, iterations=1)
