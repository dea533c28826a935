"""A user plugin: one indicator and one strategy, registered from YAML in the tests."""

import math

import numpy as np
from numba import njit

from services import Float, Int, indicator, strategy


@indicator(params=[Int("n", 10, low=1)], state_size=lambda n: 3, warmup=lambda n: n - 1)
@njit(cache=True, nogil=True)
def user_smooth_change(x, p, s, out):
    """Smoothed one-bar change: an EMA (alpha 1/n) of close-to-close differences, valid after n bars."""
    n = p[0]
    xs = x[0]
    o = out[0]
    count = s[0]  # state: bars seen, last value, smoothed change
    last = s[1]
    sm = s[2]
    for t in range(xs.shape[0]):
        v = xs[t]
        if math.isnan(v):
            o[t] = np.nan
            continue
        if count > 0.0:
            sm += (v - last - sm) / n
        last = v
        count += 1.0
        o[t] = sm if count >= n else np.nan
    s[0] = count
    s[1] = last
    s[2] = sm


@strategy(
    params=[Int("n", 10, low=2, space=(5, 10, 20)), Float("band", 0.0, low=0.0, space=(0.0, 0.05))],
    features=["user_smooth_change(close,{n})"],
)
@njit(cache=True, nogil=True)
def slope_follow(f, p, regime):
    """Long when the smoothed change is above +band, short below -band, flat otherwise."""
    d = f[0]
    if d > p[1]:
        return 1.0
    if d < -p[1]:
        return -1.0
    return 0.0
