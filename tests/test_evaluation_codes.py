"""bench.evaluation.codes: the numpy and torch backends agree with each other and with a
bit-by-bit reference written here, on random inputs that include exact zeros."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.evaluation.codes import pack_codes, sign_codes, unpack_codes, words_from_packed

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
LENGTHS = [1, 7, 8, 9, 12, 48, 63, 64, 65, 130]


def reference_pack(codes: np.ndarray) -> np.ndarray:
    """Byte j of a row holds positions 8j..8j+7, position 8j as its most significant bit."""
    n, k = codes.shape
    out = np.zeros((n, -(-k // 8)), dtype=np.uint8)
    for row in range(n):
        for position in range(k):
            if codes[row, position] > 0:
                out[row, position // 8] |= 1 << (7 - position % 8)
    return out


def relaxed(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """Float32 values with about a third exact zeros (+0.0 and -0.0) and some tiny ones."""
    u = rng.standard_normal((n, k)).astype(np.float32)
    u[rng.random((n, k)) < 0.3] = 0.0
    u[rng.random((n, k)) < 0.1] = -0.0
    u[rng.random((n, k)) < 0.05] = np.float32(1e-38) * rng.choice([-1, 1])
    return u


@pytest.mark.parametrize("k", LENGTHS)
def test_numpy_and_torch_backends_agree_bit_for_bit(k):
    rng = np.random.default_rng(k)
    u = relaxed(rng, 33, k)
    assert (u == 0).any()
    codes = sign_codes(u)
    expected = np.where(u < 0, -1, 1)  # sign(0) = +1, also for -0.0
    assert codes.dtype == np.int8 and np.array_equal(codes, expected)
    codes_t = sign_codes(torch.from_numpy(u))
    assert codes_t.dtype == torch.int8 and np.array_equal(codes_t.numpy(), codes)

    packed = pack_codes(codes)
    assert packed.dtype == np.uint8 and np.array_equal(packed, reference_pack(codes))
    packed_t = pack_codes(codes_t)
    assert packed_t.dtype == torch.uint8 and np.array_equal(packed_t.numpy(), packed)

    assert np.array_equal(unpack_codes(packed, k), codes)
    back_t = unpack_codes(packed_t, k)
    assert back_t.dtype == torch.int8 and np.array_equal(back_t.numpy(), codes)


def test_padding_bits_are_zero_and_unpacking_them_gives_minus_one():
    codes = np.ones((2, 10), dtype=np.int8)
    packed = pack_codes(codes)
    assert packed.tolist() == [[255, 192], [255, 192]]
    assert unpack_codes(packed, 16)[:, 10:].tolist() == [[-1] * 6] * 2
    assert unpack_codes(torch.from_numpy(packed), 16)[:, 10:].tolist() == [[-1] * 6] * 2
    assert words_from_packed(packed)[0, 0] == 0xC0FF


def test_nan_signs_to_minus_one_in_both_backends():
    u = np.array([[np.nan, 0.0]], dtype=np.float32)
    assert sign_codes(u).tolist() == sign_codes(torch.from_numpy(u)).tolist() == [[-1, 1]]


def test_packing_refuses_other_than_two_dimensions():
    with pytest.raises(ValueError, match="2-D"):
        pack_codes(np.ones(4))
    with pytest.raises(ValueError, match="2-D"):
        pack_codes(torch.ones(4))


@pytest.mark.cuda
@needs_cuda
def test_cuda_backend_agrees_with_numpy():
    u = relaxed(np.random.default_rng(0), 257, 65)
    on_device = torch.from_numpy(u).cuda()
    codes = sign_codes(on_device)
    packed = pack_codes(codes)
    assert codes.device.type == packed.device.type == "cuda"
    assert np.array_equal(codes.cpu().numpy(), sign_codes(u))
    assert np.array_equal(packed.cpu().numpy(), pack_codes(sign_codes(u)))
    assert np.array_equal(unpack_codes(packed, 65).cpu().numpy(), sign_codes(u))
