"""Run ``bench`` in process without pytest's capsys (module-scoped fixtures cannot use it)."""

from __future__ import annotations

import contextlib
import io


def bench(*args: str) -> tuple[int, str, str]:
    """``bench ARGS`` in this process: (exit code, stdout, stderr)."""
    from bench.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 0
    return code, out.getvalue(), err.getvalue()
