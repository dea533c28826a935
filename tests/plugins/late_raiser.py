"""A plugin that raises only late in the data (past the first 20,000 bars)."""

from numba import njit

from services import strategy


@strategy(params=[], features=["close"])
@njit(cache=True, nogil=True)
def raises_late(f, p, regime):
    if f[0] > 160.0:
        raise ValueError("price too high")
    return 1.0
