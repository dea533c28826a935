"""Streaming moving-window indicators: sma, ema, std, zscore, bbands, returns, lag, slope, pctrank.

Every kernel has the signature ``kernel(x, p, s, out)``:

- ``x``   float64[n_inputs, n]  the chunk of input series
- ``p``   float64[n_params]     resolved parameters (durations already in bars)
- ``s``   float64[state_size]   streaming state, zeros before the first chunk
- ``out`` float64[n_outputs, n] written in place

A NaN input bar is skipped: its output is NaN and the state is untouched, so
indicators compose (the leading NaNs of an inner indicator are its warm-up).
Running sums are recomputed exactly each time the ring buffer wraps, which
bounds floating-point drift to one window and keeps chunked output identical
to a single pass (the recompute happens at the same bar either way).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from services.params import Float, Int
from services.registry import indicator

from . import reference as ref

# Layout of the shared rolling-window state used by sma/std/zscore/bbands/slope:
# [count, pos, shift, sum_d, sumsq_d, sum_jd, buf[0..n-1]]  (d = value - shift)
_W_COUNT, _W_POS, _W_SHIFT, _W_SUM, _W_SUMSQ, _W_SUMJ, _W_BUF = 0, 1, 2, 3, 4, 5, 6


def _window_state(n):
    return int(n) + _W_BUF


@njit(cache=True, nogil=True, inline="always")
def _push(buf, n, v, count, pos, shift, a, b, c):
    """Push ``v`` into the rolling window held in locals; returns the updated locals.

    ``a, b, c`` are sum d, sum d^2 and sum j*d over the window, with
    d = value - shift (shift ~ window mean, to avoid cancellation in the
    variance) and j = 0 (oldest) .. n-1 (newest) for the regression slope.
    """
    if count == 0:
        shift = v
    d = v - shift
    if count >= n:
        old = buf[pos] - shift
        # slide: indices of the kept values drop by one, the new value enters at n-1
        c = c - (a - old) + (n - 1) * d
        a += d - old
        b += d * d - old * old
    else:
        c += count * d
        a += d
        b += d * d
    buf[pos] = v
    pos += 1
    count += 1
    if pos == n:
        pos = 0
        # exact recompute once per window, re-centred on the current mean
        new_shift = shift + a / n
        a = 0.0
        b = 0.0
        c = 0.0
        for j in range(n):
            dj = buf[j] - new_shift  # the buffer is in time order right after a wrap
            a += dj
            b += dj * dj
            c += j * dj
        shift = new_shift
    return count, pos, shift, a, b, c


@njit(cache=True, nogil=True, inline="always")
def _mean_var(n, shift, a, b):
    m = a / n
    var = b / n - m * m
    if var < 0.0:
        var = 0.0
    return shift + m, var


@njit(cache=True, nogil=True)
def _rolling(x, p, s, out, what):
    """Shared loop of the rolling-window indicators (what: 1 std, 2 zscore, 3 bbands, 4 slope; sma has its own)."""
    n = int(p[0])
    k = p[1] if what == 3 else 0.0
    sxx = n * (n * n - 1.0) / 12.0  # sum_j (j - jbar)^2 for j = 0..n-1
    jbar = (n - 1.0) / 2.0
    count = int(s[_W_COUNT])
    pos = int(s[_W_POS])
    shift = s[_W_SHIFT]
    a = s[_W_SUM]
    b = s[_W_SUMSQ]
    c = s[_W_SUMJ]
    buf = s[_W_BUF : _W_BUF + n]
    xs = x[0]
    for t in range(xs.shape[0]):
        v = xs[t]
        if math.isnan(v):
            for r in range(out.shape[0]):
                out[r, t] = np.nan
            continue
        count, pos, shift, a, b, c = _push(buf, n, v, count, pos, shift, a, b, c)
        if count < n:
            for r in range(out.shape[0]):
                out[r, t] = np.nan
        elif what == 4:
            # cov(j, d) * n = sum j d - jbar sum d  (the shift cancels out)
            out[0, t] = (c - jbar * a) / sxx
        else:
            mean, var = _mean_var(n, shift, a, b)
            sd = math.sqrt(var)
            if what == 1:
                out[0, t] = sd
            elif what == 2:
                # a flat window has no spread: call the value "at the mean"
                out[0, t] = (v - mean) / sd if sd > 1e-12 * (abs(mean) + 1e-300) else 0.0
            else:
                out[0, t] = mean
                out[1, t] = mean + k * sd
                out[2, t] = mean - k * sd
    s[_W_COUNT] = count
    s[_W_POS] = pos
    s[_W_SHIFT] = shift
    s[_W_SUM] = a
    s[_W_SUMSQ] = b
    s[_W_SUMJ] = c


@indicator(
    "sma",
    inputs=("x",),
    params=[Int("n", 20, low=1, doc="window in bars")],
    state_size=_window_state,
    warmup=lambda n: n - 1,
    reference=ref.sma,
)
@njit(cache=True, nogil=True)
def sma_kernel(x, p, s, out):
    """Simple moving average of the last n values.

    The window push of the shared rolling loop, with only the sum kept: the sums of squares
    and of j*d are never stored, so LLVM drops their arithmetic (same bits, a third less work).
    """
    n = int(p[0])
    count = int(s[_W_COUNT])
    pos = int(s[_W_POS])
    shift = s[_W_SHIFT]
    a = s[_W_SUM]
    b = 0.0
    c = 0.0
    buf = s[_W_BUF : _W_BUF + n]
    xs = x[0]
    o = out[0]
    for t in range(xs.shape[0]):
        v = xs[t]
        if math.isnan(v):
            o[t] = np.nan
            continue
        count, pos, shift, a, b, c = _push(buf, n, v, count, pos, shift, a, b, c)
        o[t] = shift + a / n if count >= n else np.nan
    s[_W_COUNT] = count
    s[_W_POS] = pos
    s[_W_SHIFT] = shift
    s[_W_SUM] = a


@indicator(
    "ema",
    inputs=("x",),
    params=[Int("n", 20, low=1, doc="span; alpha = 2/(n+1)")],
    state_size=lambda n: 3,
    warmup=lambda n: n - 1,
    reference=ref.ema,
)
@njit(cache=True, nogil=True)
def ema_kernel(x, p, s, out):
    """Exponential moving average, alpha = 2/(n+1), seeded with the SMA of the first n values."""
    n = int(p[0])
    alpha = 2.0 / (n + 1.0)
    count = s[0]
    total = s[1]
    e = s[2]
    xs = x[0]
    o = out[0]
    for t in range(xs.shape[0]):
        v = xs[t]
        if math.isnan(v):
            o[t] = np.nan
            continue
        count += 1.0
        if count < n:
            total += v
            o[t] = np.nan
        elif count == n:
            total += v
            e = total / n
            o[t] = e
        else:
            e = e + alpha * (v - e)
            o[t] = e
    s[0] = count
    s[1] = total
    s[2] = e


@indicator(
    "std",
    inputs=("x",),
    params=[Int("n", 20, low=2, doc="window in bars")],
    state_size=_window_state,
    warmup=lambda n: n - 1,
    reference=ref.std,
)
@njit(cache=True, nogil=True)
def std_kernel(x, p, s, out):
    """Rolling population standard deviation (ddof=0) of the last n values."""
    _rolling(x, p, s, out, 1)


@indicator(
    "zscore",
    inputs=("x",),
    params=[Int("n", 20, low=2, doc="window in bars")],
    state_size=_window_state,
    warmup=lambda n: n - 1,
    reference=ref.zscore,
)
@njit(cache=True, nogil=True)
def zscore_kernel(x, p, s, out):
    """(x - rolling mean) / rolling population std over n values; 0 when the window is flat."""
    _rolling(x, p, s, out, 2)


@indicator(
    "bbands",
    inputs=("x",),
    params=[Int("n", 20, low=2), Float("k", 2.0, low=0.0, doc="band width in std")],
    outputs=("mid", "upper", "lower"),
    state_size=lambda n, k: _window_state(n),
    warmup=lambda n, k: n - 1,
    reference=ref.bbands,
)
@njit(cache=True, nogil=True)
def bbands_kernel(x, p, s, out):
    """Bollinger bands: SMA(n) +- k population std."""
    _rolling(x, p, s, out, 3)


@indicator(
    "slope",
    inputs=("x",),
    params=[Int("n", 20, low=2, doc="window in bars")],
    state_size=_window_state,
    warmup=lambda n: n - 1,
    reference=ref.slope,
)
@njit(cache=True, nogil=True)
def slope_kernel(x, p, s, out):
    """Least-squares slope per bar of the last n values against time."""
    _rolling(x, p, s, out, 4)


@njit(cache=True, nogil=True)
def _lagged(x, p, s, out, what):
    """Shared loop of returns (what 0), logret (1) and lag (2): the input n valid bars ago, from a ring buffer.

    State: [count, pos, buf[0..n-1]]; buf[pos] holds the value n bars back.
    """
    n = int(p[0])
    count = int(s[0])
    pos = int(s[1])
    xs = x[0]
    o = out[0]
    for t in range(xs.shape[0]):
        v = xs[t]
        if math.isnan(v):
            o[t] = np.nan
            continue
        if count < n:
            o[t] = np.nan
        elif what == 0:
            o[t] = v / s[2 + pos] - 1.0
        elif what == 1:
            o[t] = math.log(v / s[2 + pos])
        else:
            o[t] = s[2 + pos]
        s[2 + pos] = v
        pos = pos + 1 if pos + 1 < n else 0
        count += 1
    s[0] = count
    s[1] = pos


@indicator(
    "returns",
    inputs=("x",),
    params=[Int("n", 1, low=1, doc="horizon in bars")],
    state_size=lambda n: n + 2,
    warmup=lambda n: n,
    reference=ref.returns,
)
@njit(cache=True, nogil=True)
def returns_kernel(x, p, s, out):
    """Simple return over n bars: x[t] / x[t-n] - 1."""
    _lagged(x, p, s, out, 0)


@indicator(
    "logret",
    inputs=("x",),
    params=[Int("n", 1, low=1, doc="horizon in bars")],
    state_size=lambda n: n + 2,
    warmup=lambda n: n,
    reference=ref.logret,
)
@njit(cache=True, nogil=True)
def logret_kernel(x, p, s, out):
    """Log return over n bars: log(x[t] / x[t-n])."""
    _lagged(x, p, s, out, 1)


@indicator(
    "lag",
    inputs=("x",),
    params=[Int("k", 1, low=1, doc="bars back")],
    state_size=lambda k: k + 2,
    warmup=lambda k: k,
    reference=ref.lag,
)
@njit(cache=True, nogil=True)
def lag_kernel(x, p, s, out):
    """The input k (valid) bars ago."""
    _lagged(x, p, s, out, 2)


@indicator(
    "pctrank",
    inputs=("x",),
    params=[Int("n", 100, low=2, doc="window in bars")],
    state_size=lambda n: n + 2,
    warmup=lambda n: n - 1,
    reference=ref.pctrank,
)
@njit(cache=True, nogil=True)
def pctrank_kernel(x, p, s, out):
    """Fraction of the last n values (current included) that are <= the current value."""
    n = int(p[0])
    count = int(s[0])
    pos = int(s[1])
    xs = x[0]
    o = out[0]
    for t in range(xs.shape[0]):
        v = xs[t]
        if math.isnan(v):
            o[t] = np.nan
            continue
        s[2 + pos] = v
        pos = pos + 1 if pos + 1 < n else 0
        count += 1
        if count >= n:
            below = 0
            for j in range(n):
                if s[2 + j] <= v:
                    below += 1
            o[t] = below / n
        else:
            o[t] = np.nan
    s[0] = count
    s[1] = pos
