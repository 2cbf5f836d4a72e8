"""Training throughput: the harness's path vs a standard PyTorch pipeline, same run.

For each method (default dcbh, ddh, dsh) at 32x32 and batch 256 on YouTube-Faces-size
data (``synthfaces``, 1,595 identities x 40 training images = 63,800; random uint8 faces
when ``synthfaces`` is not registered), prints training images/s of

- harness: ``bench.training.loop.Trainer`` over the device-resident ``BatchSource`` with the
  run's acceleration (see ``training_pipelines.py``), and
- reference: ``DataLoader`` (one sample at a time, torchvision ``ToTensor`` +
  ``Normalize``, ``num_workers=2``, ``pin_memory`` on CUDA) with the same model, loss and
  batches in plain float32, default optimizer, ``loss.item()`` every step,

measured in alternation ``--repeats`` times over ``--steps`` steps each; the medians, their
ratio, and the time of one full epoch (63,800 images) on the harness path: measured on
CUDA, estimated from the median rate on the CPU (``--epoch measure`` forces it).

    .venv/bin/python benchmarks/train_throughput.py --quick          # CPU, a few minutes
    python benchmarks/train_throughput.py --device cuda              # GPU (gpu_check.sh)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from training_pipelines import (  # noqa: E402
    HarnessPipeline,
    ReferencePipeline,
    Workload,
    youtube_faces_size,
)

from bench.api.pluginhost import load_plugins  # noqa: E402
from bench.cli.parsing import acceleration_spec  # noqa: E402
from bench.config.device import resolve_device  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="dcbh,ddh,dsh")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--bits", type=int, default=48)
    parser.add_argument("--identities", type=int, default=1595, help="x 40 training images each")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per repeat [CPU 6, CUDA 60]")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first [CPU 1, CUDA 10]")
    parser.add_argument("--repeats", type=int, default=None, help="[3; --quick 1]")
    parser.add_argument("--quick", action="store_true", help="3 timed steps, 1 repeat (a CPU run of minutes)")
    parser.add_argument("--epoch", choices=("auto", "measure", "estimate"), default="auto")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--cuda-graph", default="auto", help="auto, on or off (see bench run --help)")
    parser.add_argument("--workers", type=int, default=2, help="reference DataLoader workers")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    cuda = resolve_device(args.device).type == "cuda"
    if args.steps is None:
        args.steps = 3 if args.quick else (60 if cuda else 6)
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    if args.warmup is None:
        args.warmup = 10 if cuda else 1
    return args


def measure(work: Workload, args: argparse.Namespace) -> dict:
    """Alternate harness and reference repeats; return the per-repeat images/s and the epoch."""
    harness = HarnessPipeline(work, acceleration_spec(args.precision, args.compile, cuda_graph=args.cuda_graph))
    reference = ReferencePipeline(work, num_workers=args.workers)
    batch = work.training.batch_size if work.training.sampler != "balanced" else None
    rates: dict[str, list[float]] = {"harness": [], "reference": []}
    images_per_step = []
    cuda = work.device.type == "cuda"
    try:
        for r in range(args.repeats):
            warm = args.warmup if r == 0 or cuda else 0
            seconds = harness.seconds(args.steps, warm)
            size = batch or _balanced_batch(harness)
            images_per_step.append(size)
            rates["harness"].append(args.steps * size / seconds)
            # on CUDA the reference first drains the batches its workers prefetched meanwhile
            ref_warm = max(warm, 2 * args.workers) if cuda else warm
            rates["reference"].append(args.steps * size / reference.seconds(args.steps, ref_warm))
    finally:
        reference.close()
    median = {k: statistics.median(v) for k, v in rates.items()}
    n_train = len(work.labels)
    how = args.epoch if args.epoch != "auto" else ("measure" if cuda else "estimate")
    epoch = harness.epoch_seconds() if how == "measure" else n_train / median["harness"]
    return {"method": work.method, "parameters": work.parameters(), "batch": images_per_step[0],
            "sampler": work.training.sampler, "rates": rates, "median": median,
            "ratio": median["harness"] / median["reference"], "epoch_seconds": epoch,
            "epoch_images": n_train, "epoch_how": "measured" if how == "measure" else "estimated",
            "tags": harness.accel.tags(), "step": harness.step.status}


def _balanced_batch(harness: HarnessPipeline) -> int:
    """Images per balanced batch (ids_per_batch chunks of batch_size // ids_per_batch)."""
    sizes = [len(b) for b in harness.source.index_batches()]
    return round(statistics.median(sizes))


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    device = resolve_device(args.device)
    host = load_plugins()
    methods = [m for m in args.methods.split(",") if m]
    missing = [m for m in methods if m not in host.methods.names()]
    start = time.perf_counter()
    data = youtube_faces_size(host, args.identities, args.size)
    print(f"data: {data.name}, {int((data.split == 0).sum())} training images at {args.size}x{args.size}, "
          f"{data.num_classes} identities (made in {time.perf_counter() - start:.0f} s)")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"device: {device} ({name}), torch {torch.__version__}, {args.steps} timed steps x "
          f"{args.repeats} repeats after {args.warmup} warmup, reference workers {args.workers}")
    results = []
    for method in methods:
        if method in missing:
            print(f"{method}: not registered, skipped")
            continue
        work = Workload.build(host, method, data, batch_size=args.batch_size, bits=args.bits, device=str(device))
        results.append(measure(work, args))
        r = results[-1]
        print(f"  {method}: harness {[round(v) for v in r['rates']['harness']]} img/s, "
              f"reference {[round(v) for v in r['rates']['reference']]} img/s, step {r['step']}", flush=True)
    if results:
        print(f"acceleration: {results[0]['tags']}")
        print(f"epoch = one pass of the harness over all {results[0]['epoch_images']:,} training images")
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return results


def print_table(results: list[dict]) -> None:
    head = ("method", "params", "batch", "sampler", "harness img/s", "reference img/s", "ratio",
            "epoch (s)")
    rows = [(r["method"], f"{r['parameters'] / 1e6:.2f}M", str(r["batch"]), r["sampler"],
             f"{r['median']['harness']:.0f}", f"{r['median']['reference']:.0f}", f"{r['ratio']:.2f}x",
             f"{r['epoch_seconds']:.1f} ({r['epoch_how']})") for r in results]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(head)]
    for line in (head, tuple("-" * w for w in widths), *rows):
        print("  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(line, widths, strict=True))))


if __name__ == "__main__":
    main()
