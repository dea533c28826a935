"""`sweep show RUN_DIR COMBO_ID`: the full statistics sheet of one combination (``RunResult.stats``)."""

from __future__ import annotations

import json

import polars as pl

from containers.metrics import METRICS

PERCENT = {
    "total_return",
    "cagr",
    "max_drawdown",
    "win_rate",
    "avg_trade_return",
    "exposure",
    "best_trade_return",
    "worst_trade_return",
    "buy_and_hold_return",
    "buy_and_hold_max_drawdown",
    "alpha",
}


def _value(stat: str, v, unit: str) -> str:
    if v is None or v != v:
        return "-"
    if stat in PERCENT or unit == "" and stat[:4].isdigit():
        return f"{v * 100:,.2f} %"
    if unit in ("bars", "") and float(v).is_integer():
        return f"{int(v):,}" + (" bars" if unit == "bars" else "")
    return f"{v:,.4g}" + (f" {unit}" if unit else "")


def describe(row: dict) -> str:
    """The services and parameters of a metrics row, as one line."""
    skip = set(METRICS) | {
        "combo_id",
        "combo_hash",
        "symbol",
        "window",
        "flags",
        "first_bar",
        "first_time",
        "bars_scored",
        "fills",
        "open_position",
        "strategy_entry",
        "classifier_entry",
    }
    parts = [f"{k}={v}" for k, v in row.items() if k not in skip and v is not None and v != ""]
    return ", ".join(parts)


def cmd_show(args) -> int:
    from .runner import open_results

    res = open_results(args.dir)
    sheet = res.stats(args.combo_id, symbol=args.symbol, phase=args.phase)
    if args.json:
        print(json.dumps(sheet.to_dicts(), indent=2))
        return 0
    phase = args.phase or res.main_phase
    m = res.table("metrics", phase).filter(pl.col("combo_id") == args.combo_id)
    for (symbol, window), part in sheet.group_by(["symbol", "window"], maintain_order=True):
        row = m.filter(pl.col("symbol") == symbol).row(0, named=True) if m.height else {}
        where = f", window {window}" if "window" in m.columns else ""
        print(f"combination {args.combo_id} (phase {phase}, {symbol}{where}): {describe(row)}")
        if row.get("combo_hash"):
            print(f"  hash {row['combo_hash']}, scored from {row.get('first_time')} ({row.get('bars_scored'):,} bars)")
        for section in ("metrics", "trades", "drawdown", "benchmark"):
            rows = part.filter(pl.col("section") == section)
            print(f"\n{section}")
            for r in rows.iter_rows(named=True):
                print(f"  {r['statistic']:<28} {_value(r['statistic'], r['value'], r['unit']):>18}")
        months = part.filter(pl.col("section") == "monthly")
        if months.height:
            print("\nmonthly returns")
            by_year: dict[str, list[str]] = {}
            for r in months.iter_rows(named=True):
                year, month = r["statistic"].split("-")
                by_year.setdefault(year, [""] * 12)[int(month) - 1] = f"{r['value'] * 100:.2f}"
            names = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
            print("  year " + " ".join(f"{n:>7}" for n in names))
            for year, vals in by_year.items():
                print(f"  {year} " + " ".join(f"{v:>7}" for v in vals))
        print()
    return 0


def cmd_report(args) -> int:
    from .report import write_report
    from .runner import open_results

    path = write_report(open_results(args.dir), args.output, agg=args.agg, top=args.top)
    print(f"report: {path} ({path.stat().st_size / 2**20:.1f} MB, opens offline)")
    return 0


def add_command(sub) -> None:
    p = sub.add_parser("report", help="write a run's self-contained HTML report")
    p.add_argument("dir", help="a run folder, or a sweep folder (its newest run)")
    p.add_argument("-o", "--output", default=None, help="the HTML file (default: <run>/report.html)")
    p.add_argument("--agg", default="max", help="how heatmaps aggregate the other parameters: max, median, mean, min")
    p.add_argument("--top", type=int, default=None, help="combinations in the ranking and equity (default: top_k)")
    p.set_defaults(func=cmd_report)
    p = sub.add_parser("show", help="the full statistics sheet of one combination of a run")
    p.add_argument("dir", help="a run folder, or a sweep folder (its newest complete run)")
    p.add_argument("combo_id", type=int, help="combination id (metrics.parquet combo_id)")
    p.add_argument("--phase", default=None, help="phase (default: the first)")
    p.add_argument("--symbol", default=None, help="one symbol (default: each)")
    p.add_argument("--json", action="store_true", help="print the sheet as JSON rows")
    p.set_defaults(func=cmd_show)
