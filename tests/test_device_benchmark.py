"""The parts of benchmarks/bench_device.py that a GPU machine runs untested otherwise: its numpy
SMOTE (that machine has no scikit-learn), its rows, its pool and the bf16 agreement criteria."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_device  # noqa: E402


def test_numpy_smote_balances_by_interpolating_within_each_class():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0] * 4, [10.0] * 4, [-10.0] * 4])
    y = np.repeat([0, 1, 2], [40, 12, 3])
    x = (centres[y] + rng.normal(0, 1, (len(y), 4))).astype(np.float32)
    xb, yb = bench_device.smote_numpy(x, y, k=5, seed=1)
    assert np.bincount(yb).tolist() == [40, 40, 40]
    np.testing.assert_array_equal(xb[:len(x)], x)              # the originals come first
    # every synthetic row of the 3-member class lies on a segment between two of its members
    members = x[y == 2]
    for row in xb[len(x):][yb[len(x):] == 2]:
        off = []
        for i in range(3):
            for j in range(3):
                if i != j:
                    d = members[j] - members[i]
                    t = float(np.clip((row - members[i]) @ d / (d @ d), 0, 1))
                    off.append(float(np.linalg.norm(members[i] + t * d - row)))
        assert min(off) < 1e-4
    # and each synthetic row stays near its own class
    synthetic, labels = xb[len(x):], yb[len(x):]
    nearest = np.argmin(((synthetic[:, None, :] - centres[None]) ** 2).sum(-1), axis=1)
    np.testing.assert_array_equal(nearest, labels)


def test_profile_rows_are_scaled_rows_and_the_pool_repeats_them():
    rng = np.random.default_rng(2)
    rows = bench_device.profile_rows(np.array([0, 1, 2, 1]), rng)
    assert rows.shape == (4, 140) and rows.dtype == np.float32
    np.testing.assert_allclose(rows.min(axis=1), -1.0)
    np.testing.assert_allclose(rows.max(axis=1), 1.0)
    pool = bench_device.pool(10, rows)
    assert pool.shape == (10, 140)
    np.testing.assert_array_equal(pool[4:8], rows)
    np.testing.assert_array_equal(pool[8:], rows[:2])


def test_agreement_tells_boundary_flips_from_real_ones():
    rng = np.random.default_rng(3)
    p32 = rng.dirichlet([5, 1, 1], 500).astype(np.float32)
    p32[0] = [0.4998, 0.5002, 0.0]             # gap 4e-4: on a decision boundary
    p32[1] = [0.45, 0.55, 0.0]                 # gap 0.1: away from it
    p16 = p32.copy()
    p16[0] = [0.5002, 0.4998, 0.0]
    p16[1] = [0.55, 0.45, 0.0]
    a = bench_device.agreement(p32, p16)
    assert a["differences_near_boundary"] == 1
    assert a["differences_away_from_boundary"] == 1
    assert a["near_boundary"] >= 1
    assert a["entropy_batch_overlap"] >= 98
    same = bench_device.agreement(p32, p32)
    assert same["differences_away_from_boundary"] == 0
    assert same["entropy_batch_overlap"] == 100
