"""Profile one CUDA evaluation (8,000 x 64,000 x 48 bits) and print the top kernels by CUDA time.

    python3 benchmarks/profile_cuda.py
    .venv/bin/python benchmarks/profile_cuda.py --device cpu --queries 100 --gallery 1000   # smoke (CI)
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

from bench.config.protocol import EvaluationSpec
from bench.evaluation import evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--queries", type=int, default=8_000)
    parser.add_argument("--gallery", type=int, default=64_000)
    args = parser.parse_args()
    cuda = args.device == "cuda"
    rng = np.random.default_rng(0)
    centers = rng.choice(np.array([-1, 1], dtype=np.int8), size=(10, 48))
    gl, ql = rng.integers(0, 10, args.gallery), rng.integers(0, 10, args.queries)
    gallery, query = centers[gl], centers[ql]
    for codes in (gallery, query):
        codes[rng.random(codes.shape) < 0.2] *= -1
    spec = EvaluationSpec(precision_at=[50])
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    for _ in range(2):
        evaluate(query, ql, gallery, gl, spec, device=args.device, plugin_metrics={})
    sync()
    activities = [ProfilerActivity.CPU, ProfilerActivity.CUDA] if cuda else [ProfilerActivity.CPU]
    with profile(activities=activities) as prof:
        evaluate(query, ql, gallery, gl, spec, device=args.device, plugin_metrics={})
        sync()
    order = "cuda_time_total" if cuda else "cpu_time_total"
    print(prof.key_averages().table(sort_by=order, row_limit=15, max_name_column_width=60))


if __name__ == "__main__":
    main()
