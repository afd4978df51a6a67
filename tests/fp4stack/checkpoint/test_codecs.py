"""The numpy E2M1/E4M3 codecs against torch's float8 cast and an exhaustive nearest search."""

from __future__ import annotations

import numpy as np
import torch

from fp4stack.checkpoint.fp4 import (
    E2M1_VALUES,
    E4M3_VALUES,
    e2m1_encode,
    e4m3_encode,
    e4m3_pow2_code,
    pack_nibbles,
    unpack_nibbles,
)


def test_e4m3_table_matches_torch():
    codes = torch.arange(127, dtype=torch.uint8).view(torch.float8_e4m3fn)
    assert np.array_equal(codes.float().numpy().astype(np.float64), E4M3_VALUES)


def test_e4m3_encode_is_torch_round_to_nearest_even():
    rng = np.random.default_rng(1)
    mids = (E4M3_VALUES[1:] + E4M3_VALUES[:-1]) / 2  # every tie
    x = np.concatenate([rng.random(200_000) * 448, rng.random(20_000) * 2**-6, mids, E4M3_VALUES])
    x = x.astype(np.float32)
    ref = torch.from_numpy(x).to(torch.float8_e4m3fn).view(torch.uint8).numpy()
    assert np.array_equal(e4m3_encode(x.astype(np.float64)), ref)


def test_e4m3_saturates_instead_of_nan():
    assert e4m3_encode(np.array([448.0, 464.0, 1e30])).tolist() == [126, 126, 126]


def test_pow2_codes_are_exact():
    for e in range(-9, 9):
        assert E4M3_VALUES[e4m3_pow2_code(e)] == 2.0**e


def test_e2m1_encode_nearest_even_and_saturating():
    x = np.concatenate([np.linspace(-8, 8, 40_001), [0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0]])
    q = e2m1_encode(x)
    got = np.abs(E2M1_VALUES[q])
    target = np.minimum(np.abs(x), 6.0)
    best = np.abs(E2M1_VALUES[None, :8] - target[:, None]).min(axis=1)
    assert np.allclose(np.abs(got - target), best)
    assert got[-7:].tolist() == [0.0, 1.0, 1.0, 2.0, 2.0, 4.0, 4.0]  # ties to even mantissa
    assert np.array_equal(np.signbit(E2M1_VALUES[q])[x != 0], np.signbit(x)[x != 0])


def test_nibble_order_low_first():
    packed = np.array([[0x21, 0xF7]], dtype=np.uint8)
    assert unpack_nibbles(packed).tolist() == [[1, 2, 7, 15]]
    assert np.array_equal(pack_nibbles(unpack_nibbles(packed)), packed)
