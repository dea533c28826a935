"""Peeks that a short or prefix-only look-ahead check misses (issue 20): late, on long inputs, fixed at import.

- ``late_peek`` looks one bar ahead only after bar 30,000 of the series (the bar count is streaming state);
- ``long_input_peek`` takes a centred 11-bar mean, reaching 5 bars ahead, only when it is handed more than
  32,768 bars at once (a "fast path" for long inputs);
- ``known_future`` reads the next close from an array loaded when the module is imported (the file named by
  ``SWEEP_TEST_FUTURE_CLOSES``): one pass and one bar at a time agree, so no streaming test can see it.

``follow_peek`` goes long when its indicator is above the close, short when below.
"""

import math
import os

import numpy as np
from numba import njit

from services import Choice, indicator, strategy

_PATH = os.environ.get("SWEEP_TEST_FUTURE_CLOSES", "")
FUTURE = np.loadtxt(_PATH, ndmin=1) if _PATH else np.zeros(1)


@indicator(params=[], state_size=lambda: 1, warmup=lambda: 0)
@njit(cache=True, nogil=True)
def late_peek(x, p, s, out):
    n = x.shape[1]
    for t in range(n):
        out[0, t] = x[0, t + 1] if (s[0] + t >= 30_000 and t + 1 < n) else x[0, t]
    s[0] += n


@indicator(params=[], state_size=lambda: 1, warmup=lambda: 0)
@njit(cache=True, nogil=True)
def long_input_peek(x, p, s, out):
    n = x.shape[1]
    for t in range(n):
        if n > 32_768:
            a, b = max(0, t - 5), min(n, t + 6)
            total = 0.0
            for k in range(a, b):
                total += x[0, k]
            out[0, t] = total / (b - a)
        else:
            out[0, t] = x[0, t]


@indicator(params=[], state_size=lambda: 1, warmup=lambda: 0)
@njit(cache=True, nogil=True)
def known_future(x, p, s, out):
    for t in range(x.shape[1]):
        k = int(s[0]) + t + 1
        out[0, t] = FUTURE[k] if k < FUTURE.shape[0] else x[0, t]
    s[0] += x.shape[1]


@strategy(
    params=[Choice("indicator", ("late_peek", "long_input_peek", "known_future"), "late_peek")],
    features=lambda v: [f"{v['indicator']}(close)", "close"],
)
@njit(cache=True, nogil=True)
def follow_peek(f, p, regime):
    if math.isnan(f[0]) or math.isnan(f[1]) or f[0] == f[1]:
        return math.nan
    return 1.0 if f[0] > f[1] else -1.0
