"""Every bad input is one line on stderr, exit code 2, and nothing written: no store, no
output folder, no cache entry (issue 17, items 2, 5 and 13)."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from bench.api.errors import BenchError


def one_line_error(code: int, err: str, expected: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], (code, err)


# (arguments after `bench run --method lsh --bits 8`, expected text); {tmp} is the test's folder
CASES = {
    "unknown scheme": (["--tracking-uri", "foo://bar"], "unknown scheme 'foo'"),
    "memory: sqlite://": (["--tracking-uri", "sqlite://"], "in-memory database"),
    "memory: sqlite:///": (["--tracking-uri", "sqlite:///"], "in-memory database"),
    "memory: :memory:": (["--tracking-uri", "sqlite:///:memory:"], "in-memory database"),
    "store is a folder": (["--tracking-uri", "sqlite:///{tmp}/folder"], "is a folder"),
    "store is not a database": (["--tracking-uri", "sqlite:///{tmp}/notes.txt"], "is not a SQLite database"),
    "no method": (["--method", ",,,"], "--method names no method"),
    "experiment too long": (["--experiment", "x" * 501], "MLflow accepts at most 500"),
    "output not creatable": (["--output", "{tmp}/notes.txt/out"], "--output {tmp}/notes.txt/out cannot be created"),
    "negative seed": (["--seeds", "-1"], "--seeds: '-1' is not an integer from 0 to 4294967295"),
    "seed too large": (["--seeds", "0,4294967296"], "--seeds: '4294967296' is not an integer from 0"),
    "negative lr": (["--method", "dsh", "--set", "optimizer.lr=-1"], "invalid value for 'optimizer.lr'"),
    "nan lr": (["--method", "dsh", "--set", "optimizer.lr=nan"], "invalid value for 'optimizer.lr'"),
    "one identity": (["--dataset", "synthfaces", "--set", "dataset.identities=1",
                      "--set", "dataset.images_per_identity=8"], "holds 1 identity; retrieval by identity needs at least two"),
    "val_map without a validation split": (["--method", "dsh", "--set", "dataset.val=0",
                                            "--set", "training.selection=val_map"], "has no validation split"),
    "markup is printed as typed": (["--method", ":smile:,[red]x[/]"], "unknown method ':smile:'"),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_run_input_is_one_line_exit_2_and_writes_nothing(cli, tmp_path, case):
    (tmp_path / "folder").mkdir()
    (tmp_path / "notes.txt").write_text("not a database\n")
    args, expected = CASES[case]
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    defaults = {"--method": "lsh", "--bits": "8", "--tracking-uri": store, "--output": str(tmp_path / "out")}
    base = ["run", *(x for option, value in defaults.items() if option not in args for x in (option, value))]
    code, out, err = cli(*base, *args)  # a case's option replaces the default (an option is given once)
    one_line_error(code, err, expected.replace("{tmp}", str(tmp_path)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "notes.txt"]  # nothing written
    assert list((tmp_path / "folder").iterdir()) == [] and (tmp_path / "notes.txt").read_text() == "not a database\n"
    if case == "markup is printed as typed":
        assert "😄" not in err


def test_an_unwritable_dataset_cache_is_one_line_before_anything_is_built(cli, tmp_path, monkeypatch):
    (tmp_path / "notes.txt").write_text("x")
    monkeypatch.setenv("FACEHASH_BENCH_CACHE", str(tmp_path / "notes.txt" / "cache"))
    monkeypatch.setattr("bench.data.loading._LOADED", {})  # nothing loaded in this process yet
    code, _, err = cli("run", "--method", "lsh", "--bits", "8", "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}")
    one_line_error(code, err, "dataset cache")
    assert "FACEHASH_BENCH_CACHE" in err and not (tmp_path / "m.db").exists()


@pytest.mark.parametrize("where", ["out under a file", "read-only folder"])
def test_leaderboard_html_into_an_unwritable_folder_is_one_line(cli, tmp_path, where):
    (tmp_path / "notes.txt").write_text("x")
    args = ["leaderboard", "--format", "html", "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}"]
    if where == "out under a file":
        args += ["--out", str(tmp_path / "notes.txt" / "board.html")]
    else:
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only folders")
        tmp_path.chmod(0o555)
    try:
        code, _, err = cli(*args)
    finally:
        tmp_path.chmod(0o755)
    one_line_error(code, err, "--out folder")


class _Huge:
    def __reduce__(self):  # numpy.ndarray((N,), float64): N * 8 bytes from a file of ~100
        return (np.ndarray, ((2_000_000,), np.dtype("float64")))


def test_the_ddh_unpickler_bounds_every_array_by_the_file(tmp_path):
    from plugins.datasets.ddh_pickles import safe_load

    path = tmp_path / "train_vec_folder_32_32"
    path.write_bytes(pickle.dumps((_Huge(), [0]), protocol=2))
    assert path.stat().st_size < 200
    with pytest.raises(BenchError, match=r"asks for an array of 16,000,000 bytes, more than the file's \d+ bytes"):
        safe_load(path)
    genuine = tmp_path / "genuine"
    x = np.arange(6 * 3072, dtype=np.float64).reshape(6, 3072)
    genuine.write_bytes(pickle.dumps((x, np.arange(6)), protocol=2))
    loaded_x, loaded_y = safe_load(genuine)
    assert np.array_equal(loaded_x, x) and loaded_y.tolist() == list(range(6))


def test_a_half_migrated_store_says_how_to_repair_it(cli, tmp_path):
    import sqlite3

    db = tmp_path / "m.db"
    with sqlite3.connect(db) as connection:
        connection.execute("CREATE TABLE _alembic_tmp_latest_metrics (x INTEGER)")
    code, _, err = cli("run", "--method", "lsh", "--bits", "8", "--tracking-uri", f"sqlite:///{db}",
                       "--output", str(tmp_path / "out"))
    one_line_error(code, err, "half-migrated (leftover table(s) _alembic_tmp_latest_metrics)")
    assert "DROP TABLE _alembic_tmp_latest_metrics" in err and "mlflow db upgrade" in err
    assert not (tmp_path / "out").exists()


def test_the_folder_check_names_the_blocking_path(tmp_path):
    from bench.config.paths import check_writable_folder

    (tmp_path / "f").write_text("x")
    check_writable_folder(tmp_path / "new" / "deeper", "--output", "fix")  # creatable: fine, creates nothing
    assert not (tmp_path / "new").exists()
    with pytest.raises(BenchError, match=f"{tmp_path / 'f'} is not a folder"):
        check_writable_folder(Path(tmp_path / "f" / "x"), "--output", "fix")
