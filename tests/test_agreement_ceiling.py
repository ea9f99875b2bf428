"""The agreement study's ceiling: the most any ranking can agree with two rankings at once."""

import numpy as np
import pytest

from benchmarks.agreement import ceiling


def correlation(a, b):
    return float(np.corrcoef(a, b)[0, 1])


@pytest.mark.parametrize("target", [-0.6, -0.17, 0.0, 0.5, 0.9])
def test_the_bisector_reaches_the_ceiling_and_nothing_passes_it(target):
    rng = np.random.default_rng(0)
    # Two centred unit vectors with correlation `target`.
    x = rng.normal(size=200)
    x = (x - x.mean()) / np.linalg.norm(x - x.mean())
    z = rng.normal(size=200)
    z -= z.mean() + (z - z.mean()) @ x * x
    z /= np.linalg.norm(z)
    y = target * x + np.sqrt(1 - target**2) * z
    assert correlation(x, y) == pytest.approx(target, abs=1e-9)
    bisector = x + y
    assert min(correlation(bisector, x), correlation(bisector, y)) == pytest.approx(ceiling(target), abs=1e-9)
    # No other direction does better with both (random directions in the plane and beyond).
    for _ in range(200):
        a = bisector + rng.normal(scale=0.5, size=200)
        assert min(correlation(a, x), correlation(a, y)) <= ceiling(target) + 1e-9
