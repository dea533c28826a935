"""Plain-text tables for the terminal."""

from __future__ import annotations

import math

import polars as pl

SHOWN_METRICS = ("total_return", "sharpe", "sortino", "max_drawdown", "trades", "win_rate", "profit_factor")


def format_bytes(n: float) -> str:
    """``1536`` -> ``1.5 KiB``: a size on disk or in memory, in binary units."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


def _cell(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return f"{v:.4g}" if abs(v) < 1e5 else f"{v:,.0f}"
    return str(v)


def varying(df: pl.DataFrame) -> list[str]:
    """Parameter columns (dotted names) that take more than one value, plus the entry columns when they do."""
    out = []
    for c in df.columns:
        if "." in c or c in ("strategy_entry", "classifier_entry", "active_regimes"):
            if df[c].n_unique() > 1:
                out.append(c)
    return out


def format_table(df: pl.DataFrame, objective: str | None = None, columns: list[str] | None = None) -> str:
    """Top rows with their identifying columns, every parameter that varies, and the main metrics.

    ``columns`` are the varying columns to show (from the whole table; by default from ``df`` itself).
    """
    if df.height == 0:
        return "(no rows)"
    ident = [c for c in ("combo_id", "symbol", "window", "strategy", "classifier") if c in df.columns]
    ident += [c for c in df.columns if c.endswith("_rank")]  # e.g. train_rank: where the test's combination ranked
    shown = varying(df) if columns is None else [c for c in columns if c in df.columns]
    entries = [c for c in ("strategy_entry", "classifier_entry", "active_regimes") if c in shown]
    params = [c for c in shown if c not in entries]
    metrics = [m for m in ((objective,) if objective else ()) + SHOWN_METRICS if m and m in df.columns]
    metrics = list(dict.fromkeys(metrics))
    cols = ident + entries + params + metrics
    rows = [[_cell(v) for v in r] for r in df.select(cols).iter_rows()]
    short = [c.split(".", 1)[1] if c.startswith("strategy.") else c.replace("classifier.", "c.") for c in cols]
    short = [
        {"strategy_entry": "entry", "classifier_entry": "c.entry", "active_regimes": "active"}.get(h, h) for h in short
    ]
    heads = [h if short.count(h) == 1 else c for h, c in zip(short, cols)]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(heads)]
    line = "  ".join(h.rjust(w) for h, w in zip(heads, widths))
    out = [line, "-" * len(line)]
    out += ["  ".join(v.rjust(w) for v, w in zip(r, widths)) for r in rows]
    return "\n".join(out)


RESAMPLE_COLUMNS = (
    "combo_id",
    "symbol",
    "samples",
    "deflated_sharpe",
    "total_return_p5",
    "total_return_p50",
    "total_return_p95",
    "max_drawdown_p95",
    "sharpe_p50",
    "prob_loss",
)


def format_resample(df: pl.DataFrame) -> str:
    """The Monte Carlo table: quantiles beside each combination's deflated Sharpe."""
    cols = [c for c in RESAMPLE_COLUMNS if c in df.columns]
    rows = [[_cell(v) for v in r] for r in df.select(cols).iter_rows()]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(cols)]
    line = "  ".join(h.rjust(w) for h, w in zip(cols, widths))
    return "\n".join([line, "-" * len(line)] + ["  ".join(v.rjust(w) for v, w in zip(r, widths)) for r in rows])
