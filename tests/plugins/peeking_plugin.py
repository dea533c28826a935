"""Deliberately broken plugins: they look into the future. `sweep check` must catch them."""

from numba import njit

from services import Int, indicator, strategy


@indicator(params=[Int("k", 1, low=1)], state_size=lambda k: 1, warmup=lambda k: 0)
@njit(cache=True, nogil=True)
def peek_ahead(x, p, s, out):
    """Returns the value k bars AHEAD inside the chunk: a look-ahead bug."""
    k = int(p[0])
    xs = x[0]
    n = xs.shape[0]
    for t in range(n):
        out[0, t] = xs[t + k] if t + k < n else xs[n - 1]


@strategy(params=[], features=["peek_ahead(close,1)", "close"])
@njit(cache=True, nogil=True)
def clairvoyant(f, p, regime):
    """Buys when tomorrow's close is higher: profitable and impossible."""
    return 1.0 if f[0] > f[1] else -1.0
