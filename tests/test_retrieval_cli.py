"""The retrieval system of a finished DCBH run on ORL: its stored MLflow model, ``bench encode``,
``bench export`` (ONNX and TorchScript give the harness's own codes for ORL's queries, bit for
bit), ``bench index build`` and ``bench search`` (the flat index gives the evaluation engine's
neighbours and distances), and one line with exit 2 for every bad input."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import numpy as np
import pytest
from inprocess import bench
from PIL import Image

from bench.data.faces import QUERY
from bench.evaluation.codes import pack_codes, unpack_codes
from bench.evaluation.hamming import count_ties, hamming_distances

pytestmark = pytest.mark.slow
RUN = "dcbh[training.batch_size=32]-48b-s0"


@pytest.fixture(scope="module")
def orl(tmp_path_factory):
    """One DCBH run on ORL (48 bits, one epoch of small batches) and one LSH run (12 bits)."""
    folder = tmp_path_factory.mktemp("retrieval")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    with contextlib.chdir(folder):
        code, _, err = bench("run", "--method", "dcbh", "--bits", "48", "--epochs", "1",
                             "--set", "training.batch_size=32", "--tracking-uri", uri)
        assert code == 0, err
        code, _, err = bench("run", "--method", "lsh", "--bits", "12", "--tracking-uri", uri)
        assert code == 0, err
    return folder, uri


def stored_codes(uri: str, name: str, folder: Path) -> dict[str, np.ndarray]:
    from bench.tracking.reading import StoreReader

    reader = StoreReader(uri)
    run = reader.find(name)
    with np.load(reader.download(run.info.run_id, "codes.npz", folder / name)) as data:
        return {k: data[k] for k in data.files}


def orl_queries() -> np.ndarray:
    from bench.api.pluginhost import default_host
    from bench.config.protocol import ProtocolConfig
    from bench.data.loading import dataset_for

    return dataset_for(default_host(), ProtocolConfig(), None).part(QUERY)[0]


def one_error_line(code: int, err: str) -> str:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_the_run_stores_an_mlflow_model_with_signature_and_pipeline(orl):
    from mlflow.models import Model

    from bench.tracking.reading import StoreReader

    folder, uri = orl
    reader = StoreReader(uri)
    run = reader.find(RUN)
    assert run.data.tags["facehash.model"] == "stored"
    local = reader.download(run.info.run_id, "model", folder / "model-check")
    model = Model.load(str(local / "MLmodel"))
    assert {"pytorch", "python_function"} <= set(model.flavors)
    [images] = model.signature.inputs.inputs
    [codes] = model.signature.outputs.inputs
    assert (images.type, images.shape, codes.type, codes.shape) == (np.dtype(np.uint8), (-1, 3, 32, 32),
                                                                     np.dtype(np.int8), (-1, 48))
    meta = model.metadata["facehash"]
    assert meta["bits"] == 48 and meta["method"] == "dcbh" and meta["normalisation"] == "channel-mean-std"
    assert meta["input"] == {"size": 32, "channels": 3, "grey": True, "crop": 1.0, "align": "none"}


@pytest.mark.parametrize("fmt,suffix", [("onnx", "onnx"), ("torchscript", "pt")])
def test_exported_encoder_gives_the_harness_codes_on_orl_queries(orl, fmt, suffix):
    from bench.retrieval.export import onnx_codes, torchscript_codes

    folder, uri = orl
    target = folder / f"encoder.{suffix}"
    code, out, err = bench("export", RUN, "--format", fmt, "-o", str(target), "--tracking-uri", uri)
    assert code == 0, err
    assert target.is_file() and Path(str(target) + ".json").is_file()
    queries = orl_queries()
    codes = stored_codes(uri, RUN, folder)
    harness = unpack_codes(codes["query_codes"], 48)
    assert len(np.unique(harness, axis=0)) > 1  # the guard: codes that differ between queries
    exported = onnx_codes(target, queries) if fmt == "onnx" else torchscript_codes(target, queries)
    assert exported.dtype == np.int8 and exported.shape == (80, 48)
    np.testing.assert_array_equal(exported, harness)
    # a different batch size (one image) gives the same codes
    single = onnx_codes(target, queries[:1]) if fmt == "onnx" else torchscript_codes(target, queries[:1])
    np.testing.assert_array_equal(single, harness[:1])


def test_encode_reads_image_files_through_the_run_pipeline(orl):
    folder, uri = orl
    codes = stored_codes(uri, RUN, folder)
    queries = orl_queries()
    paths = []
    for i in (0, 5):  # ORL's grey query images as PNG files (32 x 32: the pipeline keeps them)
        paths.append(folder / f"query{i}.png")
        Image.fromarray(queries[i, 0]).save(paths[-1])
    code, out, err = bench("encode", RUN, *map(str, paths), "--tracking-uri", uri)
    assert code == 0, err
    printed = [line.split()[0] for line in out.strip().splitlines()]
    assert printed == [codes["query_codes"][i].tobytes().hex() for i in (0, 5)]
    target = folder / "codes.npz"
    code, out, err = bench("encode", RUN, *map(str, paths), "-o", str(target), "--tracking-uri", uri)
    assert code == 0, err
    with np.load(target) as saved:
        np.testing.assert_array_equal(saved["packed"], codes["query_codes"][[0, 5]])


def test_encode_of_an_original_orl_file_equals_the_harness_code(orl):
    """The 92 x 112 PGM file itself, decoded and resized by the stored pipeline."""
    from plugins.datasets.orl import DROPPED, orl_root

    folder, uri = orl
    root = orl_root()
    files = [p for s in sorted(root.glob("s*"), key=lambda p: int(p.name[1:]))
             for p in sorted(s.glob("*.pgm"), key=lambda p: int(p.stem)) if f"{s.name}/{p.name}" not in DROPPED]
    codes = stored_codes(uri, RUN, folder)
    picked = [(i, files[i]) for i in codes["query_index"] if not files[i].read_bytes().startswith(b"P5\r\n")][:3]
    code, out, err = bench("encode", RUN, *(str(p) for _, p in picked), "--tracking-uri", uri)
    assert code == 0, err
    position = {int(i): q for q, i in enumerate(codes["query_index"])}
    expected = [codes["query_codes"][position[int(i)]].tobytes().hex() for i, _ in picked]
    assert [line.split()[0] for line in out.strip().splitlines()] == expected


def test_flat_index_search_equals_the_evaluation_engine(orl):
    from bench.retrieval.index import IndexKind
    from bench.retrieval.runs import open_run
    from bench.retrieval.search import run_search
    from bench.retrieval.store import load_run_index
    from bench.tracking.reading import StoreReader

    folder, uri = orl
    code, out, err = bench("index", "build", RUN, "--kind", "flat", "--tracking-uri", uri)
    assert code == 0, err
    assert "recall of the true 10 nearest" in out and "1.0000" in out
    codes = stored_codes(uri, RUN, folder)
    query, gallery = unpack_codes(codes["query_codes"], 48), unpack_codes(codes["gallery_codes"], 48)
    handle = open_run(StoreReader(uri), RUN, folder / "flat")
    stored = load_run_index(handle, IndexKind.FLAT)
    k = 20
    results, _ = run_search(handle, stored, query, ["q"] * len(query), list(codes["query_labels"]), k=k, radius=None)
    dist = hamming_distances(query, gallery)
    ties = count_ties(pack_codes(query), codes["query_labels"], pack_codes(gallery), codes["gallery_labels"], 48)
    for q, result in enumerate(results):
        order = np.lexsort((np.arange(len(gallery)), dist[q]))[:k]  # the engine's stable order
        assert [m.image_id for m in result.matches] == codes["gallery_index"][order].tolist()
        assert [m.distance for m in result.matches] == dist[q][order].tolist()
        assert [m.distance for m in result.matches] == np.repeat(np.arange(49), ties.n[q])[:k].tolist()
        assert [m.same for m in result.matches] == (codes["gallery_labels"][order] == codes["query_labels"][q]).tolist()
    code, out, err = bench("search", RUN, "--query-split", "--k", "3", "--tracking-uri", uri)
    assert code == 0, err
    assert "80 queries: the run's stored query codes, no encoding, searching" in out
    assert f"flat index of {RUN}: top 3" in out  # the run's name as it is, brackets included and re.search(r"query \d+ \(s\d+\)", out)


def test_search_by_image_radius_and_approximate_kinds(orl):
    folder, uri = orl
    image = folder / "probe.png"
    Image.fromarray(orl_queries()[0, 0]).save(image)
    code, out, err = bench("search", RUN, "--image", str(image), "--k", "4", "--tracking-uri", uri)
    assert code == 0, err
    assert "probe.png" in out and "1 query: encoding" in out and re.search(r"\bs\d+\b", out)
    code, out, err = bench("search", RUN, "--image", str(image), "--radius", "48", "--limit", "1", "--tracking-uri", uri)
    assert code == 0, err
    assert re.search(r"\b278\b", out)  # radius = code length: the whole gallery (ranks 1..278)
    for kind in ("hash", "multihash", "ivf", "hnsw"):
        code, out, err = bench("index", "build", RUN, "--kind", kind, "--tracking-uri", uri)
        assert code == 0, err
        recall = float(re.search(r"recall of the true 10 nearest on the run's 80 queries: ([\d.]+)", out).group(1))
        assert 0.0 <= recall <= 1.0 and "approximate" in out
        code, out, err = bench("search", RUN, "--query-split", "--kind", kind, "--tracking-uri", uri)
        assert code == 0, err
        assert f"{kind} is approximate: recall of the true 10 nearest against exhaustive search" in out


def test_bad_retrieval_input_is_one_line_exit_2(orl):
    from mlflow.tracking import MlflowClient

    folder, uri = orl
    client = MlflowClient(tracking_uri=uri)
    experiment = client.search_runs([e.experiment_id for e in client.search_experiments()],
                                    f"tags.`mlflow.runName` = '{RUN}'")[0].info.experiment_id
    running = client.create_run(experiment, run_name="dcbh-unfinished",
                                tags={"facehash.method": "dcbh", "facehash.bits": "48"})
    image = folder / "ok.png"
    Image.fromarray(orl_queries()[0, 0]).save(image)
    assert bench("index", "build", RUN, "--kind", "flat", "--tracking-uri", uri)[0] == 0
    text = folder / "notes.png"
    text.write_text("not an image at all")
    cases = [
        (("encode", running.info.run_id, str(image)), "is RUNNING, not finished"),
        (("encode", "lsh-12b-s0", str(image)), "has no model artifact"),
        (("export", "lsh-12b-s0"), "has no model artifact"),
        (("index", "build", RUN, "--kind", "lsh"), "unknown index kind 'lsh'"),
        (("search", RUN, "--query-split", "--radius", "49"), "--radius 49: a Hamming radius lies between 0 and the code length 48"),
        (("search", RUN, "--query-split", "--kind", "hnsw", "--radius", "3"), "no range search"),
        (("encode", RUN, str(text)), "notes.png is not an image"),
        (("encode", RUN, str(folder / "missing.png")), "cannot read"),
        (("search", RUN, "--query-split", "--kind", "flat", "--index-run", "lsh-12b-s0"), "no flat index"),
        (("export", RUN, "--format", "tflite"), "--format tflite: use onnx or torchscript"),
    ]
    for args, message in cases:
        code, _, err = bench(*args, "--tracking-uri", uri)
        assert message in one_error_line(code, err), (args, err)
    code, _, err = bench("index", "build", "lsh-12b-s0", "--kind", "flat", "--tracking-uri", uri)
    assert code == 0, err
    code, _, err = bench("search", RUN, "--query-split", "--index-run", "lsh-12b-s0", "--tracking-uri", uri)
    assert "gives 48-bit codes but the flat index of run 'lsh-12b-s0' holds 12-bit codes" in one_error_line(code, err)
    code, _, err = bench("search", RUN, "--image", str(text), "--tracking-uri", uri)
    assert "is not an image" in one_error_line(code, err)
