"""Every script under benchmarks/ runs in its smoke mode (tiny sizes, seconds each), so none can
break without a red CI (``.venv/bin/pytest`` collects this folder: ``testpaths`` in pyproject).

A new script must add its smoke command to ``SMOKE``; ``training_pipelines.py`` is the library
the throughput scripts share (``train_throughput.py`` runs it).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
PY = sys.executable
TINY_TRAINING = {"FACEHASH_BENCH_STEPS": "1", "FACEHASH_BENCH_ROUNDS": "1",
                 "FACEHASH_BENCH_IDENTITIES": "4", "FACEHASH_BENCH_BATCH": "8"}
PYTEST_BENCH = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "--benchmark-disable"]

# script -> (arguments after the interpreter, extra environment)
SMOKE: dict[str, tuple[list[str], dict[str, str]]] = {
    "bench_datacache.py": (["--identities", "4", "--per-identity", "10", "--epochs", "1"], {}),
    "bench_evaluation.py": ([*PYTEST_BENCH, "bench_evaluation.py"], {}),
    "bench_training_throughput.py": ([*PYTEST_BENCH, "bench_training_throughput.py"], TINY_TRAINING),
    "cli_help_time.py": (["--repeat", "1"], {}),
    "dlib_resnet_speed.py": (["--smoke"], {}),
    "eval_table.py": (["--queries", "100", "--gallery", "1000", "--peer-queries", "20",
                       "--candidate-queries", "20", "--memory-queries", "50", "--memory-gallery", "500"], {}),
    "legacy_metrics.py": (["--queries", "100", "--gallery", "1000"], {}),
    "pca_itq_scale.py": (["--n", "300", "--queries", "30", "--dims", "64", "--bits", "12"], {}),
    "precision_check.py": (["1", "4", "cpu", "1", "fp32"], {}),
    "pretrained_orl.sh": ([], {"SMOKE": "1"}),
    "profile_cuda.py": (["--device", "cpu", "--queries", "100", "--gallery", "1000"], {}),
    "retrieval_cost.py": (["--smoke"], {}),
    "sqlite_concurrency.py": (["--writers", "2", "--runs", "2"], {}),
    "sweep_workers.py": (["--epochs", "1", "--workers", "1"], {}),
    "train_throughput.py": (["--quick", "--identities", "4", "--batch-size", "8", "--repeats", "1"], {}),
    "fetch_wheels.sh": (["--list"], {}),
    "gpu_check.sh": (["--smoke"], {}),
    "tune_orl.sh": ([], {"SMOKE": "1"}),
    "tune_orl_openset.sh": ([], {"SMOKE": "1"}),
}
LIBRARIES = {"training_pipelines.py"}


def scripts() -> list[str]:
    return sorted(p.name for p in HERE.iterdir() if p.suffix in (".py", ".sh") and not p.name.startswith("test_"))


def test_every_benchmark_script_has_a_smoke_command() -> None:
    missing = [name for name in scripts() if name not in SMOKE and name not in LIBRARIES]
    assert not missing, f"add a smoke command for {missing} to SMOKE in {Path(__file__).name}"
    assert set(SMOKE) <= set(scripts()), "SMOKE names a script that is gone"


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", sorted(SMOKE))
def test_benchmark_script_smoke(name: str, tmp_path: Path) -> None:
    args, extra = SMOKE[name]
    path = HERE / name
    runs_pytest = args[:2] == ["-m", "pytest"]
    command = ["bash", str(path), *args] if path.suffix == ".sh" else [PY, *args] if runs_pytest else [PY, str(path), *args]
    env = {**os.environ, **extra, "PYTHON": PY, "FACEHASH_CHECK_DIR": str(tmp_path / "gpu_check"),
           "PATH": f"{Path(PY).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    env.pop("OUT", None)  # gpu_check.sh copies its log there when set
    cwd = HERE if runs_pytest else tmp_path
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=280)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{name} exited {done.returncode}:\n{output[-3000:]}"
    assert "Traceback" not in output and "FAILED" not in output, output[-3000:]
