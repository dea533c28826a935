"""Built-in services: semantics, and the property kit on every built-in service and indicator."""

from __future__ import annotations

import numpy as np
import pytest

from services.registry import registry
from services.state import AVG_PRICE, EQUITY, HIGH_SINCE_ENTRY, PEAK_EQUITY, POSITION
from sweep.kit.properties import check
from sweep.kit.verify import sample_state

ALL = [(role, name) for role in ("strategy", "classifier", "risk", "indicator") for name in sorted(registry(role))]


@pytest.mark.parametrize("role,name", ALL, ids=[f"{r}:{n}" for r, n in ALL])
def test_builtin_passes_property_kit(role, name):
    result = check(registry(role)[name], examples=12)
    assert result.ok, result.failures
    assert "fail" not in result.results.values()


def f64(*xs):
    return np.array(xs, dtype=np.float64)


def test_momentum_thresholds():
    fn = registry("strategy")["momentum"].func
    p = f64(10, 0.01)
    assert fn(f64(0.02), p, 0) == 1.0
    assert fn(f64(-0.02), p, 0) == -1.0
    assert fn(f64(0.005), p, 0) == 0.0


def test_ma_crossover_and_hold_semantics():
    ma = registry("strategy")["ma_crossover"].func
    assert ma(f64(11, 10), f64(5, 20, 0), 0) == 1.0
    assert ma(f64(9, 10), f64(5, 20, 0), 0) == -1.0
    mr = registry("strategy")["mean_reversion"].func
    p = f64(20, 2.0, 0.5)
    assert mr(f64(-2.5), p, 0) == 1.0 and mr(f64(2.5), p, 0) == -1.0
    assert mr(f64(0.1), p, 0) == 0.0
    assert np.isnan(mr(f64(1.0), p, 0))  # between the bands: hold


def test_breakout_uses_prior_channel():
    fn = registry("strategy")["breakout"].func
    assert fn(f64(105, 104, 95), f64(20), 0) == 1.0
    assert fn(f64(94, 104, 95), f64(20), 0) == -1.0
    assert np.isnan(fn(f64(100, 104, 95), f64(20), 0))


def test_classifier_regimes():
    vol = registry("classifier")["volatility"]
    assert vol.regimes == ("low_vol", "normal_vol", "high_vol")
    p = f64(20, 250, 0.3, 0.7)
    assert [vol.func(f64(q), p) for q in (0.1, 0.5, 0.9)] == [0, 1, 2]
    hmm = registry("classifier")["hmm"]
    assert hmm.func(f64(0.8), f64(0, 30)) == 1 and hmm.func(f64(0.2), f64(0, 30)) == 0
    assert hmm.func(f64(0.3), f64(1, 30)) == 1 and hmm.func(f64(-0.3), f64(1, 30)) == 0
    assert hmm.feature_specs({"model_type": "svm", "lookback_days": 60}) == ["svm(close,60d,1d,1.0,10)"]


def test_risk_validators():
    r = registry("risk")
    s = sample_state(position=100.0, price=100.0)  # long 100 @ 100, equity 100k, peak 110k
    assert r["stop_loss"].func(0.0, 94.0, s, f64(0.05)) == -100.0
    assert r["stop_loss"].func(0.0, 96.0, s, f64(0.05)) == 0.0
    assert r["take_profit"].func(0.0, 111.0, s, f64(0.1)) == -100.0
    s[HIGH_SINCE_ENTRY] = 120.0
    assert r["trailing_stop"].func(0.0, 113.0, s, f64(0.05)) == -100.0
    # max_position: at most 0.5 * 100k / 100 = 500 shares
    assert r["max_position"].func(1000.0, 100.0, s, f64(0.5)) == pytest.approx(400.0)
    assert r["max_position"].func(-50.0, 100.0, s, f64(0.5)) == -50.0
    # max_drawdown: 1 - 100k/110k = 9% drawdown
    assert r["max_drawdown"].func(10.0, 100.0, s, f64(0.05)) == 0.0
    assert r["max_drawdown"].func(-10.0, 100.0, s, f64(0.05)) == -10.0
    assert r["max_drawdown"].func(-300.0, 100.0, s, f64(0.05)) == -100.0
    assert r["max_drawdown"].func(10.0, 100.0, s, f64(0.2)) == 10.0
    assert s[POSITION] == 100.0 and s[AVG_PRICE] == 100.0 and s[EQUITY] == 100_000.0 and s[PEAK_EQUITY] == 110_000.0
