"""What the fused kernel takes, grouped by what it is (instead of 37 positional arguments).

One class each, shared by every generated kernel (a numba type per class, so
one compiled signature per service set).  Numba note: the kernel unpacks the
arrays into locals before its ``prange`` loop - writes through a tuple
attribute inside a parallel loop are lost.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Bars(NamedTuple):
    """One chunk of bars: the feature hub's block (rows x chunk columns) and where it sits."""

    block: np.ndarray  # rows 0-4 open, high, low, close, volume; then features; last row all NaN
    t0: int  # bar index of column 0
    prev_range: float  # high - low of the bar before the chunk (slippage of a fill at its first open)
    t_first: int  # first scored bar
    t_last: int  # last scored bar


class Tables(NamedTuple):
    """The plan's services and settings as arrays (built once per plan; see sweep.engine.build_tables)."""

    s_kind: np.ndarray  # strategy row -> which strategy function
    s_codes: np.ndarray  # strategy row -> parameter codes
    s_rows: np.ndarray  # strategy row -> block rows of its features
    s_mask: np.ndarray  # strategy row x classifier entry -> bit mask of active regimes
    c_kind: np.ndarray
    c_codes: np.ndarray
    c_rows: np.ndarray
    c_entry: np.ndarray  # classifier row -> its entry (for the mask)
    n_regimes: int
    r_codes: np.ndarray  # validator parameter rows, all validators stacked
    r_off: np.ndarray  # first row of each validator in r_codes
    portfolio: np.ndarray  # settings rows (containers.settings order)
    execution: np.ndarray


class Combos(NamedTuple):
    """Per combination of the shard: its row in each role's table."""

    strategy: np.ndarray
    classifier: np.ndarray
    risk: np.ndarray  # (n, validators)
    portfolio: np.ndarray
    execution: np.ndarray


class Books(NamedTuple):
    """State carried from chunk to chunk: the portfolio bank and where each combination got to."""

    bank: np.ndarray  # (fields, n) - containers.portfolio.Field
    regimes: np.ndarray  # (regime fields, regimes, n)
    start: np.ndarray  # first column to run in this call, per combination
    done: np.ndarray  # set by the kernel: the column each combination stopped before


class Records(NamedTuple):
    """What the kernel records on request: events, equity, block returns; and the stop flag it polls."""

    events: np.ndarray  # (n, cap, event columns)
    n_events: np.ndarray  # per combination
    cap: int
    record_events: bool
    equity: np.ndarray  # (n, chunk columns)
    record_equity: bool
    block_of_bar: np.ndarray  # block index of each column of the chunk (-1: not scored)
    block_returns: np.ndarray  # (n, blocks)
    record_blocks: bool
    stop: np.ndarray  # [0] != 0: return as soon as possible (Ctrl-C / SIGTERM)
