"""Time of the legacy metric family on 10k queries x 100k gallery (48 bits, 10 classes, the
codes of ``eval_table.py``): the default legacy metrics (one shared tie-counting pass plus
the stable top-50 pass) and the opt-in released tie order (``map_legacy_argsort``, a numpy
``argsort`` per query; ``precision_at_50_legacy_argsort`` comes from the same sort).

    .venv/bin/python benchmarks/legacy_metrics.py [--queries 10000] [--gallery 100000] [--bits 48]

``--time-queries N`` times the argsort metrics on the first N queries only and scales the
time to all queries (the default legacy metrics always run on all of them).
"""

from __future__ import annotations

import argparse
import os
import time


def main() -> None:
    import numpy as np

    from bench.evaluation.plugin_metrics import CodeSets
    from plugins.metrics import legacy_ddh, legacy_ranking

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--gallery", type=int, default=100_000)
    parser.add_argument("--bits", type=int, default=48)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--time-queries", type=int, default=None)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    centers = rng.choice(np.array([-1, 1], dtype=np.int8), size=(args.classes, args.bits))
    ql, gl = rng.integers(0, args.classes, args.queries), rng.integers(0, args.classes, args.gallery)
    query, gallery = centers[ql], centers[gl]
    for codes in (query, gallery):
        codes[rng.random(codes.shape) < 0.2] *= -1
    codes = CodeSets(query, ql, gallery, gl, "cpu")
    warm = CodeSets(query[:2], ql[:2], gallery[:100], gl[:100], "cpu")
    for metric in (legacy_ddh.legacy_ap, legacy_ranking.legacy_precision_at_50, legacy_ranking.legacy_ap_argsort):
        metric(warm)  # numba compilation (or loading its cache) is not timed

    start, cpu = time.perf_counter(), time.process_time()
    default = {name: float(fn(codes).mean()) for name, fn in (
        ("map_legacy", legacy_ddh.legacy_ap), ("precision_r2_legacy", legacy_ddh.legacy_precision_r2),
        ("recall_r2_legacy", legacy_ddh.legacy_recall_r2),
        ("precision_at_50_legacy", legacy_ranking.legacy_precision_at_50))}
    default_s, default_cpu = time.perf_counter() - start, time.process_time() - cpu

    timed_q = min(args.time_queries or args.queries, args.queries)
    subset = CodeSets(query[:timed_q], ql[:timed_q], gallery, gl, "cpu")
    start, cpu = time.perf_counter(), time.process_time()
    ap, top = legacy_ranking.released_ranking_scores(subset)
    argsort_s = (time.perf_counter() - start) * args.queries / timed_q
    argsort_cpu = (time.process_time() - cpu) * args.queries / timed_q

    print(f"{args.queries:,} queries x {args.gallery:,} gallery x {args.bits} bits, {os.cpu_count()} CPUs")
    print(f"default legacy metrics (4, all queries): {default_s:.2f} s wall, {default_cpu:.2f} s CPU  " +
          ", ".join(f"{k} {v:.4f}" for k, v in default.items()))
    scaled = "" if timed_q == args.queries else f" (timed on {timed_q:,} queries, scaled)"
    print(f"map_legacy_argsort + precision_at_50_legacy_argsort: {argsort_s:.1f} s wall, {argsort_cpu:.1f} s CPU{scaled}  "
          f"map_legacy_argsort {ap.mean():.4f} on the timed queries, precision_at_50 {top.mean():.4f}")


if __name__ == "__main__":
    main()
