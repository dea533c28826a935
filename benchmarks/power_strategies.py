"""Strategies of the power benchmark (bench_power.py): one planted edge of known strength, and coin flips.

The benchmark's bars carry a hint in their volume: at bar t, 2000 says "the next bar's return is up",
1000 says "down", right with a probability chosen so that trading on it has a known Sharpe ratio.
``planted_edge`` trades the hint (long or short); pure and causal: it reads bar t only.  The
trials without an edge are ``coin_flip`` of examples/noise.py.
"""

import math

from numba import njit

from services import Float, strategy


@strategy(params=[Float("cut", 1500.0, low=0.0, doc="volume above it means up")], features=["volume"])
@njit(cache=True, nogil=True)
def planted_edge(f, p, regime):
    """Long when the bar's hint says the next return is up, short when it says down."""
    v = f[0]
    if math.isnan(v):
        return math.nan
    return 1.0 if v > p[0] else -1.0
