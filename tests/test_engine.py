"""The fast engine: hand-computed scenarios and invariances (chunks, threads, subsets, buffers)."""

from __future__ import annotations

import numpy as np
import pytest

import sweep
import sweep.engine as engine_mod
from containers.data import load_universes
from sweep.engine import simulate

# open, close per bar; highs/lows wrap them.  sma(close,1) vs sma(close,2) = "close above previous close".
BARS = [(10, 10), (10, 11), (12, 12), (12, 11), (10, 10), (10, 10), (10, 12), (13, 13), (13, 13), (13, 12), (11, 11)]


def scenario(tmp_path, portfolio=None, execution=None, strategy=None, risk=None):
    lines = ["timestamp,open,high,low,close,volume"]
    for i, (o, c) in enumerate(BARS):
        lines.append(f"2024-01-02 15:{i:02d}:00,{o},{max(o, c) + 1},{min(o, c) - 1},{c},100")
    (tmp_path / "s.csv").write_text("\n".join(lines) + "\n")
    cfg = {
        "data": {"path": str(tmp_path / "s.csv")},
        "strategies": [strategy or {"type": "ma_crossover", "parameters": {"fast": 1, "slow": 2}}],
        "portfolio": {"initial_capital": 100_000, **(portfolio or {})},
        "execution": execution or {},
    }
    if risk:
        cfg["risk"] = risk
    plan = sweep.expand(cfg)
    u = load_universes(plan.config.data)[0]
    return simulate(plan, u, np.arange(plan.combinations), record_events=True, record_equity=True), plan


def test_next_open_fills_by_hand(tmp_path):
    res, _ = scenario(tmp_path)
    m = res.metrics
    # signals at the close: t1 up -> buy t2 open 12; t3 down -> sell t4 open 10; t6 up -> buy t7 open 13;
    # t8 close equals t7 close (signal 0) -> sell t9 open 13.  Equity 100k * 10/12 * 13/13.
    assert m["final_equity"][0] == pytest.approx(100_000 * 10 / 12, rel=1e-12)
    assert m["trades"][0] == 2 and m["win_rate"][0] == 0.0
    ev = np.concatenate([e[1] for e in res.events], axis=1).T
    fills = ev[ev[:, 0] == 1]
    assert fills[:, 1].tolist() == [2, 4, 7, 9] and fills[:, 3].tolist() == [12, 10, 13, 13]
    assert res.t_first == 1 and res.equity.shape == (1, len(BARS) - 1)
    assert res.equity[0, 1] == pytest.approx(100_000.0)  # t2: bought at the open 12, closed at 12
    assert res.equity[0, 2] == pytest.approx(100_000 * 11 / 12)  # t3 close 11
    assert m["exposure"][0] == pytest.approx(4 / 10)  # long at the close of t2, t3, t7, t8


def test_close_fills_are_same_bar(tmp_path):
    res, _ = scenario(tmp_path, execution={"fill": "close"})
    # buy t1 close 11, sell t3 close 11, buy t6 close 12, sell t8 close 13
    assert res.metrics["final_equity"][0] == pytest.approx(100_000 * 13 / 12, rel=1e-12)
    assert res.metrics["trades"][0] == 2


def test_commission_and_integer_shares(tmp_path):
    res, _ = scenario(tmp_path, portfolio={"fractional_shares": False})
    q = 100_000 // 12  # 8333 shares at 12, sold at 10, leaving 4 in cash
    cash = 100_000 - q * 12 + q * 10
    q2 = cash // 13
    assert res.metrics["final_equity"][0] == pytest.approx(cash - q2 * 13 + q2 * 13, rel=1e-12)
    res, _ = scenario(tmp_path, execution={"commission": {"rate": 0.001}})
    shares = 100_000 / (12 * 1.001)
    cash = shares * 10 * (1 - 0.001)
    shares2 = cash / (13 * 1.001)
    assert res.metrics["final_equity"][0] == pytest.approx(shares2 * 13 * (1 - 0.001), rel=1e-12)
    assert res.metrics["total_commission"][0] == pytest.approx(
        0.001 * (shares * 12 + shares * 10 + shares2 * 13 + shares2 * 13), rel=1e-12
    )


def test_minimum_and_fixed_commission(tmp_path):
    res, _ = scenario(tmp_path, execution={"commission": {"fixed": 5.0, "minimum": 7.0}})
    assert res.metrics["total_commission"][0] == pytest.approx(4 * 7.0)
    assert np.isfinite(res.metrics["final_equity"][0]) and res.bank[0].min() >= -1e-6  # cash never negative


def test_slippage_moves_fills_against_the_order(tmp_path):
    res, _ = scenario(tmp_path, execution={"slippage": {"bps": 10}})
    ev = np.concatenate([e[1] for e in res.events], axis=1).T
    fills = ev[ev[:, 0] == 1]
    assert fills[0, 3] == pytest.approx(12 * 1.001) and fills[1, 3] == pytest.approx(10 * 0.999)
    res, _ = scenario(tmp_path, execution={"slippage": {"range_fraction": 0.5}})
    fills = np.concatenate([e[1] for e in res.events], axis=1).T
    fills = fills[fills[:, 0] == 1]
    # previous bar (t1: high 12, low 9) range 3 -> half of it
    assert fills[0, 3] == pytest.approx(12 + 1.5)


def test_short_selling(tmp_path):
    res, _ = scenario(tmp_path, portfolio={"allow_short": True})
    ev = np.concatenate([e[1] for e in res.events], axis=1).T
    fills = ev[ev[:, 0] == 1]
    # long t2, reversed to short t4, covered t6 (signal 0 at t5), long t7, flat t9, short t10
    assert fills[:, 1].tolist() == [2, 4, 6, 7, 9, 10]
    assert [np.sign(p) for p in fills[:, 6]] == [1, -1, 0, 1, 0, -1]
    assert res.metrics["trades"][0] == 3 and res.metrics["open_position"][0] < 0


def test_stop_loss_exits_and_waits_for_a_new_signal(tmp_path):
    strat = {"type": "momentum", "parameters": {"lookback_period": 1, "signal_threshold": 0.0}}
    res, _ = scenario(tmp_path, strategy=strat, risk=[{"type": "stop_loss", "parameters": {"pct": 0.05}}])
    ev = np.concatenate([e[1] for e in res.events], axis=1).T
    assert (ev[:, 0] == 3).sum() == res.metrics["trades"][0] >= 1


def test_no_trades_gives_nan_metrics_not_a_crash(tmp_path):
    strat = {"type": "momentum", "parameters": {"lookback_period": 1, "signal_threshold": 0.9}}
    res, _ = scenario(tmp_path, strategy=strat)
    m = res.metrics
    assert m["trades"][0] == 0 and np.isnan(m["sharpe"][0]) and np.isnan(m["win_rate"][0])
    assert "no_trades" in m["flags"][0] and "zero_variance" in m["flags"][0]
    assert m["total_return"][0] == 0.0


# ------------------------------------------------------------------ invariances

GRID = {
    "data": {"synthetic": {"bars": 4000, "timeframe": "5m", "seed": 3}},
    "strategies": [
        {"type": "ma_crossover", "parameters": {"fast": [3, 8], "slow": [20, 40], "kind": ["sma", "ema"]}},
        {"type": "rsi_bands", "parameters": {"period": [7, 14]}},
    ],
    "classifiers": [{"type": "volatility", "parameters": {"vol_window": [10], "rank_window": [50, 100]}}],
    "risk": [{"type": "trailing_stop", "parameters": {"pct": [0.01, 0.5]}}],
    "portfolio": {"allow_short": True},
    "execution": {"commission": {"rate": 0.0005}},
}


@pytest.fixture(scope="module")
def grid():
    plan = sweep.expand(GRID)
    u = load_universes(plan.config.data)[0]
    base = simulate(plan, u, np.arange(plan.combinations), record_events=True, record_equity=True)
    return plan, u, base


def _same(a, b):
    for k in a.metrics:
        if k == "flags":
            assert list(a.metrics[k]) == list(b.metrics[k])
        else:
            assert np.array_equal(a.metrics[k], b.metrics[k], equal_nan=True), k


@pytest.mark.parametrize("chunk", [16, 333, 4000])
def test_chunk_size_does_not_change_results(grid, chunk):
    plan, u, base = grid
    other = simulate(plan, u, np.arange(plan.combinations), record_events=True, record_equity=True, chunk_size=chunk)
    _same(base, other)
    assert np.array_equal(base.equity, other.equity)
    for k in base.regimes:
        assert np.array_equal(base.regimes[k], other.regimes[k], equal_nan=True)


def test_threads_do_not_change_results(grid):
    plan, u, base = grid
    _same(base, simulate(plan, u, np.arange(plan.combinations), threads=1))


def test_subsets_and_order_do_not_change_results(grid):
    plan, u, base = grid
    ids = np.array([17, 3, 39, 1], dtype=np.int64)
    sub = simulate(plan, u, ids)
    for k in ("final_equity", "trades", "sharpe", "max_drawdown"):
        assert np.array_equal(sub.metrics[k], base.metrics[k][ids], equal_nan=True)


def test_small_event_buffers_give_the_same_events(grid, monkeypatch):
    plan, u, base = grid
    monkeypatch.setattr(engine_mod.limits, "EVENT_BUDGET_BYTES", 1)  # 16 events per combination per pass
    small = simulate(plan, u, np.arange(plan.combinations), record_events=True)
    _same(base, small)

    def flat(res):
        owner = np.concatenate([e[0] for e in res.events])
        ev = np.concatenate([e[1] for e in res.events], axis=1).T
        order = np.lexsort((np.arange(len(owner)), owner))
        return owner[order], ev[order]

    a, b = flat(base), flat(small)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_regime_breakdown_adds_up(grid):
    plan, u, base = grid
    r = base.regimes
    n_ret = base.t_last - base.t_first
    assert (r["bars"].sum(axis=0) == n_ret).all()
    assert (r["trades"].sum(axis=0) == base.metrics["trades"]).all()


def test_windowed_scoring_range(grid):
    plan, u, _ = grid
    res = simulate(plan, u, np.arange(4), start=2000, stop=3000)
    assert res.t_first == 2000 and res.t_last == 2999


def test_block_returns_do_not_depend_on_chunks_events_or_threads(grid, monkeypatch):
    """Daily returns accumulated in the pass: same with any chunking, event buffer or thread count; they compound."""
    from sweep.stats.blocks import BlockSpec

    plan, u, base = grid
    ids = np.arange(plan.combinations)
    ref = simulate(plan, u, ids, blocks=BlockSpec())
    assert ref.block_returns.shape == (plan.combinations, ref.blocks.n) and ref.blocks.n > 40
    _same(base, ref)  # asking for blocks changes no metric
    growth = np.prod(1.0 + ref.block_returns, axis=1)
    np.testing.assert_allclose(growth, base.metrics["final_equity"] / 100_000.0, rtol=1e-11)
    for kw in ({"chunk_size": 16}, {"chunk_size": 333, "threads": 1}):
        assert np.array_equal(simulate(plan, u, ids, blocks=BlockSpec(), **kw).block_returns, ref.block_returns)
    monkeypatch.setattr(engine_mod.limits, "EVENT_BUDGET_BYTES", 1)
    small = simulate(plan, u, ids, blocks=BlockSpec(), record_events=True, chunk_size=500)
    assert np.array_equal(small.block_returns, ref.block_returns)
