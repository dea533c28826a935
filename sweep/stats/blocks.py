"""Blocks of bars: the periods whose returns the overfitting statistics work on.

A block is one trading day (the UTC dates that have bars), N trading days,
one ISO week (Monday to Sunday), N weeks, or N bars.  ``auto`` is a day for
intraday bars and one bar for daily or slower bars.  Blocks cover the scored
bars of a window only; the first and last block may be partial.

Example:
    >>> spec = parse_block("2d")
    >>> day = 86_400 * 10**9
    >>> ts = np.array([0, 1, day, day + 1, 2 * day, 3 * day], dtype=np.int64)
    >>> block_ids(ts, spec, bars_per_day=2.0).tolist()
    [0, 0, 0, 0, 1, 1]
"""

from __future__ import annotations

import re

import attrs
import numpy as np

DAY_NS = 86_400 * 10**9
_PATTERN = re.compile(r"^\s*(\d+)\s*(d|day|days|w|week|weeks|b|bar|bars)\s*$")
_UNITS = {"d": "days", "day": "days", "days": "days", "w": "weeks", "week": "weeks", "weeks": "weeks"}


class BlockSpecError(ValueError):
    """A block setting that cannot be read."""


@attrs.frozen
class BlockSpec:
    """``kind`` is auto, days, weeks or bars; ``n`` how many of them make one block."""

    kind: str = attrs.field(default="auto", validator=attrs.validators.in_(("auto", "days", "weeks", "bars")))
    n: int = attrs.field(default=1, validator=attrs.validators.ge(1))

    @property
    def label(self) -> str:
        if self.kind == "auto":
            return "auto"
        return f"{self.n}{self.kind[0]}" if self.kind != "bars" else f"{self.n} bars"

    def resolved(self, bars_per_day: float) -> BlockSpec:
        """The concrete spec ``auto`` stands for at this bar frequency."""
        if self.kind != "auto":
            return self
        return BlockSpec("days", 1) if bars_per_day > 1.0 else BlockSpec("bars", 1)


def parse_block(value) -> BlockSpec:
    """Read ``1d``, ``5d``, ``1w``, ``390`` (bars), ``390 bars`` or ``auto``."""
    if value is None or value == "auto":
        return BlockSpec()
    if isinstance(value, bool):
        raise BlockSpecError("expected 1d, 1w, a number of bars or auto")
    if isinstance(value, int):
        if value < 1:
            raise BlockSpecError("a block is at least 1 bar")
        return BlockSpec("bars", value)
    m = _PATTERN.match(str(value).lower())
    if not m or int(m.group(1)) < 1:
        raise BlockSpecError("expected 1d, 1w, a number of bars (e.g. 390 or '390 bars') or auto")
    return BlockSpec(_UNITS.get(m.group(2), "bars"), int(m.group(1)))


def block_ids(timestamps: np.ndarray, spec: BlockSpec, bars_per_day: float) -> np.ndarray:
    """Block index (0, 1, ...) of each of ``timestamps`` (int64 ns UTC, increasing)."""
    ts = np.asarray(timestamps, dtype=np.int64)
    spec = spec.resolved(bars_per_day)
    if ts.size == 0:
        return np.zeros(0, dtype=np.int64)
    if spec.kind == "bars":
        return np.arange(ts.size, dtype=np.int64) // spec.n
    days = ts // DAY_NS
    # 1970-01-01 was a Thursday: (day + 3) // 7 counts Monday-based weeks
    key = days if spec.kind == "days" else (days + 3) // 7
    periods = np.concatenate([[0], np.cumsum(key[1:] != key[:-1])])  # 0, 1, ... per distinct day or week
    return (periods // spec.n).astype(np.int64)


@attrs.frozen(eq=False)
class BlockLayout:
    """The blocks of one window's scored bars ``t_first..t_last`` of a universe.

    ``of_bar`` maps every bar of the universe to its block (-1 outside the
    scored range), as the kernel reads it; ``starts`` are each block's first bar.
    """

    spec: BlockSpec
    t_first: int
    t_last: int
    of_bar: np.ndarray
    starts: np.ndarray

    @property
    def n(self) -> int:
        return int(self.starts.size)

    def bars(self) -> np.ndarray:
        """Scored bars per block."""
        return np.diff(np.r_[self.starts, self.t_last + 1])

    def hold_returns(self, close: np.ndarray) -> np.ndarray:
        """Buy-and-hold's return in each block: the close at its last bar / the close at the previous block's
        last bar - 1 (for the first block, the close at ``t_first``), aligned as the kernel accumulates a
        combination's block returns - a long position of all equity from the close of ``t_first`` has these.

        >>> ts = np.arange(6, dtype=np.int64)
        >>> lay = layout(ts, 1, 5, BlockSpec("bars", 2), 1.0)
        >>> np.round(lay.hold_returns(np.array([9.0, 10, 11, 12, 9, 18])), 4).tolist()  # bars 1-2, 3-4, 5
        [0.1, -0.1818, 1.0]
        """
        close = np.asarray(close, dtype=np.float64)
        ends = np.r_[self.starts[1:] - 1, self.t_last].astype(np.int64)
        before = np.r_[self.t_first, ends[:-1]].astype(np.int64)
        with np.errstate(divide="ignore", invalid="ignore"):
            return close[ends] / close[before] - 1.0


def layout(timestamps: np.ndarray, t_first: int, t_last: int, spec: BlockSpec, bars_per_day: float) -> BlockLayout:
    """Blocks of the scored bars ``t_first..t_last`` (inclusive) of a universe with these timestamps."""
    ids = block_ids(timestamps[t_first : t_last + 1], spec, bars_per_day)
    of_bar = np.full(timestamps.size, -1, dtype=np.int64)
    of_bar[t_first : t_last + 1] = ids
    starts = t_first + np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    return BlockLayout(spec.resolved(bars_per_day), t_first, t_last, of_bar, starts.astype(np.int64))
