"""Your own services, registered with a decorator and named in YAML (see plugin.yaml)."""

import math

import numpy as np
from numba import njit

from services import Float, Int, indicator, strategy


@indicator(params=[Int("n", 20, low=2)], state_size=lambda n: n + 2, warmup=lambda n: n)
@njit(cache=True, nogil=True)
def up_fraction(x, p, s, out):
    """Share of the last n bar-to-bar changes that were up (streaming: a ring buffer of +1/0)."""
    n = int(p[0])
    count = s[0]  # changes seen so far
    last = s[1]  # previous value
    for t in range(x.shape[1]):
        v = x[0, t]
        if math.isnan(v):
            out[0, t] = np.nan
            continue
        if count > 0 or last != 0.0:
            slot = 2 + int(count) % n
            s[slot] = 1.0 if v > last else 0.0
            count += 1.0
        last = v
        if count >= n:
            total = 0.0
            for k in range(n):
                total += s[2 + k]
            out[0, t] = total / n
        else:
            out[0, t] = np.nan
    s[0] = count
    s[1] = last


@strategy(
    params=[Int("n", 20, low=2, space=(10, 20, 50)), Float("edge", 0.1, low=0.0, high=0.5, space=(0.05, 0.1))],
    features=["up_fraction(close,{n})"],
)
@njit(cache=True, nogil=True)
def breadth(f, p, regime):
    """Long when clearly more bars went up than down, short when clearly fewer; hold in between."""
    u = f[0]
    if u > 0.5 + p[1]:
        return 1.0
    if u < 0.5 - p[1]:
        return -1.0
    return np.nan
