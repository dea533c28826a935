"""``sweep.run``: phases -> windows -> shards of combinations, results written as they complete.

A phase's combinations are split into shards; each shard is one streaming
pass over the bars and is written (atomically) when done, so a run killed at
any point - even ``kill -9`` - resumes from its completed shards with
``resume=True`` and ends with the same results.  After the shards, a detail
pass replays the top-k (by the objective) and kept combinations with events
and equity recorded.  A finished run (same config, data and code) is not
recomputed unless forced.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import sys
import time
from pathlib import Path

import attrs
import numba
import numpy as np
import polars as pl

from containers.data import Universe, frequency, load_universes
from containers.events import EventBatch, EventBus, Tracer, assemble_parts
from containers.feature_hub import FeatureHub
from containers.portfolio import EV_CLOSE, EV_FILL, EV_OPEN
from services.errors import ConfigError, SweepError
from services.limits import available_memory, shard_size

from . import results, stages
from .blockstore import BlockShard, lazy_table
from .config import SweepConfig, load_config
from .config_backend import BACKENDS
from .engine import FeatureBlock, build_tables, feature_block, scoring_range, simulate
from .expander import Plan, expand
from .faults import storage_error
from .feature_limits import check_features
from .frames import (
    collected_events_frame,
    equity_frame,
    events_frame,
    metrics_frame,
    regimes_frame,
    trades_frame,
)
from .guard import check_run
from .interrupts import interruptible
from .lifecycle import fail, finish, open_store, results_root
from .manifest import plan_code, run_key
from .montecarlo import resample_phase
from .phase_outputs import TABLES, dsr_of_selected, luck_block, selections, stitch, summarize, write_phase
from .plausibility import assess
from .progress import Progress
from .results import RunResult, clean_floats, write_json, write_parquet
from .sequencer import Phase, Schedule, Window
from .sheet import buy_and_hold
from .signal_phase import SignalBook, SignalSettings, signals_phase, store_root
from .stats.blocks import layout
from .summary import select_best
from .tracesink import TraceSink, combined


def _keep_ids(cfg: SweepConfig, plan: Plan) -> np.ndarray:
    out = []
    hashes = None
    for i, k in enumerate(cfg.keep):
        if k.isdigit() and int(k) < plan.combinations:
            out.append(int(k))
            continue
        if hashes is None:
            hashes = {h: j for j, h in enumerate(plan.hashes())}
        if k.lower() in hashes:
            out.append(hashes[k.lower()])
            continue
        raise ConfigError(
            ("keep", i),
            "not a combination id or hash of this sweep",
            value=k,
            fix=f"use an id in 0..{plan.combinations - 1} or a 16-digit hash from metrics.parquet",
        )
    return np.array(sorted(set(out)), dtype=np.int64)


class _Run:
    """State of one run across phases (kept out of the public API)."""

    def __init__(self, cfg, plan, universes, store, engine, progress, threads, schedule: Schedule):
        self.cfg, self.plan, self.universes, self.store = cfg, plan, universes, store
        self.engine, self.progress, self.threads = engine, progress, threads
        self.keep = _keep_ids(cfg, plan)
        self.schedule = schedule
        self.tables = {}
        self.blocks: dict[tuple, FeatureBlock | None] = {}  # feature rows per universe and frequency, when they fit
        self.stats: dict[str, dict] = {}
        self._freq: dict[tuple, tuple[float, float]] = {}
        self.signals: SignalBook | None = None  # the signal store, when the run generates or replays signals
        self.replaying = False
        self.backend = None  # a RayBackend: shards of simulate phases run as Ray tasks
        self.backend_summary: dict = {"type": "threads"}  # what the backend did (backend.json)

    def _tables(self, u: Universe):
        key = u.bars_per_day
        if key not in self.tables:
            self.tables[key] = build_tables(self.plan, FeatureHub(self.plan.features, u.bars_per_day))
        return self.tables[key]

    def feature_block(self, u: Universe) -> FeatureBlock | None:
        """The universe's whole feature block at its frequency (computed once), or None when it does not fit."""
        key = (u.symbol, u.bars_per_day)
        if key not in self.blocks:
            with stages.stage("features (whole universe)"):
                self.blocks[key] = feature_block(self.plan, u)
        return self.blocks[key]

    def _simulate(self, u, ids, window: Window, **kw):
        if self.engine == "reference":
            from .reference import reference_simulate

            return reference_simulate(self.plan, u, ids, start=window.start, stop=window.stop, **kw)
        if self.replaying:  # the bar loop on stored signals: no feature computed (unless some must be generated)
            source = self.signals.source(u, None)
            return simulate(
                self.plan, u, ids, start=window.start, stop=window.stop, threads=self.threads, source=source, **kw
            )
        return simulate(
            self.plan,
            u,
            ids,
            self._tables(u),
            start=window.start,
            stop=window.stop,
            threads=self.threads,
            features=self.feature_block(u),
            **kw,
        )

    def tracing(self, phase: str):
        return self.cfg.phase_overrides.get(phase, self.cfg.tracing)

    def phases_of(self, u: Universe) -> tuple[Phase, ...]:
        return self.schedule.phases(u)

    def window_universe(self, u: Universe, phase: Phase, w: Window) -> Universe:
        """The universe as a window sees it: bars per day and per year inferred from the past only.

        A window that trades an earlier phase's picks (test) infers them from the
        bars before it; any other window (train, backtest) from the bars up to
        its end - so no test bar can change a train result.
        """
        stop = w.start if phase.select_from and w.start >= 2 else w.stop
        if stop >= u.n:  # all the bars: the frequency the universe was loaded with
            return u
        key = (u.symbol, stop)
        if key not in self._freq:
            self._freq[key] = frequency(u.timestamps[:stop])
        per_day, per_year = self._freq[key]
        return u.with_frequency(per_day, per_year)

    def window_info(self, u: Universe, w: Window) -> dict:
        ts = u.timestamps
        return {
            "symbol": u.symbol,
            "window": w.index,
            "start_bar": int(w.start),
            "stop_bar": int(w.stop),
            "first": _stamp(ts[w.start]),
            "last": _stamp(ts[w.stop - 1]),
            "bars_per_day": u.bars_per_day,
            "bars_per_year": u.bars_per_year,
        }

    def buy_and_hold(self, u: Universe, w: Window) -> dict:
        """Buy-and-hold of the window's scored bars (the bars every combination is scored on)."""
        t_first, t_last = self._scored(u, w)
        return {"symbol": u.symbol, "window": w.index, **buy_and_hold(u.close[t_first : t_last + 1], u.bars_per_year)}

    def _scored(self, u: Universe, w: Window) -> tuple[int, int]:
        """First and last scored bar of a window (after the longest warm-up and score_from)."""
        return scoring_range(
            FeatureHub(self.plan.features, u.bars_per_day), u, w.start, w.stop, self.plan.config.score_from
        )

    def _layout(self, u: Universe, w: Window):
        """The overfitting blocks of a window's scored bars (as the kernel will accumulate them)."""
        t_first, t_last = self._scored(u, w)
        return layout(u.timestamps, t_first, t_last, self.cfg.overfitting.block, u.bars_per_day)

    def work(self, only: Phase | None = None) -> int:
        """Bar-combinations the phases will score (what the progress bar counts to)."""
        total = 0
        for u0 in self.universes:
            for p in self.phases_of(u0):
                if only is not None and p.name != only.name:
                    continue
                n = (
                    self.plan.combinations
                    if not p.select_from
                    else min(p.top or self.plan.combinations, self.plan.combinations)
                )
                if p.kind == "signals":  # every pair over every bar
                    total += len(self.signals.pairs) * u0.n * len(p.windows)
                    continue
                for w in p.windows:
                    t_first, t_last = self._scored(self.window_universe(u0, p, w), w)
                    total += n * (t_last - t_first + 1)
        return total

    # ------------------------------------------------------------ phases
    def run_phase(self, phase: Phase, selections: dict, previous: dict) -> dict:
        """Run every window of a phase on every universe.

        Returns DataFrames for metrics, regimes and equity, and LazyFrames for
        events, trades and block returns (which may be large: they stream from
        shard files).  The phase's luck blocks go to ``self.stats[phase]``.
        """
        t0 = time.perf_counter()
        if phase.kind == "signals":
            frames, stats = signals_phase(self, phase, self.signals)
            self.stats[phase.name] = {**stats, "seconds": time.perf_counter() - t0}
            return {k: frames.get(k) for k in TABLES}
        out: dict[str, list] = {k: [] for k in TABLES}
        bus_stats = {"published": 0, "delivered": 0, "kept": 0, "dropped": 0, "overfitting": [], "windows": []}
        for u0 in self.universes:
            mine = self.schedule.phase(u0, phase.name)
            if mine.windowed and phase.select_from:
                tail = u0.n - max(w.stop for w in mine.windows)
                bus_stats.setdefault("untested_bars", {})[u0.symbol] = int(tail)
            for w in mine.windows:
                u = self.window_universe(u0, phase, w)
                bus_stats["windows"].append(self.window_info(u, w))
                bus_stats.setdefault("buy_and_hold", []).append(self.buy_and_hold(u, w))
                sel = selections.get((u.symbol, w.index)) if phase.select_from else None
                ids = sel.ids if sel is not None else np.arange(self.plan.combinations, dtype=np.int64)
                if phase.kind == "resample":
                    on = "holdout" if phase.windows[0].start > 0 else "in_sample"
                    dsr = dsr_of_selected(previous, phase.select_from, u.symbol, ids)
                    out["metrics"].append(
                        resample_phase(self, u, w, ids, dsr=dsr, selected_in=phase.select_from, on=on)
                    )
                    continue
                tables = self.run_window(phase, u, w, ids, bus_stats)
                if sel is not None and tables["metrics"].height:
                    m = tables["metrics"]
                    rank = sel.rank_column(m["combo_id"].to_numpy(), f"{phase.select_from}_rank")
                    tables["metrics"] = m.with_columns(rank)
                for k, v in tables.items():
                    if v is None or (isinstance(v, pl.DataFrame) and not v.height):
                        continue
                    windowed = mine.windowed and k != "block_returns"  # block rows carry their window already
                    if windowed:
                        v = (pl.scan_parquet(v) if isinstance(v, Path) else v).with_columns(
                            pl.lit(w.index).alias("window")
                        )
                    out[k].append(v)
        frames = {k: _one_table(v) for k, v in out.items()}
        bus_stats["seconds"] = time.perf_counter() - t0
        self.stats[phase.name] = bus_stats
        return frames

    def run_window(self, phase: Phase, u: Universe, w: Window, ids: np.ndarray, bus_stats: dict) -> dict:
        tracing = self.tracing(phase.name)
        traced = [t for t in tracing.event_tracing if t in ("FILL", "POSITION_OPEN", "POSITION_CLOSE")]
        n_scored = max(1, w.stop - w.start)
        ranks = phase.select_from is None and self.cfg.overfitting.enabled  # this phase picks winners
        lay = self._layout(u, w) if ranks else None
        shard = shard_size(n_scored, lay.n if lay is not None else 0)
        if self.backend is not None:
            shard = self.backend.shard_for(len(ids), shard)
        starts = range(0, len(ids), shard)
        parts: list = [None] * len(starts)
        todo = []
        self.progress.shards(len(starts))
        for k, a in enumerate(starts):
            sids = ids[a : a + shard]
            tag = f"{universe_key(u)}_w{w.index}_s{k:05d}"
            parts[k] = self._load_shard(phase.name, tag, u, w, lay, sids, bus_stats)
            if parts[k] is not None:
                t_first, t_last = self._scored(u, w)
                self.progress.update(len(sids) * (t_last - t_first + 1), shards=1)
            else:
                todo.append((k, tag, sids))
        for k, tag, sids, res in self._computed(u, w, lay, traced, todo):
            parts[k] = self._run_shard(phase, tag, u, w, sids, tracing, traced, bus_stats, lay, result=res)
        metrics, regimes, events, trades, blocks = (list(x) for x in zip(*parts))
        m_all = pl.concat(metrics, how="diagonal_relaxed")
        if lay is not None:
            with stages.stage("luck statistics"):
                block = luck_block(self.cfg, m_all, blocks, lay, u.symbol, w.index, u.timestamps, u.close)
            bus_stats["overfitting"].append(block)
        if phase.select_from is None and m_all.height:
            with stages.stage("plausibility"):
                bus_stats.setdefault("plausibility", []).append(self.plausibility(u, w, m_all))
        with stages.stage("detail pass (top-k)"):
            detail = self.detail(phase, u, w, m_all, bus_stats, traced)
        return {
            "metrics": m_all,
            "regimes": pl.concat([r for r in regimes if r.height]) if any(r.height for r in regimes) else None,
            "equity": detail["equity"],
            "events": combined(events, [detail["events"]]),
            "trades": combined(trades, [detail["trades"]]),
            "block_returns": lazy_table(blocks) if lay is not None else None,
        }

    def _computed(self, u, w, lay, traced, todo: list):
        """(k, tag, ids, result) of shards ``todo``: None (run here, streaming), or a Ray task's result."""
        if self.backend is None or not todo:
            yield from ((k, tag, sids, None) for k, tag, sids in todo)
            return
        job, u_ref, f_ref = self.backend.job(self, u, w, lay, bool(traced), universe_key(u))
        with stages.stage("shards on ray (waiting)"):
            yield from self.backend.run_shards(job, u_ref, f_ref, todo)

    def _run_shard(self, phase, tag, u, w, sids, tracing, traced, bus_stats, lay, result=None):
        """One streaming pass for a shard of combinations; traced events go through the bus to the sink.

        ``result``: the shard was computed elsewhere (a Ray task, events collected); its events go
        through the same bus, tracer and sink, in the order the kernel emitted them.
        """
        bus = EventBus(f"{phase.name}/{tag}")
        tracer = Tracer(bus, traced, tracing.retention_policy, tracing.sliding_window_size)
        base = self.store.shard_path(phase.name, tag) if self.store is not None else None
        sink = TraceSink(tracer, u, base.with_suffix(".parts") if base is not None else None)
        if result is None:
            res = self._simulate(
                u,
                sids,
                w,
                record_events=bool(traced),
                on_events=lambda owner, arr: _publish(bus, owner, arr, u, tracer, sink),
                progress=self.progress.update,
                blocks=lay.spec if lay is not None else None,
            )
            self.progress.update(0, shards=1)
        else:
            res = result
            for owner, arr in res.events:
                _publish(bus, owner, arr, u, tracer, sink)
            self.progress.update(len(sids) * (res.t_last - res.t_first + 1), shards=1)
        m = metrics_frame(
            self.plan, sids, res.metrics, u.symbol, self.cfg.min_trades, (res.t_first, res.t_last, u.timestamps)
        )
        r = (
            regimes_frame(self.plan, sids, res.regimes, u.symbol, self._tables(u).regime_names, res.bank)
            if res.regimes is not None
            else pl.DataFrame()
        )
        still_open = None
        if "POSITION_CLOSE" in traced and tracing.retention_policy != "minimal":  # traced trades: the open ones too
            still_open = trades_frame(pl.DataFrame(), u, bank=res.bank, ids=sids, t_last=res.t_last)
        with stages.stage("events and trades (shard files)"):
            e, t = sink.finish(
                base.with_suffix(".events.parquet") if base is not None else None,
                base.with_suffix(".trades.parquet") if base is not None else None,
                open_trades=still_open,
            )
        b = None
        if lay is not None:
            starts = u.timestamps[lay.starts]
            if base is not None:
                b = BlockShard.write(base.with_suffix(".blocks"), u.symbol, w.index, starts, sids, res.block_returns)
            else:
                b = BlockShard(u.symbol, w.index, starts, lay.n, ids=sids, mat=res.block_returns)
        counts = {  # + the reference engine's own bus
            "kept": sink.kept,
            "dropped": tracer.dropped,
            "published": bus.published,
            "delivered": bus.delivered + res.events_delivered,
        }
        for k, v in counts.items():
            bus_stats[k] += int(v)
        if res.containers:  # reference engine: per-combination containers add up across shards
            have = bus_stats.setdefault("containers", {})
            for role, k in res.containers.items():
                shared = role in ("data", "feature_hub", "execution")
                have[role] = max(have.get(role, 0), k) if shared else have.get(role, 0) + k
        bus.close()
        if base is not None:
            if r.height:
                write_parquet(base.with_suffix(".regimes.parquet"), r)
            write_parquet(base, m)
            files = [x.name for x in (base.with_suffix(".regimes.parquet"), e, t) if x is not None and x.exists()]
            files += [f"{base.stem}.blocks/{x.name}" for x in (b.parts if b is not None else ())]
            # written last: a shard counts only when this marker says which files it is made of
            write_json(_marker(base), {"ids": _ids_key(sids), "files": [base.name, *files], "bus": counts})
        return m, r, e, t, b

    def detail(self, phase: Phase, u: Universe, w: Window, metrics: pl.DataFrame, bus_stats: dict, traced) -> dict:
        """A second pass over what the main pass did not record: trades of the top-k, equity, portfolio updates.

        Equity curves are kept for the ``keep:`` combinations and in phases that trade an earlier phase's
        picks (their out-of-sample curve); any other curve is replayed on request (``res.equity``), which
        costs less than writing a million rows per combination.  When the main pass traced fills, opens and
        closes, the top-k's trades are already there.
        """
        empty = {"trades": pl.DataFrame(), "equity": pl.DataFrame(), "events": pl.DataFrame()}
        updates = "PORTFOLIO_UPDATE" in self.tracing(phase.name).event_tracing
        present = set(metrics["combo_id"].to_list())
        keep = [k for k in self.keep if k in present]
        if phase.select_from:
            ids = np.array(sorted(present), dtype=np.int64)
        else:
            need = updates or len(set(traced)) < 3  # top-k trades (or updates) the main pass did not record
            best = select_best(metrics, self.cfg.objective, self.cfg.top_k, self.cfg.min_trades) if need else []
            ids = np.array(sorted(set(best) | set(keep)), dtype=np.int64)
        if ids.size == 0:
            return empty
        want_equity = bool(phase.select_from) or bool(keep) or updates
        bus = EventBus(f"{phase.name}/{u.symbol}/detail")
        collected: list = []
        bus.subscribe("FILL", collected.append)
        bus.subscribe("POSITION_OPEN", collected.append)
        bus.subscribe("POSITION_CLOSE", collected.append)
        res = self._simulate(
            u,
            ids,
            w,
            record_events=True,
            record_equity=want_equity,
            on_events=lambda owner, arr: _publish(bus, owner, arr, u),
        )
        events = pl.DataFrame()
        parts = assemble_parts(collected)  # in time order per combination (``seq``); not sorted: it would copy them all
        if parts:
            events = pl.concat([events_frame(b.owner, b.cols, u.symbol, u, seq=b.seq) for b in parts], rechunk=False)
        eq = equity_frame(ids, res.equity, u, res.t_first) if want_equity else pl.DataFrame()
        if updates:
            upd = eq.with_columns(pl.lit("PORTFOLIO_UPDATE").alias("event"))
            bus.publish_batch("PORTFOLIO_UPDATE", upd)
            events = pl.concat([events, upd], how="diagonal_relaxed") if events.height else upd
        trades = trades_frame(events, u, bank=res.bank, ids=ids, t_last=res.t_last)
        bus_stats["published"] += bus.published
        bus_stats["delivered"] += bus.delivered
        bus.close()
        return {"trades": trades, "equity": eq, "events": events}

    def plausibility(self, u: Universe, w: Window, metrics: pl.DataFrame) -> dict:
        """The plausibility block of a ranking's best combination (``sweep.plausibility``): its equity replayed."""
        best = select_best(metrics, self.cfg.objective, 1, self.cfg.min_trades)
        if not best:
            return {"symbol": u.symbol, "window": w.index, "alarm": False}
        res = self._simulate(u, np.array(best[:1], dtype=np.int64), w, record_equity=True)
        sharpe = metrics.filter(pl.col("combo_id") == best[0])["sharpe"][0]
        return {"symbol": u.symbol, "window": w.index, **assess(best[0], sharpe, res.equity[0], list(self.cfg.plugins))}

    # ------------------------------------------------------------ shards
    def _load_shard(self, phase, tag, u, w, lay, sids, bus_stats: dict):
        """A completed shard of an interrupted run: (metrics, regimes, events file, trades file, block returns).

        Its bus counts (events kept, dropped, ...) go into ``bus_stats``.  It counts only with its
        completion marker and every file the marker lists; a marker for other combinations (the shard
        layout changed) is refused rather than mixed in.
        """
        if self.store is None:
            return None
        base = self.store.shard_path(phase, tag)
        marker = _marker(base)
        if not marker.is_file():
            return None
        try:
            done = json.loads(marker.read_text())
        except (OSError, ValueError):
            return None
        if done.get("ids") != _ids_key(sids):
            raise ConfigError(
                ("--resume",),
                f"shard {tag} of {self.store.path} holds other combinations than this run would put there: "
                "the shard layout changed since the run started (SWEEP_SHARD_WORK / SWEEP_MIN_SHARD or the version)",
                fix="resume with the settings it was started with, or start again with --force",
            )
        folder = base.parent
        if not all((folder / f).exists() for f in done.get("files", [])):
            return None
        blk = None
        if lay is not None:
            blk = BlockShard.read(base.with_suffix(".blocks"), u.symbol, w.index, u.timestamps[lay.starts], lay.n)
            if blk is None:
                return None
        reg = base.with_suffix(".regimes.parquet")
        ev, tr = base.with_suffix(".events.parquet"), base.with_suffix(".trades.parquet")
        for k, v in done.get("bus", {}).items():  # its events count as if it ran now
            bus_stats[k] += int(v)
        return (
            pl.read_parquet(base),
            pl.read_parquet(reg) if reg.exists() else pl.DataFrame(),
            ev if ev.exists() else None,
            tr if tr.exists() else None,
            blk,
        )


def _one_table(parts: list):
    """A phase's table from its windows' and symbols' parts: one shard file stays a file (moved, not rewritten)."""
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    lazy = any(isinstance(p, (Path, pl.LazyFrame)) for p in parts)
    if lazy:
        return pl.concat(
            [pl.scan_parquet(p) if isinstance(p, Path) else p.lazy() for p in parts], how="diagonal_relaxed"
        )
    return pl.concat(parts, how="diagonal_relaxed")


def _marker(base: Path) -> Path:
    return base.with_name(f"{base.stem}.done.json")


def _ids_key(ids: np.ndarray) -> dict:
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    digest = hashlib.blake2b(ids.tobytes(), digest_size=8).hexdigest()
    return {"count": int(ids.size), "first": int(ids[0]) if ids.size else None, "hash": digest}


def _publish(
    bus: EventBus,
    owner: np.ndarray,
    arr: np.ndarray,
    u: Universe,
    tracer: Tracer | None = None,
    sink: TraceSink | None = None,
) -> None:
    """Put one drain of the kernel's event buffers on the bus, one batch per event type."""
    with stages.stage("events (bus, tracer, parts)"):
        _publish_now(bus, owner, arr, u, tracer, sink)


def _publish_now(bus, owner, arr, u, tracer, sink) -> None:
    batch = EventBatch(owner, np.arange(bus.published, bus.published + len(owner), dtype=np.int64), arr)
    for code, kind in ((EV_FILL, "FILL"), (EV_OPEN, "POSITION_OPEN"), (EV_CLOSE, "POSITION_CLOSE")):
        bus.publish_batch(kind, batch.of_kind(code))
    if tracer is not None:
        tracer.settle()
    if sink is not None:
        sink.flush()


def run(
    config,
    *,
    results_dir=None,
    resume: bool = False,
    force: bool = False,
    engine: str | None = None,
    threads: int | None = None,
    progress: bool = True,
    max_combinations: int | None = None,
    notices: bool | None = None,
    lookahead_check: bool = True,
    replay: str | None = None,
    replay_only: bool = False,
    backend: str | None = None,
    address: str | None = None,
) -> RunResult:
    """Backtest every combination of a sweep and return (and, by default, write) its results.

    ``config`` is a YAML path, a dict or a loaded config.  Results go to
    ``results_dir/<name>/<run_id>/`` unless ``results_storage: memory``.  A
    complete run with the same config, data and code is returned as is
    unless ``force``; ``resume`` continues an interrupted one.  ``progress``
    shows a bar (or log lines); ``notices`` (default: same as progress)
    prints one-line notices such as "resuming".  Every plugin the config
    uses is first checked for look-ahead on the run's own data
    (``sweep.guard``) unless ``lookahead_check=False``.  ``replay`` (a signal
    store folder) runs the workflow on stored signals (as ``workflow:
    signal_replay`` does with ``signals_dir``); ``replay_only`` refuses to
    generate the pairs that are not stored.  ``backend="ray"`` runs the shards as Ray tasks on the
    cluster at ``address`` (default ``backend.address``, then ``RAY_ADDRESS``, else a local instance);
    the results are the same as with the default ``"threads"``.

    Example:
        >>> res = run({"data": {"synthetic": {"bars": 2000, "timeframe": "5m"}}, "results_storage": "memory",
        ...            "strategies": [{"type": "momentum", "parameters": {"lookback_period": [5, 10, 20]}}]},
        ...           progress=False)
        >>> res.best(2, by="sharpe").height
        2
    """
    stages.reset()
    with stages.stage("config and plan"):
        cfg = load_config(config, max_combinations=max_combinations)
    engine = engine or cfg.engine
    if engine not in ("fast", "reference"):
        raise ConfigError(("engine",), "expected fast or reference", value=engine, fix="use --engine fast")
    if threads is not None and (isinstance(threads, bool) or int(threads) < 1):
        raise ConfigError(("threads",), "expected a whole number >= 1", value=threads, fix="e.g. --threads 2")
    modes = {cfg.workflow.type, cfg.workflow.base_pattern}
    replaying = bool(replay) or "signal_replay" in modes
    if replay_only and not replaying:
        raise ConfigError(("--replay-only",), "only means something with a replay", fix="add --replay SIGNALS_DIR")
    if (replaying or "signal_generation" in modes) and engine == "reference":
        raise ConfigError(
            ("engine",),
            "the reference engine computes every signal itself: it neither stores nor replays signals",
            value=engine,
            fix="use --engine fast",
        )
    settings = _backend_settings(cfg, backend, address, engine, modes)
    with stages.stage("config and plan"):
        plan = expand(cfg, max_combinations=max_combinations, count_data=False)
    with stages.stage("data"):
        universes = load_universes(cfg.data)
    try:
        for u in universes:  # windows longer than the data, state that cannot fit: refused before allocating
            check_features(plan, u.bars_per_day, u.n, f"{u.symbol} ({u.source})")
        check_memory(attrs.evolve(plan, n_bars=max(u.n for u in universes)))
    except ConfigError as err:
        raise (cfg.lines.locate(err, err.path_parts) if cfg.lines is not None else err) from None
    with stages.stage("look-ahead check"):
        guard = check_run(plan, universes) if lookahead_check else {"status": "skipped (--no-lookahead-check)"}
    warnings = list(plan.warnings)
    key = run_key(cfg, plan, universes, engine)
    schedule = Schedule.build(cfg, universes)  # universe -> phases -> windows, once
    log = Progress(0, enabled=progress if notices is None else notices, bar=False)  # one-line notices
    if cfg.data.is_sample:
        log.note(f"no `data:` in the config: using the {cfg.data.describe()}")
    for w in warnings:
        log.note(f"warning: {w}")
    prog = Progress(1, label=cfg.name, enabled=False)
    state = _Run(cfg, plan, universes, None, engine, prog, threads, schedule)  # checks keep: before a folder exists
    if cfg.score_from is not None:  # every window's scoring range: a bad score_from is refused before a folder exists
        try:
            state.work()
        except ConfigError as err:
            raise (cfg.lines.locate(err, err.path_parts) if cfg.lines is not None else err) from None
    if replaying or "signal_generation" in modes:
        root = store_root(cfg, results_root(cfg, results_dir), replay)
        state.signals = SignalBook(SignalSettings(root, replaying, bool(replay_only)), plan)
        state.replaying = replaying
    if settings.type == "ray":  # joined (or started) before a run folder exists: a refusal leaves nothing
        from .raybackend import RayBackend

        with stages.stage("ray: connect"):
            state.backend = RayBackend.connect(settings, address, threads, log)
        state.backend.bind(cfg, plan)
    extra = {
        "lookahead_check": guard,
        "code_fingerprint": plan_code(plan),
        "warnings": warnings,
        "signals": {"store": str(state.signals.settings.root), "replay": state.replaying}
        if state.signals is not None
        else None,
        "backend": state.backend.describe() if state.backend is not None else state.backend_summary,
    }
    try:
        return _run_on(state, key, extra, results_dir, resume, force, log, progress)
    finally:
        if state.backend is not None:
            state.backend.close()


def _run_on(state: _Run, key: str, extra: dict, results_dir, resume, force, log, progress) -> RunResult:
    """The run from its folder on: phases in order, written as they complete (``run``'s second half).

    ``extra``: what the manifest records besides the config (look-ahead check, warnings, signals, backend).
    """
    cfg, plan, universes, engine, threads = state.cfg, state.plan, state.universes, state.engine, state.threads
    phase_list = list(state.schedule.phases(universes[0]))
    store = None
    if cfg.tracing.results_storage == "disk":
        try:
            store, existing = open_store(
                cfg,
                plan,
                universes,
                key,
                engine=engine,
                threads=threads,
                phase_list=phase_list,
                results_dir=results_dir,
                resume=resume,
                force=force,
                log=log,
                extra=extra,
            )
        except SweepError:
            raise
        except OSError as exc:
            raise storage_error(exc, "creating the run folder") from None
        if existing is not None:
            return open_results(existing)
    if threads:
        numba.set_num_threads(min(int(threads), numba.config.NUMBA_NUM_THREADS))
    state.store = store
    results: dict[str, dict] = {}
    try:  # from here on the run folder exists: any way out records why (failed, interrupted) or completes
        total = state.work()
        prog = state.progress = Progress(total, label=cfg.name, enabled=progress)
        with interruptible():
            _run_phases(state, store, phase_list, results, plan, cfg, universes, prog)
        if state.backend is not None:
            state.backend_summary = state.backend.write_summary(store.path if store is not None else None)
        if store is not None:
            alarms = [b for s in state.stats.values() for b in s.get("plausibility", []) if b.get("alarm")]
            store.update_manifest(plausibility={"alarm": bool(alarms), "alarms": alarms})
            finish(store, time.perf_counter() - prog.start, total)
    except SweepError as exc:
        if store is not None:
            fail(store, exc)
        raise
    except OSError as exc:
        if store is not None:
            fail(store, exc)
        raise storage_error(exc) from None
    except BaseException as exc:
        if store is not None:
            fail(store, exc)
        raise
    finally:
        prog.close()
    main = phase_list[0].name
    res = RunResult(
        store.path if store else None,
        results,
        (cfg.objective.metric, cfg.objective.direction),
        main,
        replay=functools.partial(_replay, cfg, plan, universes, engine, threads),
        min_trades=cfg.min_trades,
    )
    res.run_stats = state.stats  # per phase: events, windows, timings
    res.backend = state.backend_summary
    return res


def _backend_settings(cfg: SweepConfig, backend: str | None, address: str | None, engine: str, modes: set):
    """The backend the run uses: the config's, overridden by --backend / --address; refusals first."""
    settings = cfg.backend
    if backend is not None:
        if backend not in BACKENDS:
            raise ConfigError(("--backend",), "expected threads or ray", value=backend, fix="use --backend ray")
        settings = attrs.evolve(settings, type=backend)
    if address is not None:
        if backend == "threads":
            raise ConfigError(("--address",), "an address is for --backend ray", value=address, fix="add --backend ray")
        settings = attrs.evolve(settings, type="ray")
    if settings.type == "ray":
        if engine == "reference":
            raise ConfigError(
                ("backend",),
                "the reference engine runs in one process (it is the oracle, not a way to scale)",
                value="ray",
                fix="use --engine fast with --backend ray",
            )
        signal_modes = {"signal_generation", "signal_replay"} & modes
        if signal_modes:
            raise ConfigError(
                ("backend",),
                f"{'/'.join(sorted(signal_modes))} runs on the driver (one pass per signal pair, a shared store); "
                "the Ray backend distributes backtest shards",
                value="ray",
                fix="run it with the default backend: threads",
            )
    return settings


def _run_phases(state, store, phase_list, results, plan, cfg, universes, prog) -> None:
    """Every phase in order; each is written (or kept) as it completes."""
    for phase in phase_list:
        if store is not None and store.phase_complete(phase.name):
            d = store.phase_dir(phase.name)
            results[phase.name] = {k: d / f"{k}.parquet" for k in TABLES}
            results[phase.name]["metrics"] = pl.read_parquet(d / "metrics.parquet")  # later phases select on it
            results[phase.name]["summary"] = json.loads((d / "phase_summary.json").read_text())
            store.remove_shards(phase.name)  # a clean-up a kill interrupted
            prog.update(state.work(phase))
            continue
        chosen = selections(cfg, phase, results, universes, state.phases_of)
        frames = state.run_phase(phase, chosen, results)
        if frames["metrics"] is None:
            frames["metrics"] = pl.DataFrame()
        if phase.select_from and phase.kind == "simulate":
            winners = {key: sel.ranked[0] for key, sel in chosen.items() if sel.ranked}
            per_year = {w["symbol"]: w["bars_per_year"] for w in reversed(state.stats[phase.name]["windows"])}
            frames["equity"], oos = stitch(frames["equity"], winners, per_year)
            state.stats[phase.name]["out_of_sample"] = oos
        stats = state.stats.get(phase.name, {})
        if store is not None:
            with stages.stage("write phase files"):
                paths = write_phase(store, phase.name, frames, plan, cfg, stats)
            results[phase.name] = {**paths, "metrics": frames["metrics"]}
            store.mark_phase(phase.name, "complete")  # first: the shards are garbage from here on
            store.remove_shards(phase.name)
        else:
            results[phase.name] = {k: (v.collect() if isinstance(v, pl.LazyFrame) else v) for k, v in frames.items()}
            results[phase.name]["summary"] = clean_floats(summarize(phase.name, frames, plan, cfg, stats))


def check_memory(plan: Plan) -> None:
    """Refuse a run whose memory estimate exceeds what the machine has available."""
    est = plan.memory_estimate()
    avail = available_memory()
    if avail is not None and est["total"] > 0.9 * avail:
        big = sorted(((v, k) for k, v in est.items() if k != "total"), reverse=True)[:3]
        parts = ", ".join(f"{k.replace('_', ' ')} {v / 2**30:.1f} GiB" for v, k in big)
        raise ConfigError(
            "<memory>",
            f"the run needs about {est['total'] / 2**30:.1f} GiB ({parts}), the machine has {avail / 2**30:.1f} GiB "
            "available",
            fix="narrow the grid, shorten the data (data.start/end) or lower top_k; `sweep expand` shows the estimate",
        )


def universe_key(u: Universe) -> str:
    """A file-name-safe, unique key of a universe: its symbol (made safe) and a hash of symbol and source."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", u.symbol).strip(".")[:40] or "sym"
    return f"{safe}-{hashlib.blake2b(f'{u.symbol}|{u.source}'.encode(), digest_size=4).hexdigest()}"


def _stamp(t) -> str:
    return str(np.asarray(t).astype("datetime64[ns]").astype("datetime64[s]")).replace("T", " ")


def _replay(cfg, plan, universes, engine, threads, what: str, combo_id: int, symbol: str | None, phase: str):
    u = next((x for x in universes if symbol is None or x.symbol == symbol), None)
    if u is None:
        raise KeyError(f"no symbol {symbol!r}")
    schedule = Schedule.build(cfg, [u])
    p = schedule.phase(u, phase)
    state = _Run(cfg, plan, [u], None, engine, Progress(0, enabled=False), threads, schedule)
    frames = []
    ids = np.unique(np.atleast_1d(np.asarray(combo_id, dtype=np.int64)))  # one id, or several in one pass
    for w in p.windows:
        wu = state.window_universe(u, p, w)
        res = state._simulate(wu, ids, w, record_events=True, record_equity=True)
        if what == "equity":
            f = equity_frame(ids, res.equity, wu, res.t_first)
        else:
            ev = collected_events_frame(res, wu)
            f = trades_frame(ev, wu, bank=res.bank, ids=ids, t_last=res.t_last)
        frames.append(f.with_columns(pl.lit(w.index).alias("window")) if p.windowed and f.height else f)
    frames = [f for f in frames if f.height]
    return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()


def open_results(path) -> RunResult:
    """Open a results folder (a run, or a sweep folder: its newest complete run); trades and equity of any
    combination are replayed from the manifest's config when they were not kept.

    Example:
        >>> import tempfile
        >>> folder = tempfile.mkdtemp()
        >>> done = run({"name": "doc", "data": {"synthetic": {"bars": 2000, "timeframe": "5m"}},
        ...             "strategies": [{"type": "ma_crossover", "parameters": {"fast": [5, 10], "slow": [40]}}]},
        ...            results_dir=folder, progress=False)
        >>> again = open_results(f"{folder}/doc")
        >>> again.metrics.equals(done.metrics), again.trades(1).height > 0
        (True, True)
    """
    return results.open_results(path, replay=replay_combination)


_STALE_NOTED: set[str] = set()  # run folders whose replays were noted as running changed code


def replay_combination(manifest: dict, path: Path, what: str, combo_id: int, symbol: str | None, phase: str):
    """Recompute trades or equity of one combination of a stored run from its manifest.

    When the code changed since the run (``code_fingerprint``), the replay runs today's code: a note says
    so once per run folder, since its trades may not add up to the stored metrics.
    """
    cfg = load_config(manifest["raw_config"])
    plan = expand(cfg, count_data=False)
    was = manifest.get("code_fingerprint")
    if was is not None and was != plan_code(plan) and str(path) not in _STALE_NOTED:
        _STALE_NOTED.add(str(path))
        print(
            f"note: the code changed since {path} ran (code fingerprint {was} -> {plan_code(plan)}): replayed trades "
            "and equity come from today's code and may not match its metrics; run the config again for both",
            file=sys.stderr,
        )
    universes = load_universes(cfg.data)
    return _replay(cfg, plan, universes, manifest.get("engine", "fast"), None, what, combo_id, symbol, phase)
