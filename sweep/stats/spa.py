"""White's Reality Check and Hansen's SPA test against benchmarks, streamed over combinations.

Hansen (2005), "A test for superior predictive ability"; White (2000), "A
reality check for data snooping".  The loss of combination k in block t is
minus its block return, and so is a benchmark's: flat (no position) loses 0,
buy-and-hold loses minus the asset's block return b[t].  The loss
differential is d[t, k] = return[t, k] - b[t] (b = 0 for flat).  With the stationary bootstrap
of Politis & Romano (1994) (mean block length ``block``), replicate b gives
mean differentials m*[b, k]; the p-value is the share of replicates with

    max_k (m*[b, k] - g[k])  >  max_k mean(d[:, k])

where g re-centres each combination: its mean for the Reality Check (White's
"upper" p-value), its mean only when it is not far below the benchmark for
Hansen's consistent p-value (mean >= -sqrt(2 log log T) * omega / sqrt(T),
omega^2 the Politis-Romano kernel variance), and max(mean, 0) for the lower
bound.  This follows ``arch.bootstrap.SPA`` exactly, including its bootstrap
indices for a given seed (the test suite checks p-values against arch).

Memory: the bootstrap is shared by all combinations and benchmarks; combinations
arrive in chunks (``SPAStream.add``), each chunk costs one (reps x T) @ (T x chunk)
product, and only a running maximum per replicate and benchmark is kept - never
the (combinations x reps) matrix.  A benchmark adds no product: replicate b's
mean of d[:, k] is the replicate's mean of the returns minus its mean of b, and
the second term is the same for every k, so it comes off the running maximum.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange


@njit(cache=True, nogil=True)
def _stationary(indices, u, p, t):
    # a new block starts with probability p, otherwise the next block follows (wrapping around)
    for i in range(1, t):
        if u[i] > p:
            indices[i] = indices[i - 1] + 1
            if indices[i] == t:
                indices[i] = 0


def stationary_indices(t: int, reps: int, block: float, seed: int) -> np.ndarray:
    """(reps, t) bootstrap indices; replicate b is drawn as arch's StationaryBootstrap draws it."""
    rng = np.random.default_rng(seed)
    out = np.empty((reps, t), dtype=np.int64)
    p = 1.0 / block
    for b in range(reps):
        idx = rng.integers(t, size=t, dtype=np.int64)
        u = rng.random(t)
        _stationary(idx, u, p, t)
        out[b] = idx
    return out


def resample_weights(indices: np.ndarray, t: int) -> np.ndarray:
    """(reps, t): how often each block appears in each replicate, divided by t (a mean is one product)."""
    reps = indices.shape[0]
    flat = (np.arange(reps)[:, None] * t + indices).ravel()
    return np.bincount(flat, minlength=reps * t).reshape(reps, t) / t


def kernel_variance(d: np.ndarray, block: float) -> np.ndarray:
    """Politis-Romano kernel variance of each column of ``d`` (T x k), as arch's SPA computes it.

    gamma_i = sum_s e[s] e[s + i] / T (e = demeaned column) for every lag;
    variance = gamma_0 + 2 sum_i kappa_i gamma_i with
    kappa_i = (1 - i/T) q^i + (i/T) q^(T - i), q = 1 - 1 / block.
    """
    return row_kernel_variance(np.asarray(d, dtype=np.float64).T, block)


def row_kernel_variance(x: np.ndarray, block: float) -> np.ndarray:
    """``kernel_variance`` of each row of ``x`` (k x T): one contiguous row per series, in O(T) each.

    >>> x = np.array([[1.0, -1.0, 2.0, 0.0, -2.0]])
    >>> t, q = 5, 1 - 1 / 2
    >>> e = x[0] - x[0].mean()
    >>> lags = [(1 - i / t) * q**i + (i / t) * q ** (t - i) for i in range(1, t)]
    >>> plain = (e @ e + 2 * sum(k * (e[i:] @ e[:-i]) for i, k in zip(range(1, t), lags))) / t
    >>> bool(np.isclose(row_kernel_variance(x, 2.0)[0], plain, rtol=1e-12))
    True
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    out = np.empty(x.shape[0])
    _row_kernel_variance(x, 1.0 - 1.0 / float(block), out)
    return out


@njit(cache=True, nogil=True, parallel=True)
def _row_kernel_variance(x, q, out):
    # The kernel's two parts are geometric in the lag, so the sum over all T - 1 lags needs no
    # autocovariances (an FFT of every row took 2 s for 10,000 rows of 2,564 blocks):
    #   sum_s e_s sum_i (1 - i/T) q^i e_{s+i}   with A_s = sum_i q^i e_{s+i}, B_s = sum_i i q^i e_{s+i}
    #     A_s = q (e_{s+1} + A_{s+1}),  B_s = q (e_{s+1} + A_{s+1} + B_{s+1})      (backward, contracting)
    #   sum_s e_s sum_i (i/T) q^(T-i) e_{s+i} = sum_j q^(T-j) e_j (j F_j - G_j) / T
    #     F_j = sum_{s<j} q^s e_s,  G_j = sum_{s<j} s q^s e_s                     (forward; a power of q
    #     that underflows multiplies a term that is that small anyway)
    k, t = x.shape
    pw = np.empty(t + 1)  # q^0 .. q^T, shared by every row
    pw[0] = 1.0
    for i in range(1, t + 1):
        pw[i] = pw[i - 1] * q
    for r in prange(k):
        row = x[r]
        mean = 0.0
        for s in range(t):
            mean += row[s]
        mean /= t
        g0 = 0.0
        near = 0.0
        a = 0.0
        b = 0.0
        for s in range(t - 1, -1, -1):  # A_s, B_s from A_{s+1}, B_{s+1}
            e = row[s] - mean
            g0 += e * e
            near += e * (a - b / t)
            b = q * (e + a + b)  # e is e_{s+1} of the next (earlier) s
            a = q * (e + a)
        far = 0.0
        f = 0.0
        g = 0.0
        for j in range(t):
            e = row[j] - mean
            far += pw[t - j] * e * (j * f - g)  # (nothing before j = 0: f = g = 0)
            f += pw[j] * e
            g += j * pw[j] * e
        out[r] = (g0 + 2.0 * near + 2.0 * far / t) / t


@njit(cache=True, nogil=True, parallel=True)
def max_recentred(mstar, centres, best):
    """best[b, j] = max(best[b, j], max_k mstar[b, k] - centres[j, k]) for the 3 re-centrings j."""
    reps, k = mstar.shape
    for b in prange(reps):
        row = mstar[b]
        for j in range(centres.shape[0]):
            c = centres[j]
            m = best[b, j]
            for q in range(k):
                v = row[q] - c[q]
                if v > m:
                    m = v
            best[b, j] = m


class SPAStream:
    """Accumulates the Reality Check and SPA over chunks of combinations sharing one bootstrap.

    ``benchmarks`` maps a name to the benchmark's T block returns (None: flat,
    0 in every block); by default the flat benchmark alone.  Every benchmark is
    tested on the same bootstrap replicates.

    Example:
        >>> rng = np.random.default_rng(1)
        >>> hold = rng.normal(0.0005, 0.01, 200)
        >>> spa = SPAStream(t=200, reps=200, block=5, seed=3, benchmarks={"flat": None, "buy_and_hold": hold})
        >>> spa.add(rng.normal(0.0, 0.01, (200, 30)))
        >>> 0.0 <= spa.result()["spa_p"] <= 1.0 and 0.0 <= spa.result("buy_and_hold")["spa_p"] <= 1.0
        True
    """

    def __init__(
        self,
        t: int,
        reps: int,
        block: float,
        seed: int,
        indices: np.ndarray | None = None,
        benchmarks: dict | None = None,
    ) -> None:
        self.t, self.reps, self.block = int(t), int(reps), float(block)
        idx = stationary_indices(self.t, self.reps, self.block, seed) if indices is None else np.asarray(indices)
        self.weights = np.ascontiguousarray(resample_weights(idx, self.t))
        self.benchmarks: dict[str, np.ndarray | None] = {}
        self.offset: dict[str, np.ndarray] = {}  # each replicate's mean of the benchmark's returns
        for name, b in ({"flat": None} if benchmarks is None else benchmarks).items():
            b = None if b is None else np.ascontiguousarray(b, dtype=np.float64)
            if b is not None and b.shape != (self.t,):
                raise ValueError(f"benchmark {name!r}: expected {self.t} block returns, got shape {b.shape}")
            self.benchmarks[name] = b
            self.offset[name] = np.zeros(self.reps) if b is None else self.weights @ b
        self.best = {name: np.full((self.reps, 3), -np.inf) for name in self.benchmarks}
        self.max_mean = dict.fromkeys(self.benchmarks, -np.inf)
        self.models = 0
        self._loglog = 2.0 * math.log(math.log(self.t)) if self.t > math.e else 0.0

    def add(self, r: np.ndarray) -> None:
        """Add combinations: ``r`` is (T x k), the block returns of k combinations."""
        rows = np.asarray(r, dtype=np.float64).T  # the caller's (k x T) rows: no copy when it passed rows.T
        r = np.ascontiguousarray(r, dtype=np.float64)
        if r.shape[1] == 0:
            return
        mstar = np.ascontiguousarray(self.weights @ r)  # (reps, k): every replicate's mean of every combination
        for name, b in self.benchmarks.items():
            if b is None:  # flat: the loss differential is the return
                d, mean = rows, r.mean(axis=0)
            else:
                d = rows - b  # (k x T) loss differentials against the benchmark
                mean = d.mean(axis=1)
            var = row_kernel_variance(d, self.block)
            valid = mean >= -np.sqrt(np.maximum(var, 0.0) / self.t * self._loglog)
            centres = np.stack([np.maximum(mean, 0.0), np.where(valid, mean, 0.0), mean])  # lower, consistent, upper
            max_recentred(mstar, np.ascontiguousarray(centres), self.best[name])
            self.max_mean[name] = max(self.max_mean[name], float(mean.max()))
        self.models += r.shape[1]

    def result(self, benchmark: str = "flat") -> dict:
        """p-values against ``benchmark``: ``reality_check_p`` (White), ``spa_p`` (Hansen), ``spa_lower_p``."""
        best = self.best[benchmark] - self.offset[benchmark][:, None]  # replicate means of d = of r - of b
        p = (best > self.max_mean[benchmark]).mean(axis=0)
        return {
            "reality_check_p": float(p[2]),
            "spa_p": float(p[1]),
            "spa_lower_p": float(p[0]),
            "reps": self.reps,
            "bootstrap_block": self.block,
            "models": self.models,
        }
