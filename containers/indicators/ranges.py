"""Range and oscillator indicators: donchian, atr, rsi, adx.

Same kernel contract as ``basic.py``: ``kernel(x, p, s, out)``, NaN inputs
skipped, state carried between chunks.  Wilder smoothing is seeded with the
simple average of the first n values, as in Wilder (1978).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from services.params import Int
from services.registry import indicator

from . import reference as ref


@indicator(
    "donchian",
    inputs=("high", "low"),
    params=[Int("n", 20, low=1, doc="window in bars (current bar included)")],
    outputs=("upper", "lower", "mid"),
    state_size=lambda n: 2 * n + 6,
    warmup=lambda n: n - 1,
    reference=ref.donchian,
)
@njit(cache=True, nogil=True)
def donchian_kernel(x, p, s, out):
    """Highest high and lowest low of the last n bars, and their midpoint."""
    n = int(p[0])
    count = int(s[0])
    pos = int(s[1])
    hi = s[2]
    hi_at = int(s[3])
    lo = s[4]
    lo_at = int(s[5])
    hb = 6
    lb = 6 + n
    for t in range(x.shape[1]):
        h = x[0, t]
        l = x[1, t]
        if math.isnan(h) or math.isnan(l):
            out[0, t] = np.nan
            out[1, t] = np.nan
            out[2, t] = np.nan
            continue
        s[hb + pos] = h
        s[lb + pos] = l
        # Track the extreme and where it sits; rescan only when the slot holding
        # it is overwritten (amortised O(1) for typical prices).
        if count == 0 or h >= hi:
            hi = h
            hi_at = pos
        elif hi_at == pos:
            hi = s[hb]
            hi_at = 0
            for j in range(1, n):
                if s[hb + j] >= hi:
                    hi = s[hb + j]
                    hi_at = j
        if count == 0 or l <= lo:
            lo = l
            lo_at = pos
        elif lo_at == pos:
            lo = s[lb]
            lo_at = 0
            for j in range(1, n):
                if s[lb + j] <= lo:
                    lo = s[lb + j]
                    lo_at = j
        pos = pos + 1 if pos + 1 < n else 0
        count += 1
        if count >= n:
            out[0, t] = hi
            out[1, t] = lo
            out[2, t] = 0.5 * (hi + lo)
        else:
            out[0, t] = np.nan
            out[1, t] = np.nan
            out[2, t] = np.nan
    s[0] = count
    s[1] = pos
    s[2] = hi
    s[3] = hi_at
    s[4] = lo
    s[5] = lo_at


@njit(cache=True, nogil=True, inline="always")
def _true_range(h, l, prev_close, have_prev):
    tr = h - l
    if have_prev:
        a = abs(h - prev_close)
        b = abs(l - prev_close)
        if a > tr:
            tr = a
        if b > tr:
            tr = b
    return tr


@indicator(
    "atr",
    inputs=("high", "low", "close"),
    params=[Int("n", 14, low=1)],
    state_size=lambda n: 4,
    warmup=lambda n: n - 1,
    reference=ref.atr,
)
@njit(cache=True, nogil=True)
def atr_kernel(x, p, s, out):
    """Average true range, Wilder-smoothed; the first bar's true range is high - low."""
    n = int(p[0])
    count = s[0]
    prev_close = s[1]
    total = s[2]
    a = s[3]
    o = out[0]
    for t in range(x.shape[1]):
        h = x[0, t]
        l = x[1, t]
        c = x[2, t]
        if math.isnan(h) or math.isnan(l) or math.isnan(c):
            o[t] = np.nan
            continue
        tr = _true_range(h, l, prev_close, count > 0)
        count += 1.0
        if count < n:
            total += tr
            o[t] = np.nan
        elif count == n:
            total += tr
            a = total / n
            o[t] = a
        else:
            a = (a * (n - 1.0) + tr) / n
            o[t] = a
        prev_close = c
    s[0] = count
    s[1] = prev_close
    s[2] = total
    s[3] = a


@indicator(
    "rsi",
    inputs=("x",),
    params=[Int("n", 14, low=1)],
    state_size=lambda n: 6,
    warmup=lambda n: n,
    reference=ref.rsi,
)
@njit(cache=True, nogil=True)
def rsi_kernel(x, p, s, out):
    """Wilder's RSI in [0, 100]; 50 when the window has no movement."""
    n = int(p[0])
    count = s[0]
    prev = s[1]
    sum_g = s[2]
    sum_l = s[3]
    avg_g = s[4]
    avg_l = s[5]
    xs = x[0]
    o = out[0]
    for t in range(xs.shape[0]):
        v = xs[t]
        if math.isnan(v):
            o[t] = np.nan
            continue
        if count == 0:
            count = 1.0
            prev = v
            o[t] = np.nan
            continue
        d = v - prev
        prev = v
        g = d if d > 0 else 0.0
        l = -d if d < 0 else 0.0
        m = count  # this is change number m (1-based)
        count += 1.0
        if m < n:
            sum_g += g
            sum_l += l
            o[t] = np.nan
            continue
        if m == n:
            avg_g = (sum_g + g) / n
            avg_l = (sum_l + l) / n
        else:
            avg_g = (avg_g * (n - 1.0) + g) / n
            avg_l = (avg_l * (n - 1.0) + l) / n
        total = avg_g + avg_l
        o[t] = 100.0 * avg_g / total if total > 0.0 else 50.0
    s[0] = count
    s[1] = prev
    s[2] = sum_g
    s[3] = sum_l
    s[4] = avg_g
    s[5] = avg_l


@indicator(
    "adx",
    inputs=("high", "low", "close"),
    params=[Int("n", 14, low=1)],
    outputs=("adx", "plus_di", "minus_di"),
    state_size=lambda n: 14,
    warmup=lambda n: 2 * n - 1,
    reference=ref.adx,
)
@njit(cache=True, nogil=True)
def adx_kernel(x, p, s, out):
    """Wilder's ADX with +DI and -DI (all in [0, 100])."""
    n = int(p[0])
    count = s[0]
    ph = s[1]
    pl = s[2]
    pc = s[3]
    sum_tr = s[4]
    sum_p = s[5]
    sum_m = s[6]
    s_tr = s[7]
    s_p = s[8]
    s_m = s[9]
    dx_sum = s[10]
    adx = s[11]
    for t in range(x.shape[1]):
        h = x[0, t]
        l = x[1, t]
        c = x[2, t]
        out[0, t] = np.nan
        out[1, t] = np.nan
        out[2, t] = np.nan
        if math.isnan(h) or math.isnan(l) or math.isnan(c):
            continue
        if count == 0:
            count = 1.0
            ph = h
            pl = l
            pc = c
            continue
        up = h - ph
        dn = pl - l
        pdm = up if (up > dn and up > 0.0) else 0.0
        mdm = dn if (dn > up and dn > 0.0) else 0.0
        tr = _true_range(h, l, pc, True)
        ph = h
        pl = l
        pc = c
        m = count  # directional movement number m (1-based)
        count += 1.0
        if m < n:
            sum_tr += tr
            sum_p += pdm
            sum_m += mdm
            continue
        if m == n:
            s_tr = sum_tr + tr
            s_p = sum_p + pdm
            s_m = sum_m + mdm
        else:
            s_tr = s_tr - s_tr / n + tr
            s_p = s_p - s_p / n + pdm
            s_m = s_m - s_m / n + mdm
        pdi = 100.0 * s_p / s_tr if s_tr > 0.0 else 0.0
        mdi = 100.0 * s_m / s_tr if s_tr > 0.0 else 0.0
        di_sum = pdi + mdi
        dx = 100.0 * abs(pdi - mdi) / di_sum if di_sum > 0.0 else 0.0
        out[1, t] = pdi
        out[2, t] = mdi
        j = m - n + 1.0  # DX number j (1-based)
        if j < n:
            dx_sum += dx
            continue
        if j == n:
            adx = (dx_sum + dx) / n
        else:
            adx = (adx * (n - 1.0) + dx) / n
        out[0, t] = adx
    s[0] = count
    s[1] = ph
    s[2] = pl
    s[3] = pc
    s[4] = sum_tr
    s[5] = sum_p
    s[6] = sum_m
    s[7] = s_tr
    s[8] = s_p
    s[9] = s_m
    s[10] = dx_sum
    s[11] = adx
