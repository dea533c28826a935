"""Streaming indicator kernels against their slow references; chunking; composition."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from containers.feature_hub import FeatureHub, resolve_params
from services.featurespec import parse_feature
from services.registry import indicator_registry
from sweep.kit.properties import bars
from sweep.kit.verify import tiny_bars

CASES = [
    "sma(close,1)",
    "sma(close,20)",
    "ema(close,1)",
    "ema(close,15)",
    "std(close,2)",
    "std(close,30)",
    "zscore(close,25)",
    "bbands(close,20,2.0).mid",
    "bbands(close,20,2.0).upper",
    "bbands(close,10,1.5).lower",
    "slope(close,20)",
    "returns(close,1)",
    "returns(close,7)",
    "logret(close,3)",
    "lag(close,1)",
    "lag(close,4)",
    "pctrank(close,50)",
    "donchian(high,low,1).upper",
    "donchian(high,low,20).upper",
    "donchian(high,low,20).lower",
    "donchian(high,low,20).mid",
    "atr(high,low,close,1)",
    "atr(high,low,close,14)",
    "rsi(close,1)",
    "rsi(close,14)",
    "adx(high,low,close,14).adx",
    "adx(high,low,close,5).plus_di",
    "adx(high,low,close,5).minus_di",
    "hmm(close,120,30,10)",
    "svm(close,120,30,1.0,10)",
]
COLS = ("open", "high", "low", "close", "volume")


def reference_output(text, data, bpd=78.0):
    node = parse_feature(text)
    spec = indicator_registry()[node.name]
    params = resolve_params(spec, node.base, bpd)
    ins = [data[COLS.index(i.name)] for i in node.inputs]
    out = np.asarray(spec.reference(*ins, *params))
    return out[spec.outputs.index(node.output) if node.output else 0]


def assert_matches(got, exp):
    assert np.array_equal(np.isnan(got), np.isnan(exp)), np.flatnonzero(np.isnan(got) != np.isnan(exp))[:5]
    ok = ~np.isnan(exp)
    scale = max(1.0, float(np.max(np.abs(exp[ok]), initial=0.0)))
    np.testing.assert_allclose(got[ok], exp[ok], rtol=1e-9, atol=1e-9 * scale)


@pytest.mark.parametrize("text", CASES)
def test_kernel_matches_reference(text):
    data = tiny_bars(700, seed=3)
    hub = FeatureHub([text], bars_per_day=78.0)
    block = hub.compute_all(data)
    assert_matches(block[hub.rows[0]], reference_output(text, data))


@pytest.mark.parametrize("text", ["sma(close,20)", "zscore(close,25)", "slope(close,30)", "std(close,10)"])
def test_no_drift_over_long_series(text):
    # 200k bars at a high price level: streaming sums must not drift away from the reference
    rng = np.random.default_rng(1)
    close = 400.0 + np.cumsum(rng.normal(0, 0.05, 200_000))
    data = np.vstack([close, close + 0.1, close - 0.1, close, np.ones_like(close)])
    hub = FeatureHub([text])
    got = hub.compute_all(data)[hub.rows[0]][-500:]
    exp = reference_output(text, data[:, -5000:])[-500:]
    assert_matches(got, exp)


@given(data=bars(n_min=40, n_max=400), splits=st.lists(st.integers(1, 399), max_size=8))
def test_chunked_equals_one_pass(data, splits):
    specs = [
        "sma(close,7)",
        "ema(close,9)",
        "zscore(close,11)",
        "rsi(close,5)",
        "adx(high,low,close,4).adx",
        "donchian(high,low,6).upper",
        "pctrank(std(returns(close,1),5),9)",
        "hmm(close,25,7,5)",
        "svm(close,25,7,1.0,5)",
        "lag(donchian(high,low,5).lower,1)",
    ]
    hub = FeatureHub(specs, bars_per_day=10)
    one = hub.compute_all(data)
    hub.reset()
    n = data.shape[1]
    cuts = [0, *sorted({s for s in splits if s < n}), n]
    parts = [hub.compute(data[:, a:b]).copy() for a, b in zip(cuts, cuts[1:]) if b > a]
    assert np.array_equal(one, np.concatenate(parts, axis=1), equal_nan=True)


def test_composed_features_match_composed_references():
    data = tiny_bars(600, seed=5)
    hub = FeatureHub(["sma(returns(close,1),10)", "pctrank(std(returns(close,1),20),50)"], bars_per_day=78)
    block = hub.compute_all(data)
    from containers.indicators import reference as ref

    r1 = ref.returns(data[3], 1)[0]
    assert_matches(block[hub.rows[0]], ref.sma(r1, 10)[0])
    assert_matches(block[hub.rows[1]], ref.pctrank(ref.std(r1, 20)[0], 50)[0])
    assert hub.warmup == 1 + 19 + 49


def test_hmm_tracks_regimes_on_regime_data():
    # 6 alternating regimes: calm up-drift vs volatile down-drift
    rng = np.random.default_rng(11)
    seg, r, truth = 600, [], []
    for k in range(6):
        bull = k % 2 == 0
        r.append(rng.normal(0.0008 if bull else -0.0008, 0.002 if bull else 0.008, seg))
        truth += [bull] * seg
    close = 100 * np.exp(np.cumsum(np.concatenate(r)))
    data = np.vstack([close, close, close, close, np.ones_like(close)])
    hub = FeatureHub(["hmm(close,1200,20,50)"])  # the window must see both regimes to separate them
    p_bull = hub.compute_all(data)[hub.rows[0]]
    valid = ~np.isnan(p_bull)
    acc = np.mean((p_bull[valid] > 0.5) == np.array(truth)[valid])
    assert acc > 0.75, acc
