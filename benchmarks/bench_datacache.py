"""How fast the dataset cache feeds the training loop (target: >= 50,000 images/s at 32x32).

Prepares a YouTube-Faces-sized ``synthfaces`` entry (1,595 identities x 45 images) in a
temporary cache, then measures, as the runner does it: opening the entry (memory-mapped,
split checksum verified), taking the train split, building the :class:`BatchSource`, and
iterating shuffled uint8 batches for a few epochs. The page cache is warm (the entry was
just written), as it is for every run after the first. On an oversubscribed CPU, torch's
multi-threaded ``index_select`` can be far slower than one thread: compare ``--threads 1``.

    .venv/bin/python benchmarks/bench_datacache.py [--identities 1595] [--per-identity 45]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch

from bench.api.pluginhost import load_plugins
from bench.data import cache as datacache
from bench.data.faces import TRAIN
from bench.training.batching import BatchSource


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--identities", type=int, default=1595)
    parser.add_argument("--per-identity", type=int, default=45)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--sampler", default="shuffle", choices=["shuffle", "sequential", "balanced"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    host = load_plugins()
    options = {"identities": args.identities, "images_per_identity": args.per_identity, "size": args.size}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ[datacache.CACHE_ENV] = tmp
        start = time.perf_counter()
        path = datacache.prepare(host, "synthfaces", None, options)
        prepare_s = time.perf_counter() - start

        start = time.perf_counter()
        data = datacache.load_dataset(host, "synthfaces", None, options)
        open_s = time.perf_counter() - start
        start = time.perf_counter()
        train_x, train_y = data.part(TRAIN)
        source = BatchSource(train_x, train_y, batch_size=args.batch_size, sampler=args.sampler,
                             seed=0, device=args.device)
        setup_s = time.perf_counter() - start
        epoch_s, seen = [], 0
        for _ in range(args.epochs):
            start = time.perf_counter()
            for images, _labels, _indices in source:
                seen += len(images)
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            epoch_s.append(time.perf_counter() - start)
    n_train = len(train_y)
    steady = n_train / min(epoch_s)
    end_to_end = args.epochs * n_train / (open_s + setup_s + sum(epoch_s))
    print(f"entry {path.name}: {len(data.labels):,} images {data.image_shape}, train {n_train:,}, "
          f"batch {args.batch_size} {args.sampler} on {args.device}, torch threads {torch.get_num_threads()}")
    print(f"prepare (generate + write)   {prepare_s:8.2f} s")
    print(f"open (mmap + checksum)       {open_s:8.3f} s")
    print(f"train split + BatchSource    {setup_s:8.3f} s")
    print(f"epoch times                  {', '.join(f'{s:.3f}' for s in epoch_s)} s")
    print(f"feed rate                    {steady:12,.0f} images/s (best epoch)")
    print(f"incl. one-time open + setup  {end_to_end:12,.0f} images/s over {args.epochs} epochs")
    print("target 50,000 images/s fed per epoch:", "met" if steady >= 50_000 else "NOT met")


if __name__ == "__main__":
    main()
