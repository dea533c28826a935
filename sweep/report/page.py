"""The HTML report of a run: one self-contained file (plotly.js inside it once; no network request).

Sections: overview (config as YAML, data, combinations, wall time, workflow
and phases), then per phase the ranking table, the luck block with the CSCV
logit histogram, the parameter surface (a heatmap for every pair of varying
parameters of one strategy, a profile per parameter), equity and drawdown of
the top combinations against buy-and-hold, the best combination's trades
over the price and their P&L distribution, per-regime results, and the
workflow views (train vs test, the walk-forward windows and stitched
out-of-sample equity, bootstrap distributions).  Table cells carry their exact
value in ``data-value`` so tests compare them with the Parquet files.
"""

from __future__ import annotations

import html
import itertools
import math

import plotly.io as pio
import polars as pl
import yaml
from plotly.offline import get_plotlyjs

from . import figures as F

MAIN_METRICS = ("sharpe", "total_return", "sortino", "max_drawdown", "calmar", "trades", "win_rate", "profit_factor")
CONFIG = {"displaylogo": False, "responsive": True}
MAX_SURFACES = 45  # heatmaps per strategy (every pair of up to ten varying parameters); beyond, the rest are named


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        return f"{v:,.4g}" if abs(v) < 1e6 else f"{v:,.0f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return html.escape(str(v))


def table(df: pl.DataFrame, cols: list[str], cls: str = "") -> str:
    """An HTML table; every cell keeps its exact value in data-value."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    rows = []
    for r in df.select(cols).iter_rows(named=True):
        cells = "".join(
            f'<td data-col="{html.escape(c)}" data-value="{html.escape(repr(r[c]))}">{_fmt(r[c])}</td>' for c in cols
        )
        rows.append(f"<tr>{cells}</tr>")
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def kv(items: list[tuple[str, object]]) -> str:
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{_fmt(v)}</td></tr>" for k, v in items)
    return f'<table class="kv">{rows}</table>'


class Page:
    """Sections and figures in order; ``render`` makes the file."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.parts: list[str] = []
        self.n_figures = 0

    def h(self, text: str, level: int = 2) -> None:
        self.parts.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def p(self, text: str, cls: str = "") -> None:
        self.parts.append(f'<p class="{cls}">{html.escape(text)}</p>')

    def raw(self, markup: str) -> None:
        self.parts.append(markup)

    def figure(self, fig, name: str) -> None:
        self.n_figures += 1
        div = pio.to_html(fig, full_html=False, include_plotlyjs=False, config=CONFIG, div_id=f"fig-{self.n_figures}")
        self.parts.append(f'<div class="chart" data-chart="{html.escape(name)}">{div}</div>')

    def render(self) -> str:
        style = (
            "body{font-family:system-ui,sans-serif;margin:24px auto;max-width:1200px;color:#222}"
            "table{border-collapse:collapse;margin:8px 0 16px;font-size:13px}"
            "th,td{border:1px solid #ddd;padding:3px 8px;text-align:right}th{background:#f4f4f4}"
            "table.kv th{text-align:left}pre{background:#f7f7f7;padding:10px;overflow:auto;font-size:12px}"
            ".warn{background:#fff3cd;padding:8px;border:1px solid #e0c36c}.note{color:#555}"
            ".chart{margin:10px 0 24px}"
        )
        return (
            f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(self.title)}</title>"
            f"<style>{style}</style><script type='text/javascript'>{get_plotlyjs()}</script></head>"
            f"<body><h1>{html.escape(self.title)}</h1>{''.join(self.parts)}</body></html>"
        )


def _param_groups(m: pl.DataFrame) -> list[tuple[str, list[str]]]:
    """Per strategy type: its parameters that vary (numeric or not) among its rows."""
    out = []
    key = "strategy" if "strategy" in m.columns else None
    groups = m.partition_by(key, as_dict=True) if key else {("all",): m}
    for k, part in groups.items():
        cols = [
            c
            for c in part.columns
            if "." in c
            and not c.startswith(("portfolio", "execution"))
            and part[c].null_count() < part.height
            and part[c].drop_nulls().n_unique() > 1
        ]
        cols += [c for c in part.columns if c.startswith(("portfolio.", "execution.")) and part[c].n_unique() > 1]
        if cols:
            out.append((str(k[0]), cols))
    return out


def _plan(res) -> dict:
    import json

    f = res.path / "plan.json" if res.path else None
    try:
        return json.loads(f.read_text()) if f is not None and f.is_file() else {}
    except (OSError, ValueError):
        return {}


def overview(page: Page, res) -> None:
    man = res.manifest
    status = man.get("status")
    if status != "complete":
        done = [p for p, s in (man.get("phases") or {}).items() if s == "complete"]
        missing = [p for p in man.get("phase_order", []) if p not in done]
        page.raw(
            f'<p class="warn">This run is {html.escape(str(status))}: the report shows what exists. '
            f"Missing phases: {html.escape(', '.join(missing) or 'none')}. "
            f"{html.escape(str(man.get('error', '')))}</p>"
        )
    page.h("Overview")
    cfg = man.get("config", {})
    wf = cfg.get("workflow", {})
    items = [
        ("run", man.get("run_id")),
        ("config", man.get("source")),
        ("workflow", wf.get("type") if isinstance(wf, dict) else wf),
        ("phases", ", ".join(man.get("phase_order", []))),
        ("combinations", _plan(res).get("combinations") or res.metrics.height),
        ("wall time (s)", man.get("seconds")),
        ("bar-combinations", man.get("bar_combinations")),
        ("engine", man.get("engine")),
        ("objective", f"{res.objective[1]} {res.objective[0]}"),
    ]
    page.raw(kv(items))
    data = pl.DataFrame(man.get("data") or [])
    if data.height:
        page.h("Data", 3)
        cols = [
            c for c in ("symbol", "source", "bars", "first", "last", "bars_per_day", "fingerprint") if c in data.columns
        ]
        page.raw(table(data, cols))
    for w in man.get("warnings") or []:
        page.p(f"warning: {w}", "warn")
    page.h("Config", 3)
    text = yaml.safe_dump(man.get("raw_config", {}), sort_keys=False, default_flow_style=None, width=110)
    page.raw(f"<pre>{html.escape(text)}</pre>")


def ranking_section(page: Page, res, phase: str, agg: str, top: int) -> None:
    m = res.table("metrics", phase)
    metric = res.objective[0]
    if not m.height or metric not in m.columns:
        return
    best = res.best(top, phase=phase)
    page.h(f"Phase {phase}: the top {best.height} of {m.height:,} by {metric}", 3)
    params = [c for _, cols in _param_groups(m) for c in cols]
    ident = [c for c in ("combo_id", "symbol", "window", "strategy", "classifier") if c in best.columns]
    page.raw(
        table(best, list(dict.fromkeys(ident + params + [c for c in MAIN_METRICS if c in best.columns])), "ranking")
    )
    summary = res.summary(phase)
    for block in summary.get("overfitting") or []:
        page.p(block.get("sentence", ""))
        hold = block.get("vs_buy_and_hold") or {}
        page.raw(
            kv(
                [
                    ("deflated Sharpe (vs doing nothing)", block.get("deflated_sharpe")),
                    ("PBO", block.get("pbo")),
                    ("SPA p (vs doing nothing)", block.get("spa_p")),
                    ("Reality Check p (vs doing nothing)", block.get("reality_check_p")),
                    *(
                        [
                            ("deflated Sharpe (vs buy-and-hold, of excess returns)", hold.get("deflated_sharpe")),
                            ("SPA p (vs buy-and-hold)", hold.get("spa_p")),
                            ("Reality Check p (vs buy-and-hold)", hold.get("reality_check_p")),
                        ]
                        if hold
                        else []
                    ),
                    ("combinations", block.get("combinations")),
                    ("distinct results", block.get("trials")),
                    ("blocks", block.get("blocks")),
                    ("block", block.get("block")),
                ]
            )
        )
        if (block.get("cscv") or {}).get("logit_histogram"):
            page.figure(F.logit_histogram(block), f"logits-{phase}-{block.get('symbol')}-{block.get('window')}")
    for strategy, cols in _param_groups(m):
        rows = m.filter(pl.col("strategy") == strategy) if "strategy" in m.columns else m
        pairs = list(itertools.combinations(cols, 2))
        page.h(f"Parameter surface: {strategy} ({agg} of {metric} over the other parameters and windows)", 4)
        for x, y in pairs[:MAX_SURFACES]:
            page.figure(F.heatmap(rows, x, y, metric, agg), f"heatmap-{phase}-{x}-{y}")
        if len(pairs) > MAX_SURFACES:
            page.p(
                f"{len(pairs) - MAX_SURFACES} more pairs not drawn: res.plot.heatmap(x, y) draws any of them", "note"
            )
        for c in cols:
            page.figure(F.profile(rows, c, metric), f"profile-{phase}-{c}")
    windowed = "window" in m.columns and m["window"].n_unique() > 1
    if windowed:
        page.p("Windowed phase: equity curves are shown for its test phase (stitched out of sample).", "note")
        return
    ids = [int(c) for c in best["combo_id"].to_list()]
    symbol = str(best["symbol"][0]) if "symbol" in best.columns else None
    curves = res.curves(ids, symbol=symbol, phase=phase)
    if curves.height:
        by = {f"combo {c}": curves.filter(pl.col("combo_id") == c).sort("bar") for c in ids}
        first = next(iter(by.values()))
        bh = first.select("timestamp", "close") if "close" in first.columns else None
        page.h(f"Equity of the top {len(ids)} ({symbol}) against buy-and-hold", 4)
        page.figure(F.equity(by, bh), f"equity-{phase}")
        bh_rows = [b for b in summary.get("buy_and_hold") or [] if b.get("symbol") == symbol]
        if bh_rows:
            b = bh_rows[0]
            page.raw(
                kv(
                    [
                        ("buy-and-hold return", b.get("return")),
                        ("buy-and-hold Sharpe", b.get("sharpe")),
                        ("buy-and-hold max drawdown", b.get("max_drawdown")),
                    ]
                )
            )
        trades = res.trades(ids[0], symbol=symbol, phase=phase)
        page.h(f"The best combination's trades (combo {ids[0]})", 4)
        page.figure(
            F.trades_over_price(first.select("timestamp", "close"), trades, f"combo {ids[0]}"), f"trades-{phase}"
        )
        page.figure(F.pnl_histogram(trades, f"combo {ids[0]}"), f"pnl-{phase}")
    reg = res.table("regimes", phase)
    if reg.height:
        page.h("Per regime", 4)
        page.figure(F.regimes(reg, ids[:5], {c: f"combo {c}" for c in ids}), f"regimes-{phase}")


def test_section(page: Page, res, phase: str, uses: str) -> None:
    m = res.table("metrics", phase)
    metric = res.objective[0]
    if not m.height:
        return
    page.h(f"Phase {phase}: the picks of {uses} on the bars after it", 3)
    cols = [c for c in ("window", "combo_id", "symbol", f"{uses}_rank", "strategy") if c in m.columns]
    cols += [c for c in MAIN_METRICS if c in m.columns]
    page.raw(table(m.sort([c for c in ("window", f"{uses}_rank") if c in m.columns]), cols, "test"))
    train = res.table("metrics", uses)
    if train.height and metric in train.columns:
        page.figure(F.train_vs_test(train, m, metric), f"train-test-{phase}")
    for o in res.summary(phase).get("out_of_sample") or []:
        page.raw(kv([(k, v) for k, v in o.items() if not isinstance(v, (list, dict))]))
    eq = res.table("equity", phase)
    if eq.height and "stitched_growth" in eq.columns:
        page.figure(F.stitched(eq), f"stitched-{phase}")


def resample_section(page: Page, res, phase: str) -> None:
    m = res.table("metrics", phase)
    if not m.height:
        return
    page.h(f"Phase {phase}: bootstrap of the selected combinations", 3)
    cols = [
        c
        for c in m.columns
        if c
        in ("combo_id", "symbol", "method", "samples", "deflated_sharpe", "prob_loss", "selected_in", "resampled_on")
        or c.endswith(("_p5", "_p50", "_p95"))
    ]
    page.raw(table(m, cols, "resample"))
    for prefix in ("total_return", "sharpe", "max_drawdown"):
        page.figure(F.bootstrap(m, prefix), f"bootstrap-{phase}-{prefix}")


def signals_section(page: Page, res, phase: str) -> None:
    for s in res.summary(phase).get("signals") or []:
        page.h(f"Phase {phase}: stored signals ({s['symbol']})", 3)
        page.raw(kv([(k, v) for k, v in s.items()]))
    sig = res.table("signals", phase)
    if sig.height and "changes" in sig.columns:
        page.figure(F.signal_changes(sig), f"signals-{phase}")


def build(res, agg: str = "max", top: int | None = None) -> tuple[str, int]:
    """(HTML text, number of charts) of a run's report."""
    if agg not in F.AGGREGATIONS:
        raise ValueError(f"aggregation {agg!r}: use one of {', '.join(F.AGGREGATIONS)}")
    man = res.manifest
    page = Page(f"sweep report: {man.get('name', 'run')} ({man.get('run_id', '')})")
    overview(page, res)
    top = top or max(1, int((man.get("config") or {}).get("top_k", 10) or 10))
    done = {p for p, s in (man.get("phases") or {}).items() if s == "complete"} or set(res.phases)
    for phase in res.phases:
        if phase not in done:
            page.p(f"Phase {phase}: not complete - nothing to show.", "warn")
            continue
        m = res.table("metrics", phase)
        summary = res.summary(phase)
        if summary.get("signals"):
            signals_section(page, res, phase)
        elif "samples" in m.columns:
            resample_section(page, res, phase)
        elif any(c.endswith("_rank") for c in m.columns):
            test_section(page, res, phase, next(c[: -len("_rank")] for c in m.columns if c.endswith("_rank")))
        else:
            ranking_section(page, res, phase, agg, top)
    return page.render(), page.n_figures
