"""The feature hub: dedup, layout, warm-up alignment, durations."""

from __future__ import annotations

import numpy as np
import pytest

import sweep
from containers.feature_hub import FeatureHub, chunk_for
from sweep.errors import ConfigError
from sweep.kit.verify import tiny_bars


def test_dedup_shared_dependencies():
    hub = FeatureHub(["bbands(close,20,2.0).upper", "bbands(close,20,2).lower", "SMA(close, 20)"])
    assert hub.computations == ["bbands(close,20,2.0)", "sma(close,20)"]
    assert len(hub.rows) == 3 and len(set(hub.rows.tolist())) == 3


def test_composition_computes_inner_once():
    hub = FeatureHub(["std(returns(close,1),10)", "sma(returns(close,1),5)", "returns(close,1)"])
    assert hub.computations.count("returns(close,1)") == 1
    assert hub.warmup == 1 + 9


def test_warmup_is_the_max_over_features():
    hub = FeatureHub(["sma(close,5)", "sma(close,50)", "adx(high,low,close,14).adx"])
    assert hub.warmup == max(4, 49, 27)
    block = hub.compute_all(tiny_bars(200))
    assert not np.isnan(block[hub.rows, hub.warmup :]).any()
    assert np.isnan(block[hub.rows[1], hub.warmup - 1])


def test_durations_resolve_with_bars_per_day():
    hub = FeatureHub(["hmm(close,30d)"], bars_per_day=78)
    assert hub.warmup == 30 * 78
    with pytest.raises(ConfigError, match="needs at least 10 bars"):
        FeatureHub(["hmm(close,3d)"], bars_per_day=1)


def test_block_rows_are_bars_then_features():
    data = tiny_bars(50)
    hub = FeatureHub(["lag(close,1)"])
    block = hub.compute_all(data)
    assert np.array_equal(block[:5], data)
    assert np.array_equal(block[hub.rows[0], 1:], data[3, :-1])


def test_plan_features_feed_the_hub(examples):
    plan = sweep.expand(examples / "seed.yaml")
    hub = FeatureHub(plan.features, bars_per_day=10)
    assert len(hub.rows) == len(plan.features) == 7


def test_chunk_for_respects_budget():
    assert chunk_for(10, 65_536) == 65_536
    assert chunk_for(100_000, 65_536, budget_bytes=2**20) == 256


def test_threaded_levels_give_the_serial_bits_and_errors():
    """Computations side by side on two threads: same bits as one thread, whatever depends on what."""
    import numba

    from containers import feature_hub

    specs = ["sma(close,5)", "sma(close,50)", "std(returns(close,1),10)", "zscore(sma(close,5),20)", "ema(close,9)"]
    rng = np.random.default_rng(7)
    bars = tiny_bars(3 * feature_hub.PARALLEL_MIN_BARS)
    bars[3] *= np.exp(np.cumsum(rng.normal(0, 0.01, bars.shape[1])))
    hub = FeatureHub(specs)
    assert [len(level) for level in hub._levels] == [4, 2]  # returns/sma(5) before what reads them
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        serial = hub.compute_all(bars, chunk=feature_hub.PARALLEL_MIN_BARS)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        threaded = hub.compute_all(bars, chunk=feature_hub.PARALLEL_MIN_BARS)

        def fail(x, p, s, out):
            raise FloatingPointError("bad state")

        def broken(spec):  # the ema, in the first level, fails on whichever thread runs it
            return fail if spec.name == "ema" else spec.kernel

        failing = FeatureHub(specs, kernel_of=broken)
        with pytest.raises(sweep.errors.PluginError, match=r"ema\(close,9\).*FloatingPointError: bad state"):
            failing.compute(bars)
    finally:
        numba.set_num_threads(before)
    assert np.array_equal(serial.view(np.int64), threaded.view(np.int64))


def _hub_sum(bars: np.ndarray) -> float:
    return float(np.nansum(FeatureHub(["sma(close,5)", "ema(close,9)"]).compute(bars)))


def test_the_hub_threads_work_in_a_forked_child():
    """A child forked after the parent ran the hub on threads gets threads of its own (it hung before)."""
    import multiprocessing
    import sys

    import numba

    from containers import feature_hub

    if sys.platform != "linux" or numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs fork and two numba threads")
    bars = tiny_bars(2 * feature_hub.PARALLEL_MIN_BARS)
    before = numba.get_num_threads()
    numba.set_num_threads(2)
    try:
        expect = _hub_sum(bars)  # the parent's pool exists now
        with multiprocessing.get_context("fork").Pool(1) as pool:
            got = pool.apply_async(_hub_sum, (bars,)).get(timeout=60)
    finally:
        numba.set_num_threads(before)
    assert got == expect
