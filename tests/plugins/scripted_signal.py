"""A strategy whose signals are written in the data, for the accounting tests (tests/test_accounting.py).

The bar's volume carries the signal: volume = 1000 + 100 x signal for a signal in [-1, 1]; a volume
below 500 means NaN (keep the current target).
"""

import math

from numba import njit

from services import strategy


@strategy(params=[], features=["volume"])
@njit(cache=True, nogil=True)
def scripted_signal(f, p, regime):
    """The signal the bar's volume encodes (1000 + 100 x signal; below 500: NaN)."""
    v = f[0]
    if math.isnan(v) or v < 500.0:
        return math.nan
    s = (v - 1000.0) / 100.0
    if s > 1.0:
        return 1.0
    if s < -1.0:
        return -1.0
    return s
