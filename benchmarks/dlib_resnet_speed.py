"""dlib-resnet on the CPU: ORL alignment time and fallback count, parity with dlib's own
descriptors over every ORL chip, and forward images/s (batch 32, fp32 and bf16 autocast)
beside dlib's own ``compute_face_descriptor`` on the same chips.

    .venv/bin/python benchmarks/dlib_resnet_speed.py [--batches 5] [--threads 0] [--smoke]

``--smoke`` (CI): 4 chips, batch 2, one timed batch.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def forward_rate(model, x: torch.Tensor, batches: int, dtype: torch.dtype | None) -> float:
    """Images/s of ``model`` on batch ``x`` (no grad), after one warm-up batch."""
    with torch.no_grad(), torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
        model(x)
        start = time.perf_counter()
        for _ in range(batches):
            model(x)
    return batches * len(x) / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    import dlib

    from bench.api.interfaces import BuildContext
    from plugins.backbones.dlib_resnet import (
        build_dlib_resnet,
        dlib_input,
        embed_chips,
        weights_path,
    )
    from plugins.datasets.face_align import align_images
    from plugins.datasets.orl import load_orl, orl_root, read_pgm, repair_pgm

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    batch = 2 if args.smoke else args.batch_size
    batches = 1 if args.smoke else args.batches

    if args.smoke:  # four ORL originals, aligned here
        root = orl_root()
        originals = [read_pgm(repair_pgm((root / f"s1/{n}.pgm").read_bytes())) for n in (1, 2, 3, 4)]
        chips = align_images(originals).chips
    else:
        data = load_orl(size=150, align="dlib")
        print(f"ORL alignment: {data.meta['alignment']}")
        chips = np.asarray(data.images)
    model = build_dlib_resnet(BuildContext(bits=1, num_classes=1, input_shape=(3, 150, 150))).eval()
    reference = dlib.face_recognition_model_v1(str(weights_path()))
    hwc = [np.ascontiguousarray(c.transpose(1, 2, 0)) for c in chips]
    start = time.perf_counter()
    expected = np.array([np.array(d) for d in reference.compute_face_descriptor(hwc)])
    dlib_rate = len(hwc) / (time.perf_counter() - start)
    diff = np.abs(embed_chips(model, chips, batch_size=batch) - expected)
    print(f"parity over {len(chips)} ORL chips: max |ours - dlib| = {diff.max():.3g} (mean {diff.mean():.3g})")
    x = dlib_input(torch.from_numpy(np.resize(chips, (batch, *chips.shape[1:]))))
    print(f"dlib compute_face_descriptor: {dlib_rate:.1f} images/s ({len(hwc)} chips, its batches of 16)")
    print(f"dlib-resnet fp32, batch {batch}: {forward_rate(model, x, batches, None):.1f} images/s "
          f"({torch.get_num_threads()} threads)")
    print(f"dlib-resnet bf16 autocast, batch {batch}: {forward_rate(model, x, batches, torch.bfloat16):.1f} images/s")


if __name__ == "__main__":
    main()
