"""What a phase hands on and writes: selections for the next phase, the luck block of a ranking,
the stitched out-of-sample equity of train winners, and the phase's files.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import attrs
import numpy as np
import polars as pl

from .faults import checkpoint
from .overfitting import chunk_rows, deflated_sharpe_of, evaluate, sentence
from .results import TABLE_NAMES as TABLES
from .results import RunStore, clean_floats, write_json, write_parquet
from .summary import aggregate, phase_summary, ranked
from .tracesink import sink_lazy


@attrs.frozen(eq=False)
class Selection:
    """The combinations an earlier phase picked for one (symbol, window), best first."""

    ranked: tuple[int, ...]

    @property
    def ids(self) -> np.ndarray:
        return np.array(sorted(self.ranked), dtype=np.int64)

    def rank_column(self, ids: np.ndarray, name: str) -> pl.Series:
        rank = {cid: k + 1 for k, cid in enumerate(self.ranked)}
        return pl.Series(name, [rank[int(c)] for c in ids], dtype=pl.Int64)


def selections(cfg, phase, previous: dict, universes, phases_of) -> dict:
    """For a phase that trades the best of an earlier one: a Selection per (symbol, window)."""
    if not phase.select_from:
        return {}
    m = previous[phase.select_from]["metrics"]
    out = {}
    for u in universes:
        mine = next(p for p in phases_of(u) if p.name == phase.name)
        for w in mine.windows:
            sub = m.filter(pl.col("symbol") == u.symbol)
            if "window" in sub.columns:
                sub = sub.filter(pl.col("window") == w.index)
            if cfg.objective.metric not in sub.columns or not sub.height:
                out[(u.symbol, w.index)] = Selection(())
                continue
            top = phase.top or sub.height
            best = ranked(sub.sort("combo_id"), cfg.objective.metric, cfg.objective.direction, cfg.min_trades)
            out[(u.symbol, w.index)] = Selection(tuple(best.head(top)["combo_id"].to_list()))
    return out


def luck_block(cfg, metrics: pl.DataFrame, shards: list, lay, symbol: str, window: int, timestamps, close=None) -> dict:
    """The overfitting block of one ranking (a symbol and window) from its BlockShards, with its CLI sentence.

    ``close``: the universe's closes, for the statistics against buy-and-hold of the same blocks.
    """
    obj = cfg.objective
    best = ranked(metrics.sort("combo_id"), obj.metric, obj.direction, cfg.min_trades).head(1)
    best_id = int(best["combo_id"][0]) if best.height else None
    value = best[obj.metric][0] if best.height else None
    rows = chunk_rows(lay.n)
    block = evaluate(
        (chunk for s in shards for chunk in s.chunks(rows)),
        n_blocks=lay.n,
        rows=metrics.height,
        best_id=best_id,
        settings=cfg.overfitting,
        seed=cfg.overfitting.seed if cfg.overfitting.seed is not None else cfg.seed,
        block_label=lay.spec.label,
        hold=lay.hold_returns(close) if close is not None and lay.n else None,
    )
    ts = np.asarray(timestamps)
    head = {"symbol": symbol, "window": int(window)}
    if lay.n:
        head["first_block"] = str(ts[lay.starts[0]].astype("datetime64[ns]"))
        head["last_block"] = str(ts[lay.starts[-1]].astype("datetime64[ns]"))
    if "best" in block and best.height:
        row = best.row(0, named=True)
        block["best"].update({"objective": obj.metric, "value": value, "sharpe": row.get("sharpe")})
    out = {**head, **block}
    out["sentence"] = sentence(out, obj.metric, value)
    return out


def dsr_of_selected(previous: dict, phase: str, symbol: str, ids: np.ndarray) -> dict:
    """Deflated Sharpe of combinations ``ids`` against every combination of ``phase`` (window 0), by id."""
    tables = previous.get(phase, {})
    summary = tables.get("summary") or {}
    blocks = [b for b in summary.get("overfitting", []) if b.get("symbol") == symbol and b.get("window") == 0]
    src = tables.get("block_returns")
    if not blocks or src is None:
        return {}
    lf = pl.scan_parquet(src) if isinstance(src, Path) else src.lazy()
    sel = (
        lf.filter((pl.col("symbol") == symbol) & (pl.col("window") == 0) & pl.col("combo_id").is_in(ids.tolist()))
        .sort(["combo_id", "block"])
        .collect()
    )
    if not sel.height:
        return {}
    n = blocks[0]["blocks"]
    got = sel["combo_id"].to_numpy()[::n]
    vals = deflated_sharpe_of(sel["return"].to_numpy().reshape(len(got), n), blocks[0])
    return {int(c): (float(v) if np.isfinite(v) else None) for c, v in zip(got, vals)}


def stitch(equity: pl.DataFrame | None, chosen: dict, bars_per_year: dict) -> tuple[pl.DataFrame | None, list]:
    """Chain the test equity of each window's train winner into one out-of-sample curve per symbol.

    ``chosen`` maps (symbol, window) -> the winning combination id.  Returns
    the equity frame with a ``stitched_growth`` column (null on other rows) and
    one out-of-sample summary row per symbol.
    """
    if equity is None or not equity.height:
        return equity, []
    if "window" not in equity.columns:
        equity = equity.with_columns(pl.lit(0).alias("window"))
    parts, rows = [], []
    for sym in equity["symbol"].unique(maintain_order=True).to_list():
        level, curve, used = 1.0, [], []
        for w in sorted(equity.filter(pl.col("symbol") == sym)["window"].unique().to_list()):
            cid = chosen.get((sym, w))
            part = equity.filter((pl.col("symbol") == sym) & (pl.col("window") == w) & (pl.col("combo_id") == cid))
            if cid is None or not part.height:
                continue
            part = part.sort("bar")
            e = part["equity"].to_numpy()
            with np.errstate(divide="ignore", invalid="ignore"):
                growth = e / e[0] * level
            level = float(growth[-1])
            curve.append(growth)
            used.append(int(w))
            parts.append(part.with_columns(pl.Series("stitched_growth", growth)))
        if not curve:
            continue
        g = np.concatenate(curve)
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.concatenate([c[1:] / c[:-1] - 1.0 for c in curve])
        sd = float(np.std(r, ddof=1)) if r.size > 1 else 0.0
        peak = np.maximum.accumulate(np.r_[1.0, g])
        rows.append(
            {
                "symbol": sym,
                "windows": len(used),
                "bars": int(g.size),
                "total_return": float(g[-1] - 1.0),
                "sharpe": float(np.mean(r) / sd * math.sqrt(bars_per_year[sym])) if sd > 0 else None,
                "max_drawdown": float(np.max(1.0 - np.r_[1.0, g] / peak)),
                "note": "test-window equity of each window's train winner, chained",
            }
        )
    if not parts:
        return equity, rows
    stitched = pl.concat(parts, how="diagonal_relaxed").select("symbol", "window", "combo_id", "bar", "stitched_growth")
    out = equity.join(stitched, on=["symbol", "window", "combo_id", "bar"], how="left")
    return out, rows


def summarize(name: str, frames: dict, plan, cfg, stats: dict) -> dict:
    """The phase summary (also what phase_summary.json holds)."""
    eager = {k: v for k, v in frames.items() if isinstance(v, pl.DataFrame)}
    return phase_summary(name, {**eager, "metrics": frames["metrics"]}, cfg.objective, stats, plan, cfg.min_trades)


def write_phase(store: RunStore, name: str, frames: dict, plan, cfg, stats: dict) -> dict:
    """Write a phase's files (events, trades and block returns streamed from shard files); returns name -> path."""
    d = store.phase_dir(name)
    paths = {}
    for k in TABLES:
        f = frames.get(k)
        if f is None:
            continue
        path = d / f"{k}.parquet"
        if isinstance(f, Path):  # one shard's file, complete: moved into place (the shard then reruns if killed)
            os.replace(f, path)
            checkpoint(f"moved {path.name}")
        elif isinstance(f, pl.LazyFrame):
            sink_lazy(f, path)
        elif f.height:
            write_parquet(path, f)
        else:
            continue
        paths[k] = path
    counts = {k: pl.scan_parquet(p).select(pl.len()).collect().item() for k, p in paths.items()}
    summary = summarize(name, frames, plan, cfg, stats)
    summary["files"] = counts
    write_json(d / "phase_summary.json", clean_floats(summary))
    write_json(d / "aggregate_results.json", clean_floats(aggregate(frames["metrics"], cfg.objective, cfg.min_trades)))
    return {**paths, "summary": clean_floats(summary)}
