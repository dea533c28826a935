"""Built-in risk validators: ``(proposed qty, price, state row, limits) -> approved qty``.

A validator may pass the order, clip it, block it (return 0) or, for stops,
replace it with the order that closes the position.  Validators run in the
order the config lists them, each seeing the previous one's output.  The
state row layout is in ``services.state``.  Stops are checked against the
fill reference price (the next bar's open by default, the close with ``fill:
close``), never intrabar; a trailing stop measures from the best close since
entry (``services.state``), not from the entry fill.
"""

from __future__ import annotations

from numba import njit

from .params import Float
from .registry import risk_validator
from .state import AVG_PRICE, EQUITY, HIGH_SINCE_ENTRY, LOW_SINCE_ENTRY, PEAK_EQUITY, POSITION


@njit(cache=True, nogil=True, inline="always")
def _clip_exposure(qty, price, pos, equity, limit):
    """Clip an order so |position| * price <= limit * equity; reductions always pass."""
    new = pos + qty
    if equity <= 0.0:
        # no equity: only allow orders that bring the position toward zero
        return qty if abs(new) < abs(pos) and new * pos >= 0.0 else (-pos if new * pos < 0.0 else 0.0)
    cap = limit * equity / price
    if abs(new) <= cap:
        return qty
    if new * pos >= 0.0 and abs(new) <= abs(pos):
        return qty  # reducing an existing (over-limit) position is always allowed
    target = cap if new > 0.0 else -cap
    approved = target - pos
    if approved * qty < 0.0:
        return 0.0  # clipping would reverse the order: block it instead
    return approved


@risk_validator(params=[Float("limit", 1.0, low=0.0, space=(0.25, 0.5, 1.0), doc="max position value / equity")])
@njit(cache=True, nogil=True)
def max_position(qty, price, state, limits):
    """Cap the position's value at ``limit`` times equity."""
    return _clip_exposure(qty, price, state[POSITION], state[EQUITY], limits[0])


@risk_validator(params=[Float("limit", 2.0, low=0.0, space=(1.0, 2.0), doc="max gross exposure / equity")])
@njit(cache=True, nogil=True)
def max_leverage(qty, price, state, limits):
    """Cap gross exposure at ``limit`` times equity (one symbol per universe: its position value)."""
    return _clip_exposure(qty, price, state[POSITION], state[EQUITY], limits[0])


@risk_validator(params=[Float("limit", 0.2, low=0.0, high=1.0, space=(0.1, 0.2, 0.3), doc="drawdown from peak")])
@njit(cache=True, nogil=True)
def max_drawdown(qty, price, state, limits):
    """After equity falls ``limit`` below its peak, block orders that add exposure (exits still pass)."""
    peak = state[PEAK_EQUITY]
    if peak <= 0.0 or 1.0 - state[EQUITY] / peak < limits[0]:
        return qty
    pos = state[POSITION]
    new = pos + qty
    if new * pos < 0.0:
        return -pos  # a reversal becomes a plain exit
    if abs(new) > abs(pos):
        return 0.0
    return qty


@risk_validator(params=[Float("pct", 0.05, low=0.0, high=1.0, space=(0.02, 0.05, 0.1), doc="loss from entry")])
@njit(cache=True, nogil=True)
def stop_loss(qty, price, state, limits):
    """Close the position once price is ``pct`` against the average entry price."""
    pos = state[POSITION]
    avg = state[AVG_PRICE]
    if pos > 0.0 and price <= avg * (1.0 - limits[0]):
        return -pos
    if pos < 0.0 and price >= avg * (1.0 + limits[0]):
        return -pos
    return qty


@risk_validator(params=[Float("pct", 0.1, low=0.0, space=(0.05, 0.1, 0.2), doc="gain from entry")])
@njit(cache=True, nogil=True)
def take_profit(qty, price, state, limits):
    """Close the position once price is ``pct`` in favour of the average entry price."""
    pos = state[POSITION]
    avg = state[AVG_PRICE]
    if pos > 0.0 and price >= avg * (1.0 + limits[0]):
        return -pos
    if pos < 0.0 and price <= avg * (1.0 - limits[0]):
        return -pos
    return qty


@risk_validator(params=[Float("pct", 0.05, low=0.0, high=1.0, space=(0.02, 0.05, 0.1), doc="give-back from best")])
@njit(cache=True, nogil=True)
def trailing_stop(qty, price, state, limits):
    """Close the position once price gives back ``pct`` from its best close since entry.

    Best: the highest close for a long, the lowest for a short, from the entry bar's close on.
    """
    pos = state[POSITION]
    if pos > 0.0 and price <= state[HIGH_SINCE_ENTRY] * (1.0 - limits[0]):
        return -pos
    if pos < 0.0 and price >= state[LOW_SINCE_ENTRY] * (1.0 + limits[0]):
        return -pos
    return qty
