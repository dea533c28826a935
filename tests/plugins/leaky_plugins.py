"""Planted look-ahead bugs, each subtle in its own way: `sweep check` and `sweep run` must catch every one.

Every kernel guards its reads (no out-of-bounds access): it peeks at later bars *inside the chunk it
is given*, which is exactly what a fused engine hands it (up to 65,536 bars at once).
"""

import math

from numba import njit

from services import Choice, Int, indicator, risk_validator, strategy


@indicator(params=[], state_size=lambda: 1, warmup=lambda: 0)
@njit(cache=True, nogil=True)
def next_bar(x, p, s, out):
    """The next bar's value when there is one: the plainest look-ahead."""
    n = x.shape[1]
    for t in range(n):
        out[0, t] = x[0, t + 1] if t + 1 < n else x[0, t]


@indicator(params=[], state_size=lambda: 1, warmup=lambda: 0)
@njit(cache=True, nogil=True)
def normalised(x, p, s, out):
    """Each value over the chunk's maximum: a whole-array normalisation."""
    n = x.shape[1]
    top = -math.inf
    for t in range(n):
        if x[0, t] > top:
            top = x[0, t]
    for t in range(n):
        out[0, t] = x[0, t] / top


@indicator(params=[Int("every", 500, low=2)], state_size=lambda every: 1, warmup=lambda every: 0)
@njit(cache=True, nogil=True)
def every_nth(x, p, s, out):
    """Peeks one bar ahead on every Nth bar of the series (the bar count is streaming state)."""
    every = int(p[0])
    n = x.shape[1]
    for t in range(n):
        k = int(s[0]) + t
        out[0, t] = x[0, t + 1] if (k % every == every - 1 and t + 1 < n) else x[0, t]
    s[0] += n


@indicator(params=[], state_size=lambda: 1, warmup=lambda: 0)
@njit(cache=True, nogil=True)
def above_300(x, p, s, out):
    """Peeks one bar ahead only while the price is above 300 (true for SPY all the time)."""
    n = x.shape[1]
    for t in range(n):
        out[0, t] = x[0, t + 1] if (x[0, t] > 300.0 and t + 1 < n) else x[0, t]


@indicator(params=[], state_size=lambda: 3, warmup=lambda: 0)
@njit(cache=True, nogil=True)
def after_pattern(x, p, s, out):
    """Peeks ahead right after three rises in a row (the last values are carried as state)."""
    n = x.shape[1]
    a, b, c = s[0], s[1], s[2]
    for t in range(n):
        a, b, c = b, c, x[0, t]
        rising = a > 0.0 and a < b and b < c
        out[0, t] = x[0, t + 2] if (rising and t + 2 < n) else c
    s[0], s[1], s[2] = a, b, c


@indicator(params=[Int("half", 5, low=1)], state_size=lambda half: 1, warmup=lambda half: 0)
@njit(cache=True, nogil=True)
def centred(x, p, s, out):
    """Mean of the bars from t - half to t + half that the chunk holds: a centred window."""
    h = int(p[0])
    n = x.shape[1]
    for t in range(n):
        total = 0.0
        m = 0
        for j in range(max(0, t - h), min(n, t + h + 1)):
            total += x[0, j]
            m += 1
        out[0, t] = total / m


@indicator(params=[], state_size=lambda: 1, warmup=lambda: 0)
@njit(cache=True, nogil=True)
def forgetful(x, p, s, out):
    """Causal but forgets its state between calls: a running maximum restarted at every chunk."""
    top = -math.inf
    for t in range(x.shape[1]):
        if x[0, t] > top:
            top = x[0, t]
        out[0, t] = top


@indicator(params=[], state_size=lambda: 1, warmup=lambda: 0)
@njit(cache=True, nogil=True)
def unguarded(x, p, s, out):
    """Reads the next bar without checking it exists: past the end of the chunk at its last bar."""
    for t in range(x.shape[1]):
        out[0, t] = x[0, t + 1]


@strategy(params=[], features=["close", "above_300(close)"])
@njit(cache=True, nogil=True)
def rides_above_300(f, p, regime):
    """Long when the (peeked) next close is higher: Sharpe in the dozens, and impossible."""
    return 1.0 if f[1] > f[0] else -1.0


@strategy(params=[Int("n", 20, low=2)], features=["sma(close,{n})"])
@njit(cache=True, nogil=True)
def reads_too_far(f, p, regime):
    """Reads a feature it never declared (f[2]): past its buffer."""
    return 1.0 if f[0] > f[2] else 0.0


@strategy(params=[], features=["close"])
@njit(cache=True, nogil=True)
def boolean_signal(f, p, regime):
    """Returns a bool instead of a number."""
    return f[0] > 100.0


LEAKS = ("next_bar", "normalised", "every_nth", "above_300", "after_pattern", "centred", "forgetful", "unguarded")


@strategy(params=[Choice("indicator", LEAKS, "next_bar")], features=lambda v: [f"{v['indicator']}(close)", "close"])
@njit(cache=True, nogil=True)
def follow(f, p, regime):
    """Long when the (leaky) indicator is above the close: whatever it peeks at becomes a profit."""
    return 1.0 if f[0] > f[1] else -1.0


@risk_validator(params=[])
@njit(cache=True, nogil=True)
def reads_limits(qty, price, state, limits):
    """Uses a limit it never declared (limits[0])."""
    return qty if qty < limits[0] else 0.0
