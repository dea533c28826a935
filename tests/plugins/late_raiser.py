"""A plugin that raises only late in the data (past the run-time check's 20,000-bar prefix)."""

from numba import njit

from services import strategy


@strategy(params=[], features=["close"])
@njit(cache=True, nogil=True)
def raises_late(f, p, regime):
    if f[0] > 160.0:
        raise ValueError("price too high")
    return 1.0
