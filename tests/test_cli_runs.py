"""``bench runs`` lists and filters runs; ``bench eval`` takes a unique run name; collapsed
codes are tagged and flagged (in the results table and in ``bench runs``)."""

from __future__ import annotations

import re

import numpy as np

TINY = ["--dataset", "synthfaces", "--set", "dataset.identities=5", "--set", "dataset.images_per_identity=6",
        "--set", "dataset.val=1", "--set", "dataset.query=2"]


def test_runs_lists_filters_and_eval_takes_a_name(cli, store, monkeypatch):
    from bench.running import execution
    from bench.tracking import tags as T
    from bench.tracking.reading import StoreReader

    code, out, err = cli("run", "--method", "lsh", "--bits", "8", "--tracking-uri", store, *TINY)
    assert code == 0, err
    # a run whose codes collapse: every code the same
    monkeypatch.setattr(execution, "sign_codes", lambda u: np.ones(np.shape(u), dtype=np.float32))
    code, out, err = cli("run", "--method", "lsh", "--bits", "16", "--tracking-uri", store, *TINY)
    assert code == 0, err
    assert "collapsed: all codes identical" in out  # flagged in the results table
    monkeypatch.undo()
    reader = StoreReader(store)
    runs = {r.data.tags[T.RUN_NAME]: r for r in reader.search() if T.METHOD in r.data.tags}
    assert set(runs) == {"lsh-8b-s0", "lsh-16b-s0"}
    assert runs["lsh-16b-s0"].data.tags[T.CODES_COLLAPSED] == "all codes identical"
    assert T.CODES_COLLAPSED not in runs["lsh-8b-s0"].data.tags

    code, out, err = cli("runs", "--tracking-uri", store)
    assert code == 0, err
    rows = re.findall(r"^ *(lsh-\d+b-s0) +([0-9a-f]{12}) +FINISHED +lsh +(\d+) +0 +(\d\.\d{3}) +\d{4}-", out, re.M)
    assert [(name, bits) for name, _, bits, _ in rows] == [("lsh-16b-s0", "16"), ("lsh-8b-s0", "8")], out  # newest first
    assert rows[1][1] == runs["lsh-8b-s0"].info.run_id[:12]
    assert rows[1][3] == f"{runs['lsh-8b-s0'].data.metrics['map']:.3f}"
    assert "collapsed: all codes identical" in out
    code, out, _ = cli("runs", "--tracking-uri", store, "--bits", "8")
    assert "lsh-8b-s0" in out and "lsh-16b-s0" not in out
    code, out, _ = cli("runs", "--tracking-uri", store, "--method", "dsh")
    assert "0 run(s)" in out and "lsh-8b-s0" not in out
    code, _, err = cli("runs", "--tracking-uri", store, "--status", "bogus")
    assert code == 2 and "--status bogus" in err

    code, out, err = cli("eval", "lsh-8b-s0", "--metric", "map", "--tracking-uri", store)
    assert code == 0, err
    assert runs["lsh-8b-s0"].info.run_id in out
    code, _, err = cli("eval", "lsh-99b-s0", "--tracking-uri", store)
    assert code == 2 and "no run 'lsh-99b-s0'" in err
