"""The ceiling: a hand-written fused numba kernel for exactly the MA-crossover benchmark.

Long-only, all-in, market orders filled at the next bar's open, optional
percent commission; each unique SMA computed once, then one pass per
combination (prange over combinations) with metrics accumulated on the fly
(return moments, max drawdown, trades).  Nothing general: no services, no
regimes, no risk, no events.  It is the near-limit reference the engine's
speed is reported against, and it must agree with the engine on final equity
and trade counts.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, nogil=True)
def sma_table(close, windows):
    """One row per window: the simple moving average of close (NaN before the window fills)."""
    n = close.shape[0]
    out = np.empty((windows.shape[0], n))
    for k in range(windows.shape[0]):
        w = windows[k]
        s = 0.0
        for t in range(n):
            s += close[t]
            if t >= w:
                s -= close[t - w]
            out[k, t] = s / w if t >= w - 1 else np.nan
    return out


@njit(cache=True, nogil=True, parallel=True)
def ma_crossover_grid(open_, close, smas, fast_idx, slow_idx, first, fee, initial):
    """Final equity, trades, Sharpe numerator/denominator and max drawdown per combination."""
    n_c = fast_idx.shape[0]
    n = close.shape[0]
    final = np.empty(n_c)
    trades = np.empty(n_c, dtype=np.int64)
    mean_r = np.empty(n_c)
    sd_r = np.empty(n_c)
    max_dd = np.empty(n_c)
    for c in prange(n_c):
        f = smas[fast_idx[c]]
        s = smas[slow_idx[c]]
        cash = initial
        pos = 0.0
        want = 0.0  # 1 = long wanted from the next open
        held = 0.0
        eq_prev = initial
        peak = initial
        mdd = 0.0
        s1 = 0.0
        s2 = 0.0
        nr = 0
        nt = 0
        for t in range(first, n):
            if want != held:  # fill at this bar's open
                px = open_[t]
                if want > 0.0:
                    pos = cash / (px * (1.0 + fee))
                    cash = 0.0
                else:
                    cash += pos * px * (1.0 - fee)
                    pos = 0.0
                    nt += 1
                held = want
            eq = cash + pos * close[t]
            if t > first:
                r = eq / eq_prev - 1.0
                s1 += r
                s2 += r * r
                nr += 1
            eq_prev = eq
            if eq > peak:
                peak = eq
            elif 1.0 - eq / peak > mdd:
                mdd = 1.0 - eq / peak
            if t < n - 1:
                want = 1.0 if f[t] > s[t] else 0.0
        final[c] = cash + pos * close[n - 1]
        trades[c] = nt
        m = s1 / nr
        mean_r[c] = m
        sd_r[c] = np.sqrt((s2 - nr * m * m) / (nr - 1))
        max_dd[c] = mdd
    return final, trades, mean_r, sd_r, max_dd


def run_ceiling(open_, close, fast, slow, fee=0.0, initial=100_000.0):
    """Run the grid (all fast x slow pairs); returns dict of arrays in (fast, slow) order."""
    windows = np.unique(np.concatenate([fast, slow])).astype(np.int64)
    smas = sma_table(close, windows)
    pos = {int(w): i for i, w in enumerate(windows)}
    fi = np.array([pos[int(f)] for f in fast for _ in slow], dtype=np.int64)
    si = np.array([pos[int(s)] for _ in fast for s in slow], dtype=np.int64)
    first = int(windows.max()) - 1
    final, trades, mean_r, sd_r, mdd = ma_crossover_grid(open_, close, smas, fi, si, first, fee, initial)
    return {
        "final_equity": final,
        "trades": trades,
        "mean_r": mean_r,
        "sd_r": sd_r,
        "max_drawdown": mdd,
        "first": first,
    }
