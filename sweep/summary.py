"""Phase summaries, aggregates, selection of the best, and the Monte Carlo resample phase."""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from containers.metrics import METRICS


def ranked(metrics: pl.DataFrame, metric: str, direction: str) -> pl.DataFrame:
    """Rows best first by ``metric`` (``direction``: max or min); NaN and null sort last."""
    return metrics.sort(pl.col(metric).fill_nan(None), descending=direction == "max", nulls_last=True)


def _ordered(metrics: pl.DataFrame, objective) -> pl.DataFrame:
    return ranked(metrics, objective.metric, objective.direction)


def select_best(metrics: pl.DataFrame, objective, k: int) -> list[int]:
    """Ids of the ``k`` best combinations by the objective (NaN last; ties by id)."""
    if k <= 0 or metrics.height == 0:
        return []
    m = metrics.sort("combo_id")
    return _ordered(m, objective).head(k)["combo_id"].to_list()


def phase_summary(name: str, frames: dict, objective, stats: dict, plan) -> dict:
    m = frames["metrics"]
    out = {
        "phase": name,
        "combinations": plan.combinations,
        "rows": m.height,
        "symbols": sorted(m["symbol"].unique().to_list()) if m.height and "symbol" in m.columns else [],
        "objective": {"metric": objective.metric, "direction": objective.direction},
        "seconds": round(stats.get("seconds", 0.0), 3),
        "events": {k: stats.get(k, 0) for k in ("published", "delivered", "kept", "dropped")},
        "files": {k: v.height for k, v in frames.items() if isinstance(v, pl.DataFrame)},
    }
    if m.height and objective.metric in m.columns:
        top = _ordered(m, objective).head(5)
        out["top"] = top.to_dicts()
    return out


def aggregate(m: pl.DataFrame, objective) -> dict:
    """Best combination, averages and counts over a phase's metrics."""
    if m.height == 0:
        return {"rows": 0}
    metric_cols = [c for c in METRICS if c in m.columns]
    avg = {}
    nan_counts = {}
    for c in metric_cols:
        col = m[c].cast(pl.Float64)
        finite = col.filter(col.is_finite())
        avg[c] = float(finite.mean()) if finite.len() else None
        nan_counts[c] = int(col.is_nan().sum() + col.is_null().sum())
    best = _ordered(m, objective).head(1).to_dicts()[0]
    return {
        "rows": m.height,
        "best": best,
        "averages": avg,
        "counts": {
            "combinations": int(m["combo_id"].n_unique()),
            "with_trades": int((m["trades"] > 0).sum()) if "trades" in m.columns else None,
            "nan_metrics": nan_counts,
            "flags": dict(m.group_by("flags").len().iter_rows()) if "flags" in m.columns else {},
        },
    }


def _max_drawdown(path: np.ndarray) -> float:
    peak = np.maximum.accumulate(np.r_[1.0, path])
    return float(np.max(1.0 - np.r_[1.0, path] / peak))


def resample_phase(run, universe, window, ids: np.ndarray) -> pl.DataFrame:
    """Monte Carlo: bootstrap trades (or blocks of bar returns) of the selected combinations.

    For each combination: ``samples`` resamples with replacement, seeded by
    the workflow seed and the combination id, giving quantiles of total
    return and max drawdown (and Sharpe for blocks).
    """
    opts = run.cfg.workflow.options
    samples, method, block = int(opts["samples"]), opts["method"], int(opts["block_size"])
    res = run._simulate(universe, ids, window, record_events=True, record_equity=True)
    from .frames import collected_events_frame, trades_frame

    trades = trades_frame(collected_events_frame(res, universe), universe)
    rows = []
    for row, cid in enumerate(ids):
        rng = np.random.default_rng([int(opts["seed"]), int(cid)])
        if method == "trades":
            r = trades.filter(pl.col("combo_id") == int(cid))["return"].to_numpy() if trades.height else np.array([])
            if r.size == 0:
                rows.append({"combo_id": int(cid), "symbol": universe.symbol, "samples": 0, "note": "no trades"})
                continue
            draws = r[rng.integers(0, r.size, (samples, r.size))]
            paths = np.cumprod(1.0 + draws, axis=1)
            sharpe = np.full(samples, np.nan)
        else:
            eq = res.equity[row]
            r = eq[1:] / eq[:-1] - 1.0
            nb = max(1, math.ceil(r.size / block))
            starts = rng.integers(0, max(1, r.size - block + 1), (samples, nb))
            idx = (starts[:, :, None] + np.arange(block)[None, None, :]).reshape(samples, -1)[:, : r.size]
            draws = r[np.minimum(idx, r.size - 1)]
            paths = np.cumprod(1.0 + draws, axis=1)
            sd = draws.std(axis=1, ddof=1)
            sharpe = np.where(sd > 0, draws.mean(axis=1) / sd * math.sqrt(universe.bars_per_year), np.nan)
        total = paths[:, -1] - 1.0
        mdd = np.array([_max_drawdown(p) for p in paths])
        out = {"combo_id": int(cid), "symbol": universe.symbol, "samples": samples, "method": method}
        for name, arr in (("total_return", total), ("max_drawdown", mdd), ("sharpe", sharpe)):
            for q in (5, 50, 95):
                out[f"{name}_p{q}"] = float(np.nanpercentile(arr, q)) if np.isfinite(arr).any() else None
            out[f"{name}_mean"] = float(np.nanmean(arr)) if np.isfinite(arr).any() else None
        out["prob_loss"] = float(np.mean(total < 0))
        rows.append(out)
    return pl.DataFrame(rows)
