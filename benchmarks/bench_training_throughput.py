"""pytest-benchmark: training steps of dcbh, ddh and dsh at 32x32 and batch 256 on the
harness's path and on the reference PyTorch pipeline (see ``training_pipelines.py``).

    .venv/bin/pytest benchmarks/bench_training_throughput.py --benchmark-group-by=param:method

One round = ``FACEHASH_BENCH_STEPS`` training steps (default 2 on the CPU, 30 on CUDA),
``FACEHASH_BENCH_ROUNDS`` rounds (default 3) after a warmup round; images/s per round are
in ``extra_info``. Data: YouTube-Faces-size ``synthfaces`` (``FACEHASH_BENCH_IDENTITIES``
identities x 40 training images, default 1,595), batch ``FACEHASH_BENCH_BATCH`` (default 256).
``train_throughput.py`` prints the
same comparison as a table with the ratio per method.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from training_pipelines import HarnessPipeline, ReferencePipeline, Workload, youtube_faces_size  # noqa: E402

from bench.api.pluginhost import load_plugins  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
STEPS = int(os.environ.get("FACEHASH_BENCH_STEPS", 30 if DEVICE == "cuda" else 2))
ROUNDS = int(os.environ.get("FACEHASH_BENCH_ROUNDS", 3))
IDENTITIES = int(os.environ.get("FACEHASH_BENCH_IDENTITIES", 1595))
BATCH = int(os.environ.get("FACEHASH_BENCH_BATCH", 256))


@pytest.fixture(scope="module")
def host():
    return load_plugins()


@pytest.fixture(scope="module")
def data(host):
    return youtube_faces_size(host, IDENTITIES, 32)


@pytest.mark.parametrize("pipeline", ["harness", "reference"])
@pytest.mark.parametrize("method", ["dcbh", "ddh", "dsh"])
def test_training_steps(benchmark, host, data, method, pipeline):
    if method not in host.methods.names():
        pytest.skip(f"method {method} is not registered")
    work = Workload.build(host, method, data, batch_size=BATCH, device=DEVICE)
    pipe = HarnessPipeline(work) if pipeline == "harness" else ReferencePipeline(work)
    seconds = []
    try:
        benchmark.pedantic(lambda: seconds.append(pipe.seconds(STEPS)), rounds=ROUNDS,
                           warmup_rounds=1)
    finally:
        if isinstance(pipe, ReferencePipeline):
            pipe.close()
    batch = work.training.batch_size
    benchmark.extra_info.update({"device": DEVICE, "steps_per_round": STEPS, "batch_size": batch,
                                 "images_per_second": [STEPS * batch / s for s in seconds[1:]]})  # nominal batch
    assert all(s > 0 for s in seconds)
