"""Probability of backtest overfitting by combinatorially symmetric cross-validation (CSCV).

Bailey, Borwein, Lopez de Prado & Zhu (2016), "The probability of backtest
overfitting".  The T blocks are cut into S contiguous partitions (sizes
differ by at most one block, the first ones longer).  Each of the C(S, S/2)
ways of picking S/2 partitions is a split: those partitions are in sample,
the others out of sample.  For each split:

1. every combination's Sharpe ratio (mean / sample std of its block returns;
   0 when the std is 0) in sample and out of sample;
2. n* = the in-sample best (ties: the lowest index);
3. w = average rank of n*'s out-of-sample Sharpe among all N (1 = worst) / (N + 1);
4. logit = ln(w / (1 - w)).

PBO is the share of splits with logit <= 0: how often the in-sample winner
lands in the bottom half out of sample.  Also reported: the slope of an OLS
line of out-of-sample on in-sample Sharpe of n* across splits (performance
degradation) and the share of splits where n*'s out-of-sample Sharpe is
negative (probability of out-of-sample loss).

Only per-partition sums and sums of squares of each combination enter, so a
split costs O(S x N), not O(T x N).

Example:
    >>> bounds = partition_bounds(10, 4)
    >>> bounds.tolist()
    [0, 3, 6, 8, 10]
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from numba import njit, prange

from services.limits import CSCV_MAX_WORK

from ..interrupts import STOP

# splits x (S/2) x combinations above which a seeded subset of splits is used
MAX_WORK = CSCV_MAX_WORK


def partition_bounds(t: int, s: int) -> np.ndarray:
    """Boundaries of ``s`` contiguous partitions of ``t`` blocks (``np.array_split`` sizes)."""
    sizes = np.full(s, t // s, dtype=np.int64)
    sizes[: t % s] += 1
    return np.r_[0, np.cumsum(sizes)].astype(np.int64)


def partition_sums(x: np.ndarray, bounds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``x`` (combinations x blocks): sums and sums of squares within each partition."""
    sums = np.add.reduceat(x, bounds[:-1], axis=1)
    sumsq = np.add.reduceat(x * x, bounds[:-1], axis=1)
    return np.ascontiguousarray(sums), np.ascontiguousarray(sumsq)


def splits(s: int, n: int, seed: int = 0, max_work: int = MAX_WORK) -> tuple[np.ndarray, int]:
    """In-sample partition sets, one row per split; a seeded subset when all would cost too much.

    Returns (rows (n_splits, s/2) int64, number of splits in total).
    """
    every = math.comb(s, s // 2)
    limit = max(1, max_work // max(1, (s // 2) * n))
    if every <= limit:
        rows = np.array(list(itertools.combinations(range(s), s // 2)), dtype=np.int64)
        return rows, every
    rng = np.random.default_rng([int(seed), 0xC5C7])
    picked: set[tuple] = set()
    while len(picked) < limit:
        picked.add(tuple(sorted(rng.choice(s, s // 2, replace=False).tolist())))
    return np.array(sorted(picked), dtype=np.int64), every


@njit(cache=True, nogil=True, inline="always")
def _sharpe(s, q, n):
    mean = s / n
    var = (q - n * mean * mean) / (n - 1.0)
    return mean / math.sqrt(var) if var > 0.0 else 0.0


@njit(cache=True, nogil=True, parallel=True)
def cscv_splits(sums, sumsq, counts, in_sample, is_best, oos_best, logit, stop):
    """For each split (row of ``in_sample``): in-sample best's IS and OOS Sharpe and the OOS rank logit.

    ``sums``/``sumsq`` are (N, S) per-partition sums of block returns and of
    their squares, ``counts`` the blocks per partition.  Out-of-sample sums
    are the totals minus the in-sample ones.
    """
    n, s = sums.shape
    tot_n = 0.0
    for p in range(s):
        tot_n += counts[p]
    tot_s = np.zeros(n)
    tot_q = np.zeros(n)
    for k in range(n):
        for p in range(s):
            tot_s[k] += sums[k, p]
            tot_q[k] += sumsq[k, p]
    for c in prange(in_sample.shape[0]):
        if stop[0] != 0:  # Ctrl-C / SIGTERM: leave the rest, the caller raises
            continue
        parts = in_sample[c]
        n_is = 0.0
        for m in range(parts.shape[0]):
            n_is += counts[parts[m]]
        n_oos = tot_n - n_is
        oos = np.empty(n)
        best = -np.inf
        best_k = 0
        for k in range(n):
            si = 0.0
            qi = 0.0
            for m in range(parts.shape[0]):
                si += sums[k, parts[m]]
                qi += sumsq[k, parts[m]]
            sh = _sharpe(si, qi, n_is)
            if sh > best:
                best = sh
                best_k = k
            oos[k] = _sharpe(tot_s[k] - si, tot_q[k] - qi, n_oos)
        target = oos[best_k]
        below = 0.0
        ties = 0.0
        for k in range(n):
            if oos[k] < target:
                below += 1.0
            elif oos[k] == target:
                ties += 1.0
        rank = below + (ties + 1.0) / 2.0  # average rank, 1 = worst
        w = rank / (n + 1.0)
        is_best[c] = best
        oos_best[c] = target
        logit[c] = math.log(w / (1.0 - w))


def pbo(sums: np.ndarray, sumsq: np.ndarray, counts: np.ndarray, seed: int = 0, max_work: int = MAX_WORK) -> dict:
    """PBO and its companions from per-partition sums (N combinations x S partitions)."""
    n, s = sums.shape
    rows, total = splits(s, n, seed, max_work)
    m = rows.shape[0]
    is_best, oos_best, logit = np.empty(m), np.empty(m), np.empty(m)
    cscv_splits(
        np.ascontiguousarray(sums, dtype=np.float64),
        np.ascontiguousarray(sumsq, dtype=np.float64),
        np.ascontiguousarray(counts, dtype=np.float64),
        rows,
        is_best,
        oos_best,
        logit,
        STOP,
    )
    if STOP[0]:
        raise KeyboardInterrupt
    slope = float("nan")
    if m > 1 and np.var(is_best) > 0.0:
        slope = float(np.polyfit(is_best, oos_best, 1)[0])
    return {
        "pbo": float(np.mean(logit <= 0.0)),
        "degradation_slope": slope,
        "prob_oos_loss": float(np.mean(oos_best < 0.0)),
        "splits": int(m),
        "splits_total": int(total),
        "logits": logit,
        "is_sharpe": is_best,
        "oos_sharpe": oos_best,
    }
