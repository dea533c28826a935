"""The statistics sheet of one combination, and buy-and-hold of the same bars.

``stats_sheet`` takes a combination's metrics row, its equity curve (with
the close of each bar) and its trades, and returns one row per statistic:
section, statistic, value, unit.  Sections: ``metrics`` (the run's own),
``trades`` (expectancy, best/worst, average and longest duration in bars and
days), ``drawdown`` (average and longest time under water, in bars and days),
``benchmark`` (buy-and-hold return, Sharpe and drawdown of the same bars;
beta, alpha, correlation of bar returns against it) and ``monthly`` (the
return of each calendar month, UTC).

Example:
    >>> import numpy as np, polars as pl
    >>> close = np.array([100.0, 101, 99, 102, 104])
    >>> round(buy_and_hold(close, 252.0)["return"], 4)
    0.04
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from containers.metrics import METRICS

DAY_NS = 86_400 * 10**9
UNITS = {
    "max_drawdown_duration": "bars",
    "avg_trade": "currency",
    "final_equity": "currency",
    "total_commission": "currency",
}


def buy_and_hold(close: np.ndarray, bars_per_year: float) -> dict:
    """Return, Sharpe (annualised, risk-free 0) and max drawdown of holding ``close`` from its first bar."""
    close = np.asarray(close, dtype=np.float64)
    if close.size < 2:
        return {"return": None, "sharpe": None, "max_drawdown": None}
    r = close[1:] / close[:-1] - 1.0
    sd = float(np.std(r, ddof=1)) if r.size > 1 else 0.0
    peak = np.maximum.accumulate(close)
    return {
        "return": float(close[-1] / close[0] - 1.0),
        "sharpe": float(np.mean(r) / sd * math.sqrt(bars_per_year)) if sd > 0 else None,
        "max_drawdown": float(np.max(1.0 - close / peak)),
    }


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of each run of True in ``mask``."""
    edges = np.flatnonzero(np.diff(np.r_[0, mask.astype(np.int8), 0]))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def _rows(section: str, items: list[tuple[str, float | None, str]]) -> list[dict]:
    return [
        {"section": section, "statistic": k, "value": None if v is None else float(v), "unit": u} for k, v, u in items
    ]


def _days(ns) -> float:
    return float(ns) / DAY_NS


def stats_sheet(metrics: dict, equity: pl.DataFrame, trades: pl.DataFrame, bars_per_year: float) -> pl.DataFrame:
    """One combination's statistics (see the module docs) for one symbol and window."""
    rows = _rows("metrics", [(k, metrics.get(k), UNITS.get(k, "")) for k in METRICS if k in metrics])
    closed = trades.filter(pl.col("status") == "closed") if trades.height else trades
    pnl = closed["pnl"].to_numpy() if closed.height else np.zeros(0)
    ret = closed["return"].to_numpy() if closed.height else np.zeros(0)
    held = closed["bars_held"].to_numpy() if closed.height else np.zeros(0)
    span = (
        (closed["exit_time"].cast(pl.Int64) - closed["entry_time"].cast(pl.Int64)).to_numpy()
        if closed.height
        else np.zeros(0)
    )
    wins, losses = pnl[pnl > 0], pnl[pnl <= 0]
    rows += _rows(
        "trades",
        [
            ("closed", float(pnl.size), ""),
            ("open", float(trades.height - closed.height), ""),
            ("expectancy", float(pnl.mean()) if pnl.size else None, "currency per trade"),
            ("average_win", float(wins.mean()) if wins.size else None, "currency"),
            ("average_loss", float(losses.mean()) if losses.size else None, "currency"),
            ("best_trade", float(pnl.max()) if pnl.size else None, "currency"),
            ("worst_trade", float(pnl.min()) if pnl.size else None, "currency"),
            ("best_trade_return", float(ret.max()) if ret.size else None, ""),
            ("worst_trade_return", float(ret.min()) if ret.size else None, ""),
            ("average_duration", float(held.mean()) if held.size else None, "bars"),
            ("average_duration_days", _days(span.mean()) if span.size else None, "days"),
            ("longest_duration", float(held.max()) if held.size else None, "bars"),
            ("longest_duration_days", _days(span.max()) if span.size else None, "days"),
        ],
    )
    eq = equity["equity"].to_numpy()
    ts = equity["timestamp"].cast(pl.Int64).to_numpy()
    peak = np.maximum.accumulate(eq) if eq.size else eq
    under = _runs(eq < peak) if eq.size else []
    # a period under water runs from the last peak (the bar before it starts) to the bar that recovers it
    bars_under = [b - a for a, b in under]
    time_under = [ts[min(b, len(ts) - 1)] - ts[max(a - 1, 0)] for a, b in under]
    rows += _rows(
        "drawdown",
        [
            ("max_drawdown", float(np.max(1.0 - eq / peak)) if eq.size else None, ""),
            ("periods", float(len(under)), ""),
            ("average_duration", float(np.mean(bars_under)) if under else 0.0, "bars"),
            ("average_duration_days", _days(np.mean(time_under)) if under else 0.0, "days"),
            ("longest_duration", float(max(bars_under)) if under else 0.0, "bars"),
            ("longest_duration_days", _days(max(time_under)) if under else 0.0, "days"),
        ],
    )
    close = equity["close"].to_numpy() if "close" in equity.columns else np.zeros(0)
    bh = buy_and_hold(close, bars_per_year)
    bench = [
        ("buy_and_hold_return", bh["return"], ""),
        ("buy_and_hold_sharpe", bh["sharpe"], ""),
        ("buy_and_hold_max_drawdown", bh["max_drawdown"], ""),
    ]
    if close.size > 2 and eq.size == close.size:
        r = eq[1:] / eq[:-1] - 1.0
        rb = close[1:] / close[:-1] - 1.0
        var_b = float(np.var(rb, ddof=1))
        beta = float(np.cov(r, rb, ddof=1)[0, 1] / var_b) if var_b > 0 else None
        alpha = float((r.mean() - beta * rb.mean()) * bars_per_year) if beta is not None else None
        sd, sdb = float(np.std(r, ddof=1)), float(np.std(rb, ddof=1))
        corr = float(np.corrcoef(r, rb)[0, 1]) if sd > 0 and sdb > 0 else None
        bench += [("beta", beta, ""), ("alpha", alpha, "per year"), ("correlation", corr, "")]
    rows += _rows("benchmark", bench)
    if eq.size:
        month = equity.select(pl.col("timestamp").dt.strftime("%Y-%m").alias("m"))["m"].to_numpy()
        last = np.r_[np.flatnonzero(month[1:] != month[:-1]), eq.size - 1]  # last bar of each month
        prev = np.r_[eq[0], eq[last[:-1]]]
        rows += _rows("monthly", [(str(month[k]), float(eq[k] / p - 1.0), "") for k, p in zip(last, prev)])
    return pl.DataFrame(rows, schema={"section": pl.Utf8, "statistic": pl.Utf8, "value": pl.Float64, "unit": pl.Utf8})
