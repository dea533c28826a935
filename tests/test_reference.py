"""Differential tests: the fused kernel must match the plain-Python reference engine.

One fixed set of services (every built-in strategy, classifier and risk
validator) keeps the number of compiled kernels at one; hypothesis draws
the data, the parameters and the portfolio/execution settings.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import sweep
from containers.data import Universe, frequency
from containers.synthetic import session_timestamps
from sweep.engine import simulate
from sweep.kit.properties import bars
from sweep.reference import ReferenceRun, reference_simulate
from sweep.stats.blocks import BlockSpec

METRIC_TOL = 1e-9


def universe_from(data: np.ndarray) -> Universe:
    ts = session_timestamps(data.shape[1], "2024-01-02", "1h")
    per_day, per_year = frequency(ts)
    cols = [np.ascontiguousarray(data[k]) for k in range(5)]
    return Universe("T", ts, *cols, "hypothesis", per_day, per_year)


def config(p: dict) -> dict:
    return {
        "data": {"synthetic": {"bars": 100}},  # replaced by the drawn universe
        "strategies": [
            {"type": "momentum", "parameters": {"lookback_period": p["look"], "signal_threshold": p["thr"]}},
            {"type": "ma_crossover", "parameters": {"fast": p["fast"], "slow": p["slow"], "kind": p["kind"]}},
            {"type": "mean_reversion", "parameters": {"window": p["window"], "entry_z": 1.0, "exit_z": 0.25}},
            {"type": "breakout", "parameters": {"period": p["window"]}},
            {"type": "rsi_bands", "parameters": {"period": p["look"] + 1}},
            {"type": "bollinger_bands", "parameters": {"period": p["window"], "num_std": 1.5}},
        ],
        "classifiers": [
            {"type": "volatility", "parameters": {"vol_window": 5, "rank_window": 20}},
            {"type": "trend", "parameters": {"method": p["method"], "period": p["window"]}},
            {"type": "hmm", "parameters": {"model_type": p["model"], "lookback_days": 3}},
        ],
        "risk": [
            {"type": "max_position", "parameters": {"limit": p["max_pos"]}},
            {"type": "max_leverage", "parameters": {"limit": 1.5}},
            {"type": "max_drawdown", "parameters": {"limit": p["max_dd"]}},
            {"type": "stop_loss", "parameters": {"pct": p["stop"]}},
            {"type": "take_profit", "parameters": {"pct": p["take"]}},
            {"type": "trailing_stop", "parameters": {"pct": p["trail"]}},
        ],
        "portfolio": {"allow_short": p["short"], "fractional_shares": p["fractional"], "position_size": p["size"]},
        "execution": {
            "fill": p["fill"],
            "commission": {"rate": p["rate"], "minimum": p["minimum"]},
            "slippage": {"bps": p["bps"], "range_fraction": p["range"]},
        },
    }


params = st.fixed_dictionaries(
    {
        "look": st.integers(1, 12),
        "thr": st.sampled_from([0.0, 0.002, 0.01]),
        "fast": st.integers(1, 6),
        "slow": st.integers(7, 20),
        "kind": st.sampled_from(["sma", "ema"]),
        "window": st.integers(3, 15),
        "method": st.sampled_from(["slope", "adx"]),
        "model": st.sampled_from(["hmm", "svm"]),
        "max_pos": st.sampled_from([0.3, 1.0, 5.0]),
        "max_dd": st.sampled_from([0.05, 1.0]),
        "stop": st.sampled_from([0.01, 0.05, 1.0]),
        "take": st.sampled_from([0.02, 10.0]),
        "trail": st.sampled_from([0.01, 1.0]),
        "short": st.booleans(),
        "fractional": st.booleans(),
        "size": st.sampled_from([0.5, 1.0, 2.0]),
        "fill": st.sampled_from(["next_open", "close"]),
        "rate": st.sampled_from([0.0, 0.001]),
        "minimum": st.sampled_from([0.0, 1.0]),
        "bps": st.sampled_from([0.0, 5.0]),
        "range": st.sampled_from([0.0, 0.1]),
    }
)


def compare(plan, u, ids):
    blocks = BlockSpec("bars", 7)  # block returns of every combination, accumulated in the same pass
    fast = simulate(plan, u, ids, record_events=True, record_equity=True, chunk_size=64, blocks=blocks)
    ref = reference_simulate(plan, u, ids, record_events=True, record_equity=True, blocks=blocks)
    np.testing.assert_allclose(fast.block_returns, ref.block_returns, rtol=1e-9, atol=1e-12, equal_nan=True)
    for k, a in fast.metrics.items():
        b = ref.metrics[k]
        if k == "flags":
            assert list(a) == list(b)
            continue
        a, b = a.astype(float), b.astype(float)
        assert np.array_equal(np.isnan(a), np.isnan(b)), k
        ok = np.isfinite(a) & np.isfinite(b)
        assert np.array_equal(np.isinf(a), np.isinf(b)), k
        np.testing.assert_allclose(a[ok], b[ok], rtol=METRIC_TOL, atol=1e-9, err_msg=k)
    for k, a in (fast.regimes or {}).items():
        np.testing.assert_allclose(
            a.astype(float),
            ref.regimes[k].astype(float),
            rtol=METRIC_TOL,
            atol=1e-9,
            equal_nan=True,
            err_msg=f"regime {k}",
        )
    np.testing.assert_allclose(fast.equity, ref.equity, rtol=1e-12)

    def flat(res):
        if not res.events:
            return np.zeros(0), np.zeros((0, 12))
        owner = np.concatenate([e[0] for e in res.events])
        ev = np.concatenate([e[1] for e in res.events], axis=1).T
        order = np.lexsort((np.arange(len(owner)), owner))
        return owner[order], ev[order]

    (fo, fe), (ro, re_) = flat(fast), flat(ref)
    assert np.array_equal(fo, ro)
    np.testing.assert_allclose(fe, re_, rtol=1e-9, atol=1e-7)
    return fast, ref


@settings(max_examples=12)
@given(data=bars(n_min=160, n_max=320), p=params)
def test_fast_engine_matches_reference(data, p):
    plan = sweep.expand(config(p), count_data=False)
    u = universe_from(data)
    compare(plan, u, np.arange(plan.combinations))


def test_reference_containers_are_the_naive_plan():
    p = {
        "look": 5,
        "thr": 0.002,
        "fast": 3,
        "slow": 12,
        "kind": "ema",
        "window": 8,
        "method": "adx",
        "model": "svm",
        "max_pos": 1.0,
        "max_dd": 0.05,
        "stop": 0.01,
        "take": 0.02,
        "trail": 0.01,
        "short": True,
        "fractional": False,
        "size": 1.0,
        "fill": "next_open",
        "rate": 0.001,
        "minimum": 1.0,
        "bps": 5.0,
        "range": 0.1,
    }
    plan = sweep.expand(config(p), count_data=False)
    u = universe_from(np.asarray(_fixed_bars()))
    run = ReferenceRun(plan, u, np.arange(plan.combinations))
    assert sum(run.containers.values()) == plan.naive.total
    assert run.containers == plan.naive.containers
    fast, ref = compare(plan, u, np.arange(plan.combinations))
    assert fast.metrics["trades"].sum() > 0 and ref.events_delivered > 0


def _fixed_bars():
    from sweep.kit.verify import tiny_bars

    return tiny_bars(300, seed=9)
