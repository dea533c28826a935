"""Sweepable settings of the portfolio bank and the execution container.

Any of these may be a grid in YAML (``portfolio: {position_size: [0.5, 1.0]}``,
``execution: {commission: {rate: [0, 0.001]}}``); grids here multiply the
combinations and are what signal replay sweeps cheaply.  Dotted names are
nested YAML keys.
"""

from __future__ import annotations

from services.params import Bool, Choice, Float

PORTFOLIO_PARAMS = (
    Float("initial_capital", 100_000.0, low=1.0, doc="starting cash"),
    Float(
        "position_size",
        1.0,
        low=1e-6,
        high=100.0,
        doc="target exposure per unit of signal, as a fraction of equity (1.0 = all-in)",
    ),
    Bool("allow_short", False, doc="negative signals open shorts (otherwise they mean flat)"),
    Bool("fractional_shares", True, doc="trade fractional shares (otherwise whole shares, rounded toward zero)"),
)

EXECUTION_PARAMS = (
    Choice(
        "fill",
        ("next_open", "close"),
        "next_open",
        doc="next_open: market order filled at the next bar's open; close: at the signal bar's close "
        "(look-ahead-prone: the signal already saw that close)",
    ),
    Float("commission.rate", 0.0, low=0.0, high=0.5, doc="fraction of traded value"),
    Float("commission.per_share", 0.0, low=0.0, doc="per share traded"),
    Float("commission.fixed", 0.0, low=0.0, doc="per order"),
    Float("commission.minimum", 0.0, low=0.0, doc="minimum commission per order"),
    Float("slippage.bps", 0.0, low=0.0, high=1000.0, doc="adverse price move in basis points"),
    Float(
        "slippage.range_fraction",
        0.0,
        low=0.0,
        high=1.0,
        doc="adverse price move as a fraction of the previous bar's high-low range",
    ),
)

# Shorthands: a scalar (or grid) given for a group means this key of the group.
SHORTHANDS = {"commission": "commission.rate", "slippage": "slippage.bps"}
