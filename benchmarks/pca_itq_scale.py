"""Time per code length and peak memory of ``pca-itq`` (and ``pca-sign``) on a
YouTube-Faces-sized training set: synthetic float32 vectors, 60,000 x 3072 by default
(215 MB as uint8, 737 MB as float32), as the harness calls the method: fit on the training
vectors, encode the training vectors (the gallery) and 7,975 query vectors, per length.

    .venv/bin/python benchmarks/pca_itq_scale.py [--n 60000] [--bits 12,24,36,48]

Prints the seconds of each length (the first one includes the shared PCA) and the peak
resident memory of the process (``ru_maxrss``), data included. Run it with
``PYTHONPATH`` pointing at another checkout to measure that checkout's implementation.
"""

from __future__ import annotations

import argparse
import resource
import time


def main() -> None:
    import numpy as np

    from baselines.itq import PCAITQ, PCAITQConfig, PCASign, PCASignConfig

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=60_000)
    parser.add_argument("--queries", type=int, default=7_975)
    parser.add_argument("--dims", type=int, default=3072)
    parser.add_argument("--bits", default="12,24,36,48")
    parser.add_argument("--method", choices=["pca-itq", "pca-sign"], default="pca-itq")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    basis = rng.standard_normal((64, args.dims)).astype(np.float32)  # low-rank faces + noise
    x = np.empty((args.n, args.dims), dtype=np.float32)
    for start in range(0, args.n, 4096):
        rows = min(4096, args.n - start)
        x[start : start + rows] = rng.standard_normal((rows, 64), dtype=np.float32) @ basis
        x[start : start + rows] += rng.standard_normal((rows, args.dims), dtype=np.float32)
    query = x[: args.queries] + rng.standard_normal((args.queries, args.dims), dtype=np.float32)
    method, config = (PCAITQ(), PCAITQConfig()) if args.method == "pca-itq" else (PCASign(), PCASignConfig())
    base_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{args.method}: {args.n:,} x {args.dims} float32 training vectors ({x.nbytes / 2**20:.0f} MiB), "
          f"{args.queries:,} queries; peak before fitting {base_mib:.0f} MiB")
    for bits in (int(b) for b in args.bits.split(",")):
        start, cpu = time.perf_counter(), time.process_time()
        encoder = method.fit(x, np.zeros(args.n), bits, 0, config)
        gallery, queries = encoder(x), encoder(query)
        seconds, cpu_s = time.perf_counter() - start, time.process_time() - cpu
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{bits:>3} bits: {seconds:6.2f} s wall, {cpu_s:6.2f} s CPU, codes {gallery.shape} + {queries.shape}, "
              f"peak RSS so far {peak:.0f} MiB")


if __name__ == "__main__":
    main()
