"""Probabilistic and deflated Sharpe ratios, per period (not annualised).

- ``probabilistic_sharpe`` (Bailey & Lopez de Prado 2012): the probability that
  the true Sharpe ratio exceeds ``benchmark``, given the estimate ``sr`` from
  ``t`` returns with skewness ``skew`` and (non-excess) kurtosis ``kurt``:
  ``Z[(sr - benchmark) sqrt(t - 1) / sqrt(1 - skew sr + (kurt - 1) / 4 sr^2)]``.
- ``expected_max_sharpe``: the Sharpe ratio the best of ``n`` skill-less trials
  reaches by luck, ``sqrt(V) ((1 - g) Z^-1[1 - 1/n] + g Z^-1[1 - 1/(n e)])``
  with V the variance of the trials' Sharpe ratios and g Euler's constant.
- ``deflated_sharpe`` (Bailey & Lopez de Prado 2014): the probabilistic Sharpe
  ratio against that expected maximum.

Example (the paper's worked example: 100 trials, variance of the annualised
trial Sharpe ratios 0.5, best Sharpe 2.5 annualised, 250 periods a year,
1,250 periods, skewness -3, kurtosis 10):

    >>> sr0 = expected_max_sharpe(100, 0.5 / 250)
    >>> round(sr0, 4), round(deflated_sharpe(2.5 / 250**0.5, 1250, -3.0, 10.0, 100, 0.5 / 250), 4)
    (0.1132, 0.9004)
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
from numba import njit, prange

EULER_GAMMA = 0.5772156649015329
_Z = NormalDist()


def probabilistic_sharpe(sr: float, t: int, skew: float, kurt: float, benchmark: float = 0.0) -> float:
    """P(true Sharpe > benchmark) for a per-period Sharpe ``sr`` estimated from ``t`` returns."""
    if t < 2 or not all(math.isfinite(x) for x in (sr, skew, kurt, benchmark)):
        return float("nan")
    var = 1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr * sr
    if var <= 0.0:  # the moments are inconsistent with this Sharpe ratio: no normal approximation
        return float("nan")
    return _Z.cdf((sr - benchmark) * math.sqrt(t - 1.0) / math.sqrt(var))


def expected_max_sharpe(n_trials: int, var_trials: float) -> float:
    """Expected maximum per-period Sharpe ratio of ``n_trials`` skill-less trials (needs n >= 2)."""
    if n_trials < 2 or not math.isfinite(var_trials) or var_trials < 0.0:
        return float("nan")
    a = _Z.inv_cdf(1.0 - 1.0 / n_trials)
    b = _Z.inv_cdf(1.0 - 1.0 / (n_trials * math.e))
    return math.sqrt(var_trials) * ((1.0 - EULER_GAMMA) * a + EULER_GAMMA * b)


def deflated_sharpe(sr: float, t: int, skew: float, kurt: float, n_trials: int, var_trials: float) -> float:
    """The deflated Sharpe ratio: PSR of ``sr`` against the expected maximum of ``n_trials`` trials."""
    return probabilistic_sharpe(sr, t, skew, kurt, expected_max_sharpe(n_trials, var_trials))


@njit(cache=True, nogil=True, parallel=True)
def row_moments(x, bits, out, hashes):
    """Per row of ``x`` (combinations x blocks): mean, Sharpe, skewness, kurtosis and a content hash.

    ``bits`` is ``x.view(np.uint64)``; ``out`` is (4, rows), ``hashes`` (rows,)
    uint64.  The Sharpe ratio is mean / sample std (ddof 1), 0 for a constant
    row; skewness and kurtosis (non-excess) are the population moment ratios,
    0 and 3 for a constant row.  The hash (a splitmix64 fold of the values'
    bits) identifies rows with identical returns: identical trials are one trial.
    """
    n, t = x.shape
    for i in prange(n):
        row = x[i]
        s = 0.0
        for j in range(t):
            s += row[j]
        mean = s / t
        m2 = 0.0
        m3 = 0.0
        m4 = 0.0
        h = np.uint64(0x9E3779B97F4A7C15)
        for j in range(t):
            d = row[j] - mean
            d2 = d * d
            m2 += d2
            m3 += d2 * d
            m4 += d2 * d2
            # fold the value's bits into the hash (splitmix64 finaliser)
            z = h ^ bits[i, j]
            z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            h = z ^ (z >> np.uint64(31))
        var_pop = m2 / t
        sd = math.sqrt(m2 / (t - 1)) if t > 1 else 0.0
        out[0, i] = mean
        out[1, i] = mean / sd if sd > 0.0 else 0.0
        out[2, i] = (m3 / t) / var_pop**1.5 if var_pop > 0.0 else 0.0
        out[3, i] = (m4 / t) / (var_pop * var_pop) if var_pop > 0.0 else 3.0
        hashes[i] = h
