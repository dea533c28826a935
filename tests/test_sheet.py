"""`sweep show` / `res.stats`: every statistic against a hand-written computation from the run's own tables."""

from __future__ import annotations

import json
import math

import numpy as np
import polars as pl
import pytest

import sweep
from sweep.cli import main

GRID = "strategies:\n  - type: ma_crossover\n    parameters: {fast: [5, 10], slow: [40, 80]}\ntop_k: 2\n"


@pytest.fixture
def spy_run(shared_data, tmp_path):
    y = tmp_path / "s.yaml"
    y.write_text(f"name: s\ndata: {{path: {shared_data / 'SPY_5m.csv'}}}\n" + GRID)
    assert main(["run", str(y), "--results-dir", str(tmp_path), "--quiet"]) == 0
    return next((tmp_path / "s").iterdir())


def _sheet(capsys, *args) -> dict:
    capsys.readouterr()
    assert main(["show", *map(str, args), "--json"]) == 0
    return {(r["section"], r["statistic"]): r["value"] for r in json.loads(capsys.readouterr().out)}


def test_statistics_sheet_matches_a_hand_computation(spy_run, capsys):
    res = sweep.open_results(spy_run)
    cid = int(res.best(1)["combo_id"][0])
    got = _sheet(capsys, spy_run, cid)
    eq = res.equity(cid).sort("bar")
    tr = res.trades(cid)
    e, c = eq["equity"].to_list(), eq["close"].to_list()
    ts = [t.timestamp() for t in eq["timestamp"].to_list()]
    closed = [r for r in tr.iter_rows(named=True) if r["status"] == "closed"]
    pnl = [r["pnl"] for r in closed]
    assert got[("trades", "closed")] == len(closed) and got[("trades", "open")] == tr.height - len(closed)
    assert got[("trades", "expectancy")] == pytest.approx(sum(pnl) / len(pnl), rel=1e-12)
    assert got[("trades", "best_trade")] == max(pnl) and got[("trades", "worst_trade")] == min(pnl)
    held = [r["bars_held"] for r in closed]
    days = [(r["exit_time"] - r["entry_time"]).total_seconds() / 86400 for r in closed]
    assert got[("trades", "average_duration")] == pytest.approx(sum(held) / len(held), rel=1e-12)
    assert got[("trades", "longest_duration_days")] == pytest.approx(max(days), rel=1e-12)
    # drawdown periods, by walking the curve
    peak, start, periods = e[0], None, []
    for k, v in enumerate(e):
        if v >= peak:
            if start is not None:
                periods.append((start, k))
                start = None
            peak = v
        elif start is None:
            start = k
    if start is not None:
        periods.append((start, len(e)))
    assert got[("drawdown", "periods")] == len(periods)
    assert got[("drawdown", "longest_duration")] == max(b - a for a, b in periods)
    longest_days = max((ts[min(b, len(ts) - 1)] - ts[a - 1]) / 86400 for a, b in periods)
    assert got[("drawdown", "longest_duration_days")] == pytest.approx(longest_days, rel=1e-9)
    # buy-and-hold of the same bars, beta and alpha against it
    year = res.summary()["windows"][0]["bars_per_year"]
    rb = [c[k] / c[k - 1] - 1 for k in range(1, len(c))]
    r = [e[k] / e[k - 1] - 1 for k in range(1, len(e))]
    mb, mr = sum(rb) / len(rb), sum(r) / len(r)
    var_b = sum((x - mb) ** 2 for x in rb) / (len(rb) - 1)
    cov = sum((x - mr) * (y - mb) for x, y in zip(r, rb)) / (len(rb) - 1)
    assert got[("benchmark", "buy_and_hold_return")] == pytest.approx(c[-1] / c[0] - 1, rel=1e-12)
    assert got[("benchmark", "buy_and_hold_sharpe")] == pytest.approx(mb / math.sqrt(var_b) * math.sqrt(year), rel=1e-9)
    assert got[("benchmark", "beta")] == pytest.approx(cov / var_b, rel=1e-9)
    assert got[("benchmark", "alpha")] == pytest.approx((mr - cov / var_b * mb) * year, rel=1e-9)
    dd = max(1 - x / max(c[: k + 1]) for k, x in enumerate(c))
    assert got[("benchmark", "buy_and_hold_max_drawdown")] == pytest.approx(dd, rel=1e-12)
    # monthly returns compound to the whole curve's
    months = {k[1]: v for k, v in got.items() if k[0] == "monthly"}
    assert list(months) == sorted({t.strftime("%Y-%m") for t in eq["timestamp"].to_list()})
    assert np.prod([1 + v for v in months.values()]) == pytest.approx(e[-1] / e[0], rel=1e-12)
    assert got[("metrics", "sharpe")] == res.metrics.filter(pl.col("combo_id") == cid)["sharpe"][0]
    # the same numbers as a polars frame, and buy-and-hold in the phase summary
    frame = res.stats(cid)
    assert frame.filter(pl.col("statistic") == "beta")["value"][0] == got[("benchmark", "beta")]
    bh = json.loads((spy_run / "backtest" / "phase_summary.json").read_text())["buy_and_hold"][0]
    assert bh["return"] == pytest.approx(got[("benchmark", "buy_and_hold_return")], rel=1e-12)
    capsys.readouterr()
    assert main(["show", str(spy_run), str(cid)]) == 0
    out = capsys.readouterr().out
    assert "monthly returns" in out and "buy_and_hold_return" in out and f"combination {cid}" in out


def test_show_refuses_what_is_not_there(spy_run, tmp_path, capsys):
    assert main(["show", str(spy_run), "9999"]) == 2
    assert "no combination 9999" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["show", str(tmp_path / "empty"), "0"]) == 2
    assert "no results in" in capsys.readouterr().err


def test_windowed_phases_get_a_sheet_per_window(shared_data, tmp_path):
    y = tmp_path / "wf.yaml"
    y.write_text(
        f"name: wf\ndata: {{path: {shared_data / 'SPY_5m.csv'}}}\nworkflow: {{type: walk_forward, train: 6000, "
        "test: 3000}\n" + GRID
    )
    assert main(["run", str(y), "--results-dir", str(tmp_path), "--quiet"]) == 0
    res = sweep.open_results(tmp_path / "wf")
    cid = int(res.table("metrics", "test")["combo_id"][0])
    sheet = res.stats(cid, phase="test")
    windows = res.table("metrics", "test").filter(pl.col("combo_id") == cid)["window"].to_list()
    assert sorted(sheet["window"].unique().to_list()) == sorted(windows)
