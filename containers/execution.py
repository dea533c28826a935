"""The execution container's pricing: fill price with slippage, and commission.

An execution settings row (float64) holds, in ``containers.settings`` order:
fill (0 = next_open, 1 = close), commission rate, per share, fixed, minimum,
slippage bps, slippage fraction of range.

- Market orders fill at the next bar's open by default.  ``fill: close`` fills
  at the signal bar's close, which the signal has already seen: it is
  look-ahead-prone and only for comparison with engines that do the same.
- Slippage moves the fill price against the order by ``bps`` basis points plus
  ``range_fraction`` of the high-low range of the last completed bar (the bar
  before the fill for next_open, the signal bar for close).
- Commission per order = max(minimum, fixed + rate * traded value + per_share * shares).
"""

from __future__ import annotations

from numba import njit

X_FILL, X_RATE, X_PER_SHARE, X_FIXED, X_MINIMUM, X_BPS, X_RANGE = range(7)
N_EXEC = 7


@njit(cache=True, nogil=True, inline="always")
def slippage(price, ref_range, ex):
    """Adverse price move per share for an order at ``price``."""
    return price * ex[X_BPS] * 1e-4 + ex[X_RANGE] * ref_range


@njit(cache=True, nogil=True, inline="always")
def fill_price(price, qty, ref_range, ex):
    """Price an order of signed ``qty`` fills at: worse than ``price`` by the slippage."""
    s = slippage(price, ref_range, ex)
    return price + s if qty > 0.0 else price - s


@njit(cache=True, nogil=True, inline="always")
def commission(qty, price, ex):
    """Commission of one fill of ``qty`` shares (either sign) at ``price``."""
    c = ex[X_FIXED] + ex[X_RATE] * abs(qty) * price + ex[X_PER_SHARE] * abs(qty)
    return c if c > ex[X_MINIMUM] else ex[X_MINIMUM]


@njit(cache=True, nogil=True, inline="always")
def max_affordable(cash, price, ex):
    """Most shares ``cash`` can buy at ``price`` after commission (0 if none)."""
    unit = price * (1.0 + ex[X_RATE]) + ex[X_PER_SHARE]
    a = (cash - ex[X_FIXED]) / unit
    b = (cash - ex[X_MINIMUM]) / price
    q = a if a < b else b
    return q if q > 0.0 else 0.0
