"""pca-itq / pca-sign at scale: one PCA per training set shared by every code length, and
arrays runs that hand torch no read-only numpy array."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import scipy.linalg

from baselines import itq as itq_module
from baselines.itq import PCAITQ, PCAITQConfig, PCASign, PCASignConfig


def test_the_pca_of_a_training_set_is_computed_once_for_every_code_length(monkeypatch):
    x = np.random.default_rng(0).standard_normal((300, 100)).astype(np.float32)
    calls = []
    for module, name in ((np.linalg, "svd"), (np.linalg, "eigh"), (scipy.linalg, "eigh"), (scipy.linalg, "svd")):
        real = getattr(module, name)

        def counted(a, *args, _real=real, **kwargs):
            if max(np.shape(a)) >= x.shape[1]:  # a decomposition of the data, not ITQ's K x K ones
                calls.append(np.shape(a))
            return _real(a, *args, **kwargs)

        monkeypatch.setattr(module, name, counted)
    itq_module._CACHE.clear()
    codes = [PCAITQ().fit(x, np.zeros(len(x)), bits, 0, PCAITQConfig())(x) for bits in (4, 8, 12, 16)]
    codes.append(PCASign().fit(x, np.zeros(len(x)), 16, 0, PCASignConfig())(x))
    assert len(calls) == 1, calls
    assert [c.shape[1] for c in codes] == [4, 8, 12, 16, 16]
    other = x.copy()
    other[0, 0] += 1.0  # other data: decomposed anew
    PCASign().fit(other, np.zeros(len(x)), 4, 0, PCASignConfig())
    assert len(calls) == 2


def test_more_directions_than_computed_decompose_the_cached_covariance_again(monkeypatch):
    monkeypatch.setattr(itq_module, "_DIRECTIONS", 3)
    x = np.random.default_rng(2).standard_normal((300, 20)).astype(np.float32) * np.arange(20, 0, -1)
    itq_module._CACHE.clear()
    _, w3 = itq_module.principal_directions(x, 2)
    assert w3.shape == (20, 3)
    _, w6 = itq_module.pca(x, 6)
    _, _, vt = np.linalg.svd(x.astype(np.float64) - x.mean(axis=0, dtype=np.float64), full_matrices=False)
    np.testing.assert_allclose(np.abs(w6.T @ vt[:6].T), np.eye(6), atol=1e-4)
    assert w6.shape == (20, 6)
    np.testing.assert_array_equal(w6[:, :3], w3)  # the first three kept as they were: bit-identical


def test_pca_directions_match_a_float64_svd_up_to_sign():
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((400, 8)) * np.arange(8, 0, -1) * 3 + 5).astype(np.float32)
    mean, w = itq_module.pca(x, 4)
    _, _, vt = np.linalg.svd(x.astype(np.float64) - x.mean(axis=0, dtype=np.float64), full_matrices=False)
    np.testing.assert_allclose(np.abs(w.T @ vt[:4].T), np.eye(4), atol=1e-4)
    np.testing.assert_allclose(mean, x.mean(axis=0, dtype=np.float64), rtol=1e-5)


def test_a_read_only_array_is_resized_without_the_not_writable_warning():
    # a fresh process: torch prints this warning once per process only
    script = (
        "import numpy as np, warnings\n"
        "warnings.simplefilter('error')\n"
        "from bench.data.preprocess import resize_uint8\n"
        "images = np.zeros((2, 3, 16, 16), np.uint8); images.flags.writeable = False\n"
        "assert resize_uint8(images, 32).shape == (2, 3, 32, 32)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
