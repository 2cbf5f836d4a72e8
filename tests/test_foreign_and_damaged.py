"""Issue 24 items 2, 5 and 7: another program's SQLite database is never written, read-only
commands need no writable folder, and a damaged store, a text file as ``--storage`` or a
full disk each give one line (exit 2), never a traceback."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from pathlib import Path

import pytest

from bench.tracking.client import Tracker
from bench.training import checkpoint


def foreign_db(path: Path) -> str:
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        connection.execute("INSERT INTO users (name) VALUES ('ann')")
    connection.close()
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("command", [
    ["runs"],
    ["leaderboard", "--no-log"],
    ["run", "--method", "lsh", "--bits", "8", "--dataset", "synthfaces"],
    ["server"],
])
def test_another_programs_sqlite_database_is_refused_and_left_as_it_is(cli, tmp_path, command) -> None:
    app = tmp_path / "app.db"
    before = foreign_db(app)
    option = "--backend-store-uri" if command == ["server"] else "--tracking-uri"
    code, out, err = cli(*command, option, f"sqlite:///{app}")
    assert code == 2 and "is a SQLite database of another program (tables: users)" in err, out + err
    assert len(err.strip().splitlines()) == 1
    assert hashlib.sha256(app.read_bytes()).hexdigest() == before


def test_tune_storage_that_is_a_text_file_or_foreign_is_one_line(cli, tmp_path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    common = ["tune", "--method", "dsh", "--bits", "8", "--trials", "1", "--epochs", "1"]
    code, _, err = cli(*common, "--storage", f"sqlite:///{notes}")
    assert code == 2 and f"--storage sqlite:///{notes}: {notes} is not a SQLite database" in err
    assert notes.read_text() == "my notes\n"
    app = tmp_path / "app.db"
    before = foreign_db(app)
    code, _, err = cli(*common, "--storage", f"sqlite:///{app}")
    assert code == 2 and "another program" in err and hashlib.sha256(app.read_bytes()).hexdigest() == before


@pytest.fixture(scope="module")
def made_store(tmp_path_factory) -> Path:
    """An MLflow store with one finished run (made once: creating a store is slow)."""
    db = tmp_path_factory.mktemp("store") / "mlflow.db"
    tracker = Tracker(f"sqlite:///{db}")
    run_id = tracker.start_run(tracker.experiment("e"), "lsh-8b-s0", {"facehash.method": "lsh"})
    tracker.end(run_id)
    return db


def test_read_only_commands_need_no_writable_folder(cli, made_store, monkeypatch) -> None:
    import bench.tracking.client as client

    real_access = client.os.access
    monkeypatch.setattr(client.os, "access", lambda path, mode: False if mode & 2 else real_access(path, mode))
    code, out, err = cli("runs", "--tracking-uri", f"sqlite:///{made_store}")
    assert code == 0, err
    code, _, err = cli("run", "--method", "lsh", "--tracking-uri", f"sqlite:///{made_store}")
    assert code == 2 and "not writable" in err  # a command that writes still needs it


def test_a_truncated_store_is_one_line(cli, made_store, tmp_path) -> None:
    damaged = tmp_path / "mlflow.db"
    raw = made_store.read_bytes()
    damaged.write_bytes(raw[: len(raw) // 3])
    code, out, err = cli("runs", "--tracking-uri", f"sqlite:///{damaged}")
    assert code == 2 and "is damaged" in err and str(damaged) in err, out + err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_full_disk_under_the_store_is_one_line(cli, made_store, monkeypatch) -> None:
    from bench.tracking.reading import StoreReader

    def full(*args, **kwargs):
        raise RuntimeError("(sqlite3.OperationalError) database or disk is full")

    monkeypatch.setattr(StoreReader, "search", full)
    code, _, err = cli("runs", "--tracking-uri", f"sqlite:///{made_store}")
    assert code == 2 and err.strip().startswith(f"error: no space left on {made_store.parent}")


def test_a_full_disk_under_output_names_the_folder(tmp_path, monkeypatch) -> None:
    def torch_save_on_a_full_disk(obj, handle):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")

    monkeypatch.setattr(checkpoint.torch, "save", torch_save_on_a_full_disk)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(100, 100, 0))
    with pytest.raises(Exception, match=f"no space left on {tmp_path / 'run'}"):
        checkpoint.atomic_save({"x": 1}, tmp_path / "run" / "resume.pt")
    assert list((tmp_path / "run").iterdir()) == []  # no temporary file left
