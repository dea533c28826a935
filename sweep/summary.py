"""Phase summaries, aggregates and the ranking rule (objective first, too few trades last)."""

from __future__ import annotations

import polars as pl

from containers.metrics import METRICS


def ranked(metrics: pl.DataFrame, metric: str, direction: str, min_trades: int = 0) -> pl.DataFrame:
    """Rows best first by ``metric`` (``direction``: max or min); NaN and null sort last.

    Combinations with fewer than ``min_trades`` closed trades come after every
    combination with enough, whatever their metric: they are never ranked first.
    """
    keys = [pl.col(metric).fill_nan(None)]
    desc = [direction == "max"]
    if min_trades > 0 and "trades" in metrics.columns:
        keys.insert(0, pl.col("trades") < min_trades)
        desc.insert(0, False)
    return metrics.sort(keys, descending=desc, nulls_last=True, maintain_order=True)


def _ordered(metrics: pl.DataFrame, objective, min_trades: int = 0) -> pl.DataFrame:
    return ranked(metrics, objective.metric, objective.direction, min_trades)


def select_best(metrics: pl.DataFrame, objective, k: int, min_trades: int = 0) -> list[int]:
    """Ids of the ``k`` best combinations by the objective (too few trades last, NaN last, ties by id)."""
    if k <= 0 or metrics.height == 0 or objective.metric not in metrics.columns:
        return []
    m = metrics.sort("combo_id")
    return _ordered(m, objective, min_trades).head(k)["combo_id"].to_list()


def phase_summary(name: str, frames: dict, objective, stats: dict, plan, min_trades: int = 0) -> dict:
    """What phase_summary.json holds: counts, events, the top rows, ranking rule, overfitting and OOS blocks."""
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
    if m.height and "trades" in m.columns and objective.metric in m.columns:
        excluded = int((m["trades"] < min_trades).sum())
        out["ranking"] = {
            "objective": objective.metric,
            "min_trades": min_trades,
            "excluded": excluded,
            "note": f"{excluded:,} of {m.height:,} rows have fewer than {min_trades} trades and rank after all others"
            if excluded
            else f"every row has at least {min_trades} trades",
        }
    if m.height and objective.metric in m.columns:
        top = _ordered(m, objective, min_trades).head(5)
        out["top"] = top.to_dicts()
    for key in ("overfitting", "plausibility", "out_of_sample", "windows", "untested_bars", "buy_and_hold", "signals"):
        if stats.get(key) is not None and stats.get(key) != []:
            out[key] = stats[key]
    return out


def aggregate(m: pl.DataFrame, objective, min_trades: int = 0) -> dict:
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
    best = _ordered(m, objective, min_trades).head(1).to_dicts()[0] if objective.metric in m.columns else None
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
