"""Evaluation speed table: our engine vs a peer-style per-query argsort vs faiss distances.

    .venv/bin/python benchmarks/eval_table.py                 # 10k x 100k x 48 bits, 10 classes
    .venv/bin/python benchmarks/eval_table.py --device cuda --queries 8000 --gallery 64000

Rows (one process, synthetic clustered codes, labels in random order):
- ours: ``evaluate`` with map + best/worst bounds + map_stable + precision_at_50 + radius-2
  metrics + PR curve (``plugin_metrics={}``), then the same plus ``map_legacy`` (second pass);
- peer style: per query, Hamming distances by a dot product, ``np.argsort`` (numpy's
  default, unstable) and cumulative precision, as common hashing libraries do; timed on
  ``--peer-queries`` queries and scaled linearly to all queries (stated in the row);
- faiss: ``faiss.hammings`` computing the full Hamming distance matrix (int32), in
  query chunks of 1,000 so the 4 GB matrix is never held at once, with codes padded to
  8 bytes (its fast path) and, scaled from 1,000 queries, with plain 6-byte codes;
- candidate CPU paths for the counting step (histograms only, on a query subset,
  scaled): numpy ``bitwise_count`` on uint64 words + per-row ``bincount``, and torch
  float matmul + ``bincount``. They justify the numba kernel choice.
Then peak memory (sampled RSS and the VmHWM high-water mark) of a fresh process evaluating ``--memory-queries``
x ``--memory-gallery`` codes.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time

import numpy as np

from bench.api.pluginhost import default_host
from bench.config.protocol import EvaluationSpec
from bench.evaluation import evaluate
from bench.evaluation.codes import pack_codes, pack_words
from bench.evaluation.plugin_metrics import registered_metrics


def clustered(rng, sizes, bits, classes, flip=0.2):
    """Codes for each size in ``sizes``: class centres shared by all parts, each bit
    flipped with probability ``flip``; labels drawn uniformly (random gallery order)."""
    centers = rng.choice(np.array([-1, 1], dtype=np.int8), size=(classes, bits))
    parts = []
    for n in sizes:
        labels = rng.integers(0, classes, n)
        codes = centers[labels]
        for start in range(0, n, 100_000):  # bounded temporaries for large galleries
            block = codes[start : start + 100_000]
            block[rng.random(block.shape) < flip] *= -1
        parts += [codes, labels]
    return parts


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def peer_style(query, ql, gallery, gl):
    """DeepHash-style mAP: per query dot-product distances, argsort, cumulative precision."""
    qb, gb = query.astype(np.float32), gallery.astype(np.float32)
    bits = qb.shape[1]
    aps = []
    for i in range(len(qb)):
        relevant = (gl == ql[i]).astype(np.float32)
        total = relevant.sum()
        if total == 0:
            aps.append(0.0)
            continue
        hamming = 0.5 * (bits - gb @ qb[i])
        order = np.argsort(hamming)
        ranked = relevant[order]
        count = np.linspace(1, total, int(total))
        positions = np.flatnonzero(ranked == 1) + 1.0
        aps.append(float(np.mean(count / positions)))
    return float(np.mean(aps))


def faiss_matrix(query, gallery, pad_to_words=True, chunk=1000):
    """Full int32 distance matrix by ``faiss.hammings``, ``chunk`` queries at a time.

    ``pad_to_words``: zero-pad codes to a multiple of 8 bytes, which selects faiss's
    specialised 64-bit popcount path (48-bit codes otherwise take a generic byte loop)."""
    import faiss

    qp, gp = pack_codes(query), pack_codes(gallery)
    if pad_to_words:
        width = -(-qp.shape[1] // 8) * 8
        qp, gp = (np.pad(x, ((0, 0), (0, width - x.shape[1]))) for x in (qp, gp))
    nbytes = qp.shape[1]
    out = np.empty((min(chunk, len(qp)), len(gp)), dtype=np.int32)
    for start in range(0, len(qp), chunk):
        block = np.ascontiguousarray(qp[start : start + chunk])
        faiss.hammings(faiss.swig_ptr(block), faiss.swig_ptr(gp), len(block), len(gp), nbytes,
                       faiss.swig_ptr(out))
    return out


def numpy_counts(query, ql, gallery, gl, chunk=16):
    qw, gw = pack_words(query), pack_words(gallery)
    bits = query.shape[1]
    n = np.zeros((len(qw), bits + 1), np.int64)
    r = np.zeros_like(n)
    for s in range(0, len(qw), chunk):
        d = np.bitwise_count(qw[s : s + chunk, None, :] ^ gw[None, :, :]).sum(axis=2, dtype=np.uint8)
        for i, row in enumerate(d):
            n[s + i] = np.bincount(row, minlength=bits + 1)
            r[s + i] = np.bincount(row[gl == ql[s + i]], minlength=bits + 1)
    return n, r


def torch_counts(query, ql, gallery, gl, chunk=256):
    import torch

    qf, gf = torch.from_numpy(query.astype(np.float32)), torch.from_numpy(gallery.astype(np.float32))
    qt, gt = torch.from_numpy(ql), torch.from_numpy(gl)
    bits = query.shape[1]
    out = []
    for s in range(0, len(qf), chunk):
        d = ((bits - qf[s : s + chunk] @ gf.T) * 0.5).round().long()
        key = (d + torch.arange(len(d)).unsqueeze(1) * (bits + 1)) * 2 + (qt[s : s + chunk, None] == gt[None]).long()
        out.append(torch.bincount(key.flatten(), minlength=len(d) * (bits + 1) * 2))
    return out


def _rss_mib() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20


def _high_water_mib() -> float:
    """VmHWM of this process image (unlike ``ru_maxrss``, not inherited from the parent across fork+exec)."""
    with open("/proc/self/status") as handle:
        line = next(line for line in handle if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def memory_probe(n_query, n_gallery, bits, classes, device):
    """Run in a fresh process: resident memory during one full evaluation (map_legacy included),
    sampled every 5 ms, after a tiny warm-up evaluation has loaded the compiled kernel."""
    import threading

    rng = np.random.default_rng(1)
    gallery, gl, query, ql = clustered(rng, (n_gallery, n_query), bits, classes)
    spec = EvaluationSpec(precision_at=[50])
    evaluate(query[:8], ql[:8], gallery[:100], gl[:100], spec, device=device, plugin_metrics=plugins())
    before, peak, done = _rss_mib(), [0.0], threading.Event()
    high_before = _high_water_mib()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _rss_mib())
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    seconds, _ = timed(lambda: evaluate(query, ql, gallery, gl, spec, device=device, plugin_metrics=plugins()))
    done.set()
    sampler.join()
    process_peak = _high_water_mib()
    print(f"{before:.0f} {peak[0]:.0f} {process_peak:.0f} {high_before:.0f} {seconds:.2f}")


def plugins() -> dict:
    """The registered plugin metrics an evaluation of a run computes (map_legacy and its family)."""
    return registered_metrics(default_host())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--gallery", type=int, default=100_000)
    parser.add_argument("--bits", type=int, default=48)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--peer-queries", type=int, default=500, help="queries timed for the peer style (scaled)")
    parser.add_argument("--candidate-queries", type=int, default=500, help="queries timed for numpy/torch counting")
    parser.add_argument("--memory-queries", type=int, default=10_000)
    parser.add_argument("--memory-gallery", type=int, default=1_000_000, help="0 skips the memory probe")
    parser.add_argument("--skip-faiss", action="store_true")
    parser.add_argument("--repeat", type=int, default=1, help="time our evaluation this many times, keep the best")
    parser.add_argument("--check", action="store_true", help="compare --device results with the CPU kernel")
    parser.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.probe:
        return memory_probe(args.memory_queries, args.memory_gallery, args.bits, args.classes, args.device)

    rng = np.random.default_rng(0)
    gallery, gl, query, ql = clustered(rng, (args.gallery, args.queries), args.bits, args.classes)
    q_all, g_all = args.queries, args.gallery
    spec = EvaluationSpec(precision_at=[50])
    tiny = min(64, q_all)
    evaluate(query[:tiny], ql[:tiny], gallery[:1000], gl[:1000], spec, device=args.device,
             plugin_metrics=plugins())  # JIT / CUDA warm-up
    rows = []
    runs = [timed(lambda: evaluate(query, ql, gallery, gl, spec, device=args.device, plugin_metrics={}))
            for _ in range(args.repeat)]
    t_ours, ours = min(runs, key=lambda run: run[0])
    rows.append(("ours: map+bounds+stable+P@50+r2+PR", t_ours, f"all queries, best of {args.repeat}"))
    runs = [timed(lambda: evaluate(query, ql, gallery, gl, spec, device=args.device, plugin_metrics=plugins()))
            for _ in range(args.repeat)]
    t_legacy, with_legacy = min(runs, key=lambda run: run[0])
    rows.append(("ours + map_legacy (2nd pass)", t_legacy, f"all queries, best of {args.repeat}"))
    if args.peer_queries:
        sub = min(args.peer_queries, q_all)
        t, peer_map = timed(lambda: peer_style(query[:sub], ql[:sub], gallery, gl))
        rows.append(("peer style (argsort per query)", t * q_all / sub, f"{sub} queries timed, x{q_all / sub:g}"))
    if not args.skip_faiss:
        t, _ = timed(lambda: faiss_matrix(query, gallery))
        rows.append(("faiss.hammings distance matrix", t, "all queries, distances only, codes padded to 8 bytes"))
        sub = min(1000, q_all)
        t, _ = timed(lambda: faiss_matrix(query[:sub], gallery, pad_to_words=False))
        rows.append(("faiss.hammings, 6-byte codes", t * q_all / sub, f"distances only, {sub} timed, scaled"))
    if args.candidate_queries:
        sub = min(args.candidate_queries, q_all)
        t, _ = timed(lambda: numpy_counts(query[:sub], ql[:sub], gallery, gl))
        rows.append(("numpy bitwise_count+bincount", t * q_all / sub, f"counts only, {sub} timed, scaled"))
        t, _ = timed(lambda: torch_counts(query[:sub], ql[:sub], gallery, gl))
        rows.append(("torch matmul+bincount", t * q_all / sub, f"counts only, {sub} timed, scaled"))

    print(f"\n{q_all} queries x {g_all} gallery x {args.bits} bits, {args.classes} classes, device={args.device}\n")
    print("| evaluation | seconds | ours is x faster | note |")
    print("|---|---:|---:|---|")
    for name, seconds, note in rows:
        print(f"| {name} | {seconds:.2f} | {seconds / t_ours:.1f} | {note} |")
    m = with_legacy.metrics
    print(f"\nmap {m['map']:.4f} (best {m['map_best']:.4f}, worst {m['map_worst']:.4f}, stable "
          f"{m['map_stable']:.4f}, legacy {m['map_legacy']:.4f}); P@50 {m['precision_at_50']:.4f}; "
          f"P_r2 {m['precision_r2']:.4f} R_r2 {m['recall_r2']:.4f} empty_r2 {m['empty_r2']:.0f}")
    if args.peer_queries:
        sub_ap = ours.per_query["ap"][: min(args.peer_queries, q_all)].mean()
        print(f"peer-style map on its {min(args.peer_queries, q_all)} queries: {peer_map:.4f} "
              f"(ours, expected over tie orders, same queries: {sub_ap:.4f})")
    if args.check:
        cpu = evaluate(query, ql, gallery, gl, spec, device="cpu", plugin_metrics=plugins())
        worst = max(float(np.abs(cpu.per_query[k] - with_legacy.per_query[k]).max()) for k in cpu.per_query)
        same_curve = cpu.curves == with_legacy.curves
        print(f"{args.device} vs cpu kernel: max per-query difference {worst:.2e}, PR curve identical: {same_curve}")
    if args.memory_gallery:
        cmd = [sys.executable, __file__, "--probe", "--memory-queries", str(args.memory_queries),
               "--memory-gallery", str(args.memory_gallery), "--bits", str(args.bits),
               "--classes", str(args.classes), "--device", args.device]
        before, peak, process_peak, high_before, seconds = subprocess.run(
            cmd, capture_output=True, text=True, check=True).stdout.split()
        print(f"\nmemory, fresh process, {args.memory_queries} x {args.memory_gallery} x {args.bits} bits, full "
              f"evaluation incl. map_legacy ({seconds} s): peak RSS during the evaluation {peak} MiB "
              f"(before it, with codes, imports and the loaded kernel: {before} MiB; whole process "
              f"high-water mark: {process_peak} MiB, of which before the evaluation: {high_before} MiB)")


if __name__ == "__main__":
    main()
