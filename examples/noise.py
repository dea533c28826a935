"""Strategies with no edge at all, to see what trying many things gets you by chance (see luck.yaml)."""

import math

from numba import njit

from services import Float, Int, strategy


@strategy(
    params=[
        Int("seed", 0, low=0, doc="which random long/short map"),
        Float("bucket", 0.002, low=1e-6, doc="width of a price bucket, in log price"),
    ],
    features=["close"],
)
@njit(cache=True, nogil=True)
def coin_flip(f, p, regime):
    """Long or short at random: a seeded coin flip for each bucket of log price (pure, causal, edge-free)."""
    c = f[0]
    if math.isnan(c) or c <= 0.0:
        return math.nan
    k = math.floor(math.log(c) / p[1])
    x = (int(k) * 0x9E3779B97F4A7C15 + int(p[0]) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x ^= x >> 31
    x = (x * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    x ^= x >> 29
    return 1.0 if x & 1 else -1.0
