"""Where a run meets the signal store: the signal generation phase, and stored signals for a replay.

``workflow: signal_generation`` runs one phase (``signals``): every signal
pair of the grid over every bar, stored in the shared store unless it is
there already (same pair, same data, same code); its ``signals.parquet``
lists the pairs with where they are and whether they were reused.

A replay (``workflow: signal_replay``, or ``sweep run --replay DIR``) feeds
the bar loop with stored signals (``sweep.replay``); pairs not stored yet
are generated first, or refused with ``--replay-only``, naming what differs.
"""

from __future__ import annotations

from pathlib import Path

import attrs
import numpy as np
import polars as pl

from containers.data import Universe

from . import stages
from .replay import SignalSource
from .signal_store import Context, SignalStore, StoreError, context_key, open_store
from .signals import Pairs, context_info, generate, plan_pairs

DEFAULT_FOLDER = ".signals"  # under the results root (a run name cannot start with a dot)


@attrs.frozen
class SignalSettings:
    """How a run uses the store: where it is, whether the run replays, whether it may generate."""

    root: Path
    replay: bool = False
    replay_only: bool = False


def store_root(cfg, results_root: Path, replay_dir=None) -> Path:
    """The store folder: ``--replay DIR``, else the config's ``signals_dir`` (relative to the config), else
    ``<results root>/.signals``."""
    if replay_dir:
        return Path(replay_dir)
    if cfg.signals_dir:
        p = Path(cfg.signals_dir)
        return p if p.is_absolute() else Path(cfg.base_dir) / p
    return Path(results_root) / DEFAULT_FOLDER


class SignalBook:
    """The run's view of the store: pairs of the plan, contexts opened once, sources read once."""

    def __init__(self, settings: SignalSettings, plan) -> None:
        self.settings = settings
        self.plan = plan
        self._store: SignalStore | None = None
        self._pairs: Pairs | None = None
        self._sources: dict[str, SignalSource] = {}

    @property
    def store(self) -> SignalStore:
        if self._store is None:
            self._store = open_store(self.settings.root, create=not self.settings.replay_only)
        return self._store

    @property
    def pairs(self) -> Pairs:
        if self._pairs is None:
            self._pairs = plan_pairs(self.plan)
        return self._pairs

    def ensure(self, u: Universe, features, allow_generate: bool = True) -> tuple[Context, int, int]:
        """Store every pair of the plan for ``u``; returns (context, pairs generated, pairs reused)."""
        pairs = self.pairs
        ctx = self.store.context(context_info(u), create=allow_generate)
        have = ctx.stored(pairs.hashes, pairs.versions) if ctx.exists else np.zeros(len(pairs), dtype=bool)
        todo = np.flatnonzero(~have)
        if todo.size and not allow_generate:
            raise StoreError(
                self._missing(u, ctx, todo),
                "run without --replay-only (missing pairs are generated "
                "first), or run workflow: signal_generation on this data and code",
            )
        if todo.size:
            with stages.stage("signal generation"):
                generate(self.plan, u, ctx, pairs, todo, features)
            ctx = self.store.context(context_info(u))
        return ctx, int(todo.size), int(len(pairs) - todo.size)

    def source(self, u: Universe, features) -> SignalSource:
        """The stored signals of every pair of the plan on ``u`` (generated first where missing, if allowed)."""
        key = context_key(u.fingerprint(), u.bars_per_day)
        if key not in self._sources:
            ctx, _, _ = self.ensure(u, features, allow_generate=not self.settings.replay_only)
            with stages.stage("signal store (read)"):
                bars, values, offsets = ctx.read(self.pairs.hashes, self.pairs.versions)
            self._sources[key] = SignalSource(self.plan, self.pairs, bars, values, offsets)
        return self._sources[key]

    def _missing(self, u: Universe, ctx: Context, todo: np.ndarray) -> str:
        """Why pairs are not there: never stored, stored on other data, or made by other code."""
        pairs = self.pairs
        want = {int(h) for h in pairs.hashes[todo]}
        other_code = 0
        if ctx.exists and ctx.index().height:
            stored = set(ctx.index()["pair"].to_list())
            other_code = len(want & stored)
        other_data = []
        for c in self.store.contexts():
            if c.key == ctx.key or not c.index().height:
                continue
            if want & set(c.index()["pair"].to_list()):
                i = c.info
                other_data.append(
                    f"{i.get('symbol')} {i.get('first')}..{i.get('last')} ({i.get('bars')} bars, "
                    f"{i.get('bars_per_day'):g} bars/day)"
                )
        parts = [
            f"{todo.size:,} of {len(pairs):,} signal pairs are not in {self.settings.root} for "
            f"{u.symbol} ({u.n:,} bars {context_info(u)['first']}..{context_info(u)['last']}, "
            f"{u.bars_per_day:g} bars/day)"
        ]
        if other_code:
            parts.append(
                f"{other_code:,} of them are stored but were made by other code (a changed strategy, "
                "classifier or indicator)"
            )
        if other_data:
            parts.append("some are stored for other data: " + "; ".join(other_data[:3]))
        never = todo.size - other_code
        if never > 0 and not other_data:
            k = int(todo[0])
            parts.append(
                f"{never:,} were never generated, e.g. {self.plan.strategies and _describe(self.plan, pairs, k)}"
            )
        return "; ".join(parts)


def _describe(plan, pairs: Pairs, k: int) -> str:
    from .signals import index_frame

    row = index_frame(plan, pairs, np.array([k]), np.array([0])).drop("pair", "pair_hash", "code_version", "changes")
    return ", ".join(f"{c}={v}" for c, v in row.row(0, named=True).items() if v not in (None, ""))


def signals_phase(state, phase, book: SignalBook) -> tuple[dict, dict]:
    """Run a signal generation phase: (frames with ``signals``, stats)."""
    frames: dict = {"signals": [], "metrics": None}
    stats = {"signals": [], "windows": []}
    for u0 in state.universes:
        mine = state.schedule.phase(u0, phase.name)
        for w in mine.windows:
            u = state.window_universe(u0, phase, w)
            stats["windows"].append(state.window_info(u, w))
            ctx, made, reused = book.ensure(u, state.feature_block(u))
            state.progress.update(len(book.pairs) * u.n)
            idx = ctx.index().unique(["pair", "code_version"], keep="first")
            pairs = book.pairs
            mine_rows = pl.DataFrame({"pair": pl.Series(pairs.hashes), "code_version": pairs.versions.tolist()})
            rows = mine_rows.join(idx, on=["pair", "code_version"], how="left").with_columns(
                pl.lit(u.symbol).alias("symbol"), pl.lit(ctx.key).alias("context")
            )
            frames["signals"].append(rows)
            stats["signals"].append(
                {
                    "symbol": u.symbol,
                    "store": str(book.settings.root),
                    "context": ctx.key,
                    "pairs": len(pairs),
                    "generated": made,
                    "reused": reused,
                    "changes": int(rows["changes"].sum()) if rows.height else 0,
                    "size_bytes": ctx.size_bytes(),
                }
            )
    frames["signals"] = pl.concat(frames["signals"], how="diagonal_relaxed") if frames["signals"] else None
    frames["metrics"] = pl.DataFrame()
    return frames, stats
