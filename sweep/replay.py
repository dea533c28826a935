"""Signal replay: the bar loop fed by stored signals instead of features and strategy calls.

``SignalSource`` holds one universe's stored changes of every signal pair of
a plan.  ``engine.simulate(..., source=...)`` binds it to a shard's
combinations (``bind``): the block then holds OHLCV, one signal row per pair
the shard uses, one regime row per pair (when the plan has classifiers) and a
zero row; the services module generated for a replay reads a combination's
signal and regime from its pair's rows, and everything else - fills, risk
validators, metrics, regime books, events - is the bar loop of a backtest, so
a replay of stored signals gives the backtest's results bit for bit.
"""

from __future__ import annotations

import attrs
import numpy as np

from containers.data import Universe
from containers.feature_hub import chunk_for
from containers.kernel import REPLAY, load_kernel
from containers.kernelio import Tables
from containers.signalsteps import fill_steps
from services import limits

from .engine import KernelTables, settings_tables, validators_of
from .expander import Plan
from .signals import Pairs


@attrs.define(eq=False)
class SignalSource:
    """Stored changes of all of a plan's signal pairs on one universe (see the module docs)."""

    plan: Plan
    pairs: Pairs
    bars: np.ndarray  # every pair's change bars, pair after pair
    values: np.ndarray  # (changes, 2): signal, regime
    offsets: np.ndarray  # (pairs + 1)

    def bind(self, s: np.ndarray, c: np.ndarray) -> BoundSignals:
        """Block layout and tables for a shard whose combinations have strategy rows ``s``, classifier rows ``c``."""
        pair = self.pairs.of(self.plan, s, c)
        used, index = np.unique(pair, return_inverse=True)
        # the used pairs' changes, contiguous, with their own offsets
        lo, hi = self.offsets[used], self.offsets[used + 1]
        take = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi)]) if used.size else np.zeros(0, np.int64)
        offsets = np.zeros(used.size + 1, dtype=np.int64)
        np.cumsum(hi - lo, out=offsets[1:])
        has_c = bool(self.plan.classifiers)
        n_p = int(used.size)
        rows = 5 + n_p * (2 if has_c else 1) + 1  # OHLCV, signals, regimes, a zero row
        zero_row = rows - 1
        p_idx = np.arange(n_p, dtype=np.int64)
        tables = Tables(
            np.zeros(n_p, dtype=np.int64),
            np.zeros((n_p, 1)),
            (5 + p_idx).reshape(-1, 1),
            np.full((n_p, 1), -1, dtype=np.int64),  # every regime allowed: stored signals are gated already
            np.zeros(n_p, dtype=np.int64),
            np.zeros((n_p, 1)),
            ((5 + n_p + p_idx) if has_c else np.full(n_p, zero_row, dtype=np.int64)).reshape(-1, 1),
            np.zeros(n_p, dtype=np.int64),
            int(max((len(sp.entry.spec.regimes) for sp in self.plan.classifiers), default=1)),
            *settings_tables(self.plan),
        )
        kernel = load_kernel(REPLAY, [True] if has_c else [], validators_of(self.plan), 1, 1)
        names = tuple(sp.entry.spec.regimes for sp in self.plan.classifiers) or (("all",),)
        return BoundSignals(
            KernelTables(kernel, tables, names),
            np.ascontiguousarray(index.astype(np.int64).ravel()),
            np.ascontiguousarray(self.bars[take]),
            np.ascontiguousarray(self.values[take]),
            offsets,
            rows,
            has_c,
            chunk_for(rows, self.plan.config.chunk_size, limits.HUB_BUDGET_BYTES),
        )


@attrs.define(eq=False)
class BoundSignals:
    """A shard's replay: its tables, each combination's pair row, and the block it fills chunk by chunk."""

    tables: KernelTables
    index: np.ndarray  # pair (block row offset) of each combination
    bars: np.ndarray
    values: np.ndarray
    offsets: np.ndarray
    rows: int
    has_classifiers: bool
    chunk: int  # bars per block
    cursor: np.ndarray = attrs.field(init=False)
    buffer: np.ndarray | None = attrs.field(init=False, default=None)

    def __attrs_post_init__(self) -> None:
        self.cursor = self.offsets[:-1].copy()

    def block(self, u: Universe, t0: int, t1: int) -> np.ndarray:
        """Rows of bars ``t0`` .. ``t1 - 1`` (chunks come in order, from bar 0)."""
        n = t1 - t0
        if self.buffer is None or self.buffer.shape[1] != n:
            self.buffer = np.zeros((self.rows, n))
        B = self.buffer
        if t0 == 0:
            self.cursor[:] = self.offsets[:-1]
        B[0], B[1], B[2], B[3], B[4] = u.open[t0:t1], u.high[t0:t1], u.low[t0:t1], u.close[t0:t1], u.volume[t0:t1]
        fill_steps(self.bars, self.values, self.offsets, self.cursor, t0, B, 5, self.has_classifiers)
        B[self.rows - 1] = 0.0
        return B
