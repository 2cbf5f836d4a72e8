"""Profile one CUDA evaluation (8,000 x 64,000 x 48 bits) and print the top kernels by CUDA time.

    python3 benchmarks/profile_cuda.py
"""

from __future__ import annotations

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

from bench.config.protocol import EvaluationSpec
from bench.evaluation import evaluate


def main() -> None:
    rng = np.random.default_rng(0)
    centers = rng.choice(np.array([-1, 1], dtype=np.int8), size=(10, 48))
    gl, ql = rng.integers(0, 10, 64_000), rng.integers(0, 10, 8_000)
    gallery, query = centers[gl], centers[ql]
    for codes in (gallery, query):
        codes[rng.random(codes.shape) < 0.2] *= -1
    spec = EvaluationSpec(precision_at=[50])
    for _ in range(2):
        evaluate(query, ql, gallery, gl, spec, device="cuda", plugin_metrics={})
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        evaluate(query, ql, gallery, gl, spec, device="cuda", plugin_metrics={})
        torch.cuda.synchronize()
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=15, max_name_column_width=60))


if __name__ == "__main__":
    main()
