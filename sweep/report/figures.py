"""The report's figures, one function each: tables of a run in, a plotly Figure out.

Every function is pure (it reads the frames it is given) so the report, the
notebook helpers (``res.plot``) and the tests build the same figures.  Long
series are downsampled for display by keeping each bucket's minimum and
maximum (``minmax_indices``), so peaks and troughs survive.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

DISPLAY_POINTS = 2000  # buckets of a downsampled series (two points each at most)
EQUITY_POINTS = 600  # buckets per curve when several curves share a chart
MAX_TRADE_MARKERS = 2000  # the most recent trades drawn over the price
AGGREGATIONS = ("max", "median", "mean", "min")


def minmax_indices(y: np.ndarray, buckets: int = DISPLAY_POINTS) -> np.ndarray:
    """Positions to keep so a line of ``y`` keeps its shape: first, last, and each bucket's min and max.

    Example:
        >>> minmax_indices(np.array([0.0, 5, 1, 9, 2, 2, 8, 0]), buckets=2).tolist()
        [0, 3, 6, 7]
    """
    y = np.asarray(y, dtype=np.float64)
    n = y.size
    if n <= 2 * buckets:
        return np.arange(n)
    edges = np.linspace(0, n, buckets + 1).astype(np.int64)
    keep = [0, n - 1]
    for a, b in zip(edges[:-1], edges[1:]):
        if b > a:
            seg = y[a:b]
            if np.isnan(seg).all():
                keep.append(a)
                continue
            keep += [a + int(np.nanargmin(seg)), a + int(np.nanargmax(seg))]
    return np.unique(np.array(keep, dtype=np.int64))


def _ms(t) -> np.ndarray:
    """Timestamps as milliseconds since the epoch (float64): a date axis reads them, and they travel as binary."""
    a = t.to_numpy() if isinstance(t, pl.Series) else np.asarray(t)
    if a.dtype.kind == "M":
        a = a.astype("datetime64[ns]").astype(np.int64)
    return a.astype(np.float64) / 1e6


def _f32(y) -> np.ndarray:
    return np.asarray(y, dtype=np.float32)


def _layout(fig: go.Figure, title: str, height: int = 420) -> go.Figure:
    fig.update_layout(title=title, height=height, margin={"l": 60, "r": 20, "t": 50, "b": 40}, template="plotly_white")
    return fig


def _label(col: str) -> str:
    return col.split(".", 1)[1] if "." in col else col


def surface(metrics: pl.DataFrame, x: str, y: str, objective: str, agg: str = "max") -> pl.DataFrame:
    """The objective over (x, y), every other parameter aggregated by ``agg``: columns x, y, value."""
    if agg not in AGGREGATIONS:
        raise ValueError(f"aggregation {agg!r}: use one of {', '.join(AGGREGATIONS)}")
    m = metrics.filter(pl.col(objective).is_not_nan() & pl.col(objective).is_not_null())
    expr = getattr(pl.col(objective), agg)().alias("value")
    return m.group_by([x, y]).agg(expr).sort([x, y])


def heatmap(metrics: pl.DataFrame, x: str, y: str, objective: str, agg: str = "max") -> go.Figure:
    """Heatmap of the objective over two parameters (the others aggregated by ``agg``, said in the title)."""
    s = surface(metrics, x, y, objective, agg)
    xs = sorted(s[x].unique().to_list())
    ys = sorted(s[y].unique().to_list())
    grid = np.full((len(ys), len(xs)), np.nan)
    xi = {v: i for i, v in enumerate(xs)}
    yi = {v: i for i, v in enumerate(ys)}
    for a, b, v in s.iter_rows():
        grid[yi[b], xi[a]] = v
    fig = go.Figure(
        go.Heatmap(
            z=grid,
            x=[str(v) for v in xs],
            y=[str(v) for v in ys],
            colorscale="RdYlGn",
            colorbar={"title": objective},
            hovertemplate=f"{_label(x)}=%{{x}}<br>{_label(y)}=%{{y}}<br>{objective}=%{{z:.4g}}<extra></extra>",
        )
    )
    fig.update_xaxes(title=_label(x), type="category")
    fig.update_yaxes(title=_label(y), type="category")
    others = "" if len(metrics.columns) == 0 else f" ({agg} over the other parameters)"
    return _layout(fig, f"{objective} over {_label(x)} x {_label(y)}{others}")


def profile(metrics: pl.DataFrame, param: str, objective: str) -> go.Figure:
    """The objective against one parameter: max, median and min over everything else."""
    m = metrics.filter(pl.col(objective).is_not_nan() & pl.col(objective).is_not_null())
    g = m.group_by(param).agg(
        pl.col(objective).max().alias("max"),
        pl.col(objective).median().alias("median"),
        pl.col(objective).min().alias("min"),
    )
    g = g.sort(param)
    xs = [str(v) for v in g[param].to_list()]
    fig = go.Figure()
    for k, dash in (("max", None), ("median", "dash"), ("min", "dot")):
        fig.add_trace(go.Scatter(x=xs, y=g[k].to_list(), mode="lines+markers", name=k, line={"dash": dash}))
    fig.update_xaxes(title=_label(param), type="category")
    fig.update_yaxes(title=objective)
    return _layout(fig, f"{objective} by {_label(param)}", height=320)


def equity(curves: dict[str, pl.DataFrame], buy_hold: pl.DataFrame | None = None) -> go.Figure:
    """Equity and drawdown (under water) of some combinations, with buy-and-hold of the same bars.

    ``curves``: label -> frame with timestamp and equity; ``buy_hold``: timestamp and close (scaled to the
    first curve's starting equity).
    """
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3], vertical_spacing=0.04)
    start = None
    for label, f in curves.items():
        if not f.height:
            continue
        e = f["equity"].to_numpy()
        start = e[0] if start is None else start
        dd = e / np.maximum.accumulate(e) - 1.0
        t = _ms(f["timestamp"])
        k = np.unique(np.r_[minmax_indices(e, EQUITY_POINTS), minmax_indices(dd, EQUITY_POINTS)])
        fig.add_trace(go.Scatter(x=t[k], y=_f32(e[k]), mode="lines", name=label, legendgroup=label), row=1, col=1)
        fig.add_trace(
            go.Scatter(x=t[k], y=_f32(dd[k]), mode="lines", name=label, legendgroup=label, showlegend=False),
            row=2,
            col=1,
        )
    if buy_hold is not None and buy_hold.height and start is not None:
        c = buy_hold["close"].to_numpy()
        e = start * c / c[0]
        dd = c / np.maximum.accumulate(c) - 1.0
        t = _ms(buy_hold["timestamp"])
        k = np.unique(np.r_[minmax_indices(e, EQUITY_POINTS), minmax_indices(dd, EQUITY_POINTS)])
        style = {"color": "gray", "dash": "dot"}
        fig.add_trace(go.Scatter(x=t[k], y=_f32(e[k]), mode="lines", name="buy and hold", line=style), row=1, col=1)
        fig.add_trace(
            go.Scatter(x=t[k], y=_f32(dd[k]), mode="lines", name="buy and hold", line=style, showlegend=False),
            row=2,
            col=1,
        )
    fig.update_xaxes(type="date")
    fig.update_yaxes(title="equity", row=1, col=1)
    fig.update_yaxes(title="drawdown", tickformat=".0%", row=2, col=1)
    return _layout(fig, "Equity and drawdown against buy-and-hold (min/max per display bucket)", height=560)


def trades_over_price(prices: pl.DataFrame, trades: pl.DataFrame, label: str = "") -> go.Figure:
    """The price (close) with a combination's entries and exits; the most recent MAX_TRADE_MARKERS trades."""
    c = prices["close"].to_numpy()
    t = _ms(prices["timestamp"])
    k = minmax_indices(c)
    fig = go.Figure(go.Scatter(x=t[k], y=_f32(c[k]), mode="lines", name="close", line={"color": "#444"}))
    shown = trades.tail(MAX_TRADE_MARKERS) if trades.height else trades
    if shown.height:
        long = shown["direction"] == "long"
        for side, mask, symbol_in in (("long", long, "triangle-up"), ("short", ~long, "triangle-down")):
            part = shown.filter(mask)
            if part.height:
                fig.add_trace(
                    go.Scatter(
                        x=_ms(part["entry_time"]),
                        y=_f32(part["entry_price"]),
                        mode="markers",
                        name=f"{side} entry",
                        marker={"symbol": symbol_in, "size": 8, "color": "green" if side == "long" else "red"},
                    )
                )
        closed = shown.filter(pl.col("status") == "closed")
        if closed.height:
            fig.add_trace(
                go.Scatter(
                    x=_ms(closed["exit_time"]),
                    y=_f32(closed["exit_price"]),
                    mode="markers",
                    name="exit",
                    marker={"symbol": "x", "size": 7, "color": "black"},
                )
            )
    note = f" (last {MAX_TRADE_MARKERS:,} of {trades.height:,})" if trades.height > MAX_TRADE_MARKERS else ""
    fig.update_xaxes(type="date")
    return _layout(fig, f"Trades of {label} over the price{note}", height=460)


def pnl_histogram(trades: pl.DataFrame, label: str = "") -> go.Figure:
    """Distribution of closed trades' net P&L."""
    closed = trades.filter(pl.col("status") == "closed") if trades.height else trades
    fig = go.Figure(go.Histogram(x=closed["pnl"].to_list() if closed.height else [], nbinsx=60, name="P&L"))
    fig.update_xaxes(title="net P&L per trade")
    fig.update_yaxes(title="trades")
    return _layout(fig, f"Trade P&L of {label} ({closed.height:,} closed trades)", height=340)


def regimes(table: pl.DataFrame, ids: list[int], labels: dict[int, str]) -> go.Figure:
    """Sharpe and return per regime of some combinations (bar returns by the regime in force)."""
    t = table.filter(pl.col("combo_id").is_in(ids))
    fig = make_subplots(rows=1, cols=2, subplot_titles=("sharpe_in_regime", "return_in_regime"))
    for cid in ids:
        part = t.filter(pl.col("combo_id") == cid)
        if not part.height:
            continue
        name = labels.get(cid, str(cid))
        fig.add_trace(
            go.Bar(x=part["regime"].to_list(), y=part["sharpe_in_regime"].to_list(), name=name, legendgroup=name),
            row=1,
            col=1,
        )
        fig.add_trace(
            go.Bar(
                x=part["regime"].to_list(),
                y=part["return_in_regime"].to_list(),
                name=name,
                legendgroup=name,
                showlegend=False,
            ),
            row=1,
            col=2,
        )
    fig.update_layout(barmode="group")
    return _layout(fig, "Per-regime results of the best combinations", height=380)


def train_vs_test(train: pl.DataFrame, test: pl.DataFrame, objective: str) -> go.Figure:
    """The objective in test against train for the combinations the test phase traded."""
    keys = [c for c in ("combo_id", "symbol", "window") if c in train.columns and c in test.columns]
    j = test.select(*keys, pl.col(objective).alias("test")).join(
        train.select(*keys, pl.col(objective).alias("train")), on=keys, how="inner"
    )
    fig = go.Figure(
        go.Scatter(
            x=j["train"].to_list(),
            y=j["test"].to_list(),
            mode="markers",
            text=[f"combo {c}" for c in j["combo_id"].to_list()],
            name="combinations",
        )
    )
    if j.height:
        lo = float(min(j["train"].min(), j["test"].min()))
        hi = float(max(j["train"].max(), j["test"].max()))
        fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="test = train", line={"dash": "dot"}))
    fig.update_xaxes(title=f"train {objective}")
    fig.update_yaxes(title=f"test {objective}")
    return _layout(fig, f"Train vs test {objective} of the train winners", height=420)


def stitched(equity_table: pl.DataFrame) -> go.Figure:
    """The stitched out-of-sample growth of walk-forward test windows (each window's train winner, chained)."""
    e = equity_table.drop_nulls("stitched_growth").sort("bar") if "stitched_growth" in equity_table.columns else None
    fig = go.Figure()
    if e is not None and e.height:
        for sym in e["symbol"].unique().sort().to_list():
            part = e.filter(pl.col("symbol") == sym)
            g = part["stitched_growth"].to_numpy()
            t = _ms(part["timestamp"])
            k = minmax_indices(g)
            fig.add_trace(go.Scatter(x=t[k], y=_f32(g[k]), mode="lines", name=f"{sym} out of sample"))
    fig.update_xaxes(type="date")
    fig.update_yaxes(title="growth of 1")
    return _layout(fig, "Stitched out-of-sample equity (walk-forward test windows)", height=380)


def bootstrap(resample: pl.DataFrame, prefix: str = "total_return") -> go.Figure:
    """Bootstrap distribution of a metric per resampled combination: median with its 5-95 % range."""
    lo, mid, hi = (f"{prefix}_p{q}" for q in (5, 50, 95))
    fig = go.Figure()
    if {lo, mid, hi} <= set(resample.columns):
        r = resample.drop_nulls(mid)
        med = r[mid].to_numpy()
        fig.add_trace(
            go.Scatter(
                x=[f"combo {c}" for c in r["combo_id"].to_list()],
                y=med,
                mode="markers",
                name="median (5-95 %)",
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": (r[hi].to_numpy() - med).tolist(),
                    "arrayminus": (med - r[lo].to_numpy()).tolist(),
                },
            )
        )
    fig.update_yaxes(title=prefix)
    return _layout(fig, f"Bootstrap distribution of {prefix} (median, 5-95 % range)", height=380)


def logit_histogram(block: dict) -> go.Figure:
    """CSCV's logits of the in-sample winner's out-of-sample rank (PBO = share at or below 0)."""
    h = (block.get("cscv") or {}).get("logit_histogram") or {}
    edges, counts = h.get("edges") or [], h.get("counts") or []
    mids = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:])]
    colors = ["#c0392b" if m <= 0 else "#27ae60" for m in mids]
    fig = go.Figure(go.Bar(x=mids, y=counts, marker={"color": colors}, name="splits"))
    fig.update_xaxes(title="logit of the out-of-sample relative rank (<= 0: overfit)")
    fig.update_yaxes(title="CSCV splits")
    return _layout(fig, f"PBO {block.get('pbo', float('nan')):.2f} - logits of the best in-sample combination", 340)


def signal_changes(signals: pl.DataFrame) -> go.Figure:
    """How often each stored pair's signal or regime changes, by strategy."""
    fig = go.Figure()
    key = "strategy" if "strategy" in signals.columns else None
    groups = signals.partition_by(key, as_dict=True) if key and signals.height else {("all",): signals}
    for k, part in groups.items():
        fig.add_trace(go.Histogram(x=part["changes"].to_list() if part.height else [], name=str(k[0]), nbinsx=40))
    fig.update_layout(barmode="overlay")
    fig.update_traces(opacity=0.7)
    fig.update_xaxes(title="changes stored per signal pair")
    fig.update_yaxes(title="pairs")
    return _layout(fig, f"Stored signal changes of {signals.height:,} pairs", height=340)
