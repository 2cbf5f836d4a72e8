"""bf16 vs fp32: DCBH at 48 bits on synthfaces, seeds 0-2, through ``bench.running.execution.compute_run``
(no MLflow needed, so it runs on a bare GPU machine); prints each run's map and the mean and
standard deviation per precision.

    python benchmarks/precision_check.py EPOCHS IDENTITIES DEVICE [SEEDS [PRECISIONS]]   # e.g. 50 200 cuda
    .venv/bin/python benchmarks/precision_check.py 1 4 cpu 1 fp32                      # smoke (CI)

SEEDS: how many (default 3: seeds 0-2); PRECISIONS: a comma list (default bf16,fp32).
"""
import statistics
import sys
import time

from bench.api.pluginhost import load_plugins
from bench.config.settings import build_protocol
from bench.data.faces import TRAIN
from bench.data.loading import load_data
from bench.running.execution import compute_run
from bench.running.planning import plan_runs
from bench.running.request import RunRequest
from bench.training.acceleration import AccelerationSpec


def main() -> None:
    epochs, ids, device = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    seeds = range(int(sys.argv[4]) if len(sys.argv) > 4 else 3)
    precisions = sys.argv[5].split(",") if len(sys.argv) > 5 else ["bf16", "fp32"]
    host = load_plugins()
    protocol = build_protocol({"dataset": "synthfaces", "epochs": epochs}, {}, {"identities": ids})
    data = load_data(host, protocol, None)
    print(f"synthfaces {ids} ids, {int((data.split == TRAIN).sum())} train, {epochs} epochs, dcbh 48 bits, {device}", flush=True)
    maps = {}
    for seed in seeds:
        for precision in precisions:
            [run] = plan_runs(host, RunRequest(methods=["dcbh"], bits=[48], seeds=[seed], protocol=protocol, device=device,
                                               acceleration=AccelerationSpec(precision=precision)), data=data)
            start = time.perf_counter()
            m = compute_run(run).evaluation.metrics
            maps.setdefault(precision, []).append(m["map"])
            print(f"seed {seed} {precision}: map {m['map']:.4f} ({m['map_worst']:.4f}-{m['map_best']:.4f}) "
                  f"{time.perf_counter() - start:.1f} s", flush=True)
    for p, v in maps.items():
        spread = statistics.stdev(v) if len(v) > 1 else float("nan")
        print(f"{p}: mean {statistics.mean(v):.4f} std {spread:.4f} over {len(v)} seeds", flush=True)


if __name__ == "__main__":
    main()
