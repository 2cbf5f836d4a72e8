"""What a run's codes cost in faiss indexes on this machine: bytes per face (code, heap,
serialised), build time, query latency (median, p99; single and batched), queries/s and the
recall of approximate kinds against exhaustive search, at gallery sizes up to 10^7 grown from
the codes' own distribution (bench.retrieval.distractors), with the float top line beside it.

    .venv/bin/python benchmarks/retrieval_cost.py --codes codes.npz [--sizes 1e4,1e5,1e6,1e7] [--out cost.json]
    .venv/bin/python benchmarks/retrieval_cost.py --smoke     # seconds: synthetic codes, 10^3 and 10^4 faces

``codes.npz`` is a run's artifact (``bench run`` stores it; ``bench cost RUN`` does the same
measurement on a run in the store and logs it to the run). ``--smoke`` builds a synthetic
clustered gallery (40 identities x 7 codes of 48 bits, skewed bits) and checks the result
(exact flat search, recall in [0, 1], distractor bit means within 0.05 of the gallery's).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def synthetic_codes(bits: int = 48, identities: int = 40, per_identity: int = 7, seed: int = 0) -> dict:
    """Packed gallery and query codes of a clustered code distribution with skewed bits."""
    import numpy as np

    rng = np.random.default_rng(seed)
    centres = (rng.random((identities, bits)) < rng.uniform(0.2, 0.8, bits)).astype(np.uint8)
    labels = np.repeat(np.arange(identities), per_identity + 1)
    codes = centres[labels] ^ (rng.random((len(labels), bits)) < 0.08).astype(np.uint8)
    query = np.arange(len(labels)) % (per_identity + 1) == 0
    return {"gallery_codes": np.packbits(codes[~query], axis=1), "gallery_labels": labels[~query],
            "query_codes": np.packbits(codes[query], axis=1), "bits": bits}


def main() -> None:
    import numpy as np

    from bench.cli.cost import parse_sizes, print_study
    from bench.retrieval.cost import CostSettings
    from bench.retrieval.study import StudyPlan, run_study

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--codes", type=Path, help="a run's codes.npz")
    parser.add_argument("--smoke", action="store_true", help="synthetic codes, tiny sizes, checked")
    parser.add_argument("--sizes", default="1e4,1e5,1e6,1e7")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--float-dim", type=int, default=128)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.smoke:
        codes, sizes, queries = synthetic_codes(), (1000, 10_000), 20
    elif args.codes is None:
        parser.error("give --codes FILE (a run's codes.npz) or --smoke")
    else:
        with np.load(args.codes) as data:
            codes = {k: data[k] for k in data.files}
        sizes, queries = parse_sizes(args.sizes), args.queries
    plan = StudyPlan(sizes=sizes, float_dim=args.float_dim,
                     settings=CostSettings(queries=queries, batch=min(queries, 100), threads=args.threads))
    result = run_study(codes["gallery_codes"], codes["gallery_labels"], codes["query_codes"], int(codes["bits"]), plan)
    print_study(result)
    if args.out:
        args.out.write_text(result.to_json())
    if args.smoke:
        check_smoke(result)


def check_smoke(result) -> None:  # noqa: ANN001 - a StudyResult
    """The smoke run's result is whole and plausible; raises SystemExit otherwise."""
    import numpy as np

    kinds = {(r["kind"], r["size"]) for r in result.rows}
    wanted = {(k, s) for k in ("flat", "multihash", "hash", "ivf", "hnsw", "float-flat", "float-hnsw") for s in (1000, 10_000)}
    problems = [f"missing rows {sorted(wanted - kinds)}"] if wanted - kinds else []
    problems += [f"{r['kind']} recall {r['recall']}" for r in result.rows
                 if r["recall"] is not None and not 0 <= r["recall"] <= 1]
    flat = [r for r in result.rows if r["kind"] == "flat"]
    problems += [f"flat code bytes {r['code_bytes']}" for r in flat if r["code_bytes"] != 6]
    gap = np.abs(np.subtract(result.bit_means["gallery"], result.bit_means["distractors"])).max()
    problems += [f"distractor bit means differ from the gallery's by {gap:.3f}"] if gap > 0.05 else []
    if problems:
        raise SystemExit("smoke check failed: " + "; ".join(problems))
    print("smoke check passed")


if __name__ == "__main__":
    main()
