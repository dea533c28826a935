"""Overfitting statistics: published worked example, hand-written numpy CSCV, arch's SPA, noise and edge."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sweep.config_sections import OverfittingConfig
from sweep.overfitting import evaluate, verdict
from sweep.stats.blocks import BlockSpec, block_ids, layout, parse_block
from sweep.stats.cscv import partition_bounds, partition_sums, pbo
from sweep.stats.dsr import deflated_sharpe, expected_max_sharpe, probabilistic_sharpe, row_moments
from sweep.stats.spa import SPAStream, kernel_variance, stationary_indices

DAY = 86_400 * 10**9


# ---------------------------------------------------------------- deflated Sharpe


def test_deflated_sharpe_worked_example():
    # Bailey & Lopez de Prado (2014): N = 100 trials, variance of the annualised trial Sharpe
    # ratios 0.5, best 2.5 annualised, 250 periods a year, T = 1250, skew -3, kurtosis 10.
    v, sr = 0.5 / 250, 2.5 / math.sqrt(250)
    assert round(expected_max_sharpe(100, v), 4) == 0.1132
    assert round(deflated_sharpe(sr, 1250, -3.0, 10.0, 100, v), 4) == 0.9004


def test_probabilistic_sharpe_by_hand():
    sr, t, g3, g4 = 0.1, 500, -0.5, 6.0
    z = sr * math.sqrt(t - 1) / math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr * sr)
    assert probabilistic_sharpe(sr, t, g3, g4) == pytest.approx(0.5 * (1 + math.erf(z / math.sqrt(2))), abs=1e-12)
    assert math.isnan(expected_max_sharpe(1, 0.1))  # one trial: nothing to deflate against


def test_row_moments_match_numpy():
    rng = np.random.default_rng(3)
    x = rng.standard_t(4, (20, 300)) * 0.01
    x[5] = x[2]
    x[7] = 0.0
    out, h = np.empty((4, 20)), np.empty(20, dtype=np.uint64)
    row_moments(x, x.view(np.uint64), out, h)
    d = x - x.mean(1, keepdims=True)
    m2 = (d**2).mean(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        sharpe = np.where(m2 > 0, x.mean(1) / x.std(1, ddof=1), 0.0)
        skew = np.where(m2 > 0, (d**3).mean(1) / m2**1.5, 0.0)
        kurt = np.where(m2 > 0, (d**4).mean(1) / m2**2, 3.0)
    np.testing.assert_allclose(out[0], x.mean(1), atol=1e-15)
    np.testing.assert_allclose(out[1], sharpe, rtol=1e-10)
    np.testing.assert_allclose(out[2], skew, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(out[3], kurt, rtol=1e-9)
    assert h[5] == h[2] and len(set(h.tolist())) == 19  # identical rows hash equal, others differ


# ---------------------------------------------------------------- CSCV


def numpy_cscv(r: np.ndarray, s: int) -> np.ndarray:
    """Hand-written CSCV on a T x N return matrix: the logit of every split, in itertools order."""
    t, n = r.shape
    parts = np.array_split(np.arange(t), s)

    def sharpe(x):
        sd = x.std(axis=0, ddof=1)
        return np.where(sd > 0, x.mean(0) / np.where(sd > 0, sd, 1.0), 0.0)

    out = []
    for combo in itertools.combinations(range(s), s // 2):
        ins = np.concatenate([parts[i] for i in combo])
        oos = np.concatenate([parts[i] for i in range(s) if i not in combo])
        a, b = sharpe(r[ins]), sharpe(r[oos])
        k = int(np.argmax(a))
        rank = (b < b[k]).sum() + ((b == b[k]).sum() + 1) / 2
        w = rank / (n + 1)
        out.append(math.log(w / (1 - w)))
    return np.array(out)


def _pbo(r: np.ndarray, s: int, **kw) -> dict:
    bounds = partition_bounds(r.shape[0], s)
    sums, sumsq = partition_sums(np.ascontiguousarray(r.T), bounds)
    return pbo(sums, sumsq, np.diff(bounds), **kw)


@pytest.mark.parametrize("t,n,s", [(48, 12, 8), (67, 9, 6), (130, 25, 16)])
def test_cscv_matches_numpy(t, n, s):
    rng = np.random.default_rng(t + n)
    r = rng.normal(0.0, 0.01, (t, n))
    r[:, 3] = r[:, 1]  # ties
    got = _pbo(r, s)
    want = numpy_cscv(r, s)
    np.testing.assert_allclose(got["logits"], want, rtol=1e-12, atol=1e-12)
    assert got["pbo"] == np.mean(want <= 0)
    assert got["splits"] == got["splits_total"] == math.comb(s, s // 2)


def test_pbo_of_noise_is_near_half_and_of_an_edge_near_zero():
    noise = [_pbo(np.random.default_rng(seed).normal(0.0, 0.01, (260, 200)), 16)["pbo"] for seed in range(10)]
    assert 0.4 <= float(np.mean(noise)) <= 0.6, noise
    edge = np.random.default_rng(1).normal(0.0, 0.01, (260, 200))
    edge[:, 17] += 0.006  # one combination with a real edge (Sharpe 0.6 per block)
    got = _pbo(edge, 16)
    assert got["pbo"] < 0.05 and got["prob_oos_loss"] < 0.05


def test_cscv_subset_of_splits_when_too_many():
    r = np.random.default_rng(2).normal(0.0, 0.01, (64, 50))
    got = _pbo(r, 16, max_work=8 * 50 * 300)
    assert got["splits"] == 300 and got["splits_total"] == 12870
    assert 0.0 <= got["pbo"] <= 1.0


# ---------------------------------------------------------------- Reality Check / SPA


def test_stationary_indices_are_archs():
    arch = pytest.importorskip("arch.bootstrap", reason="arch is in the test extra: pip install -e '.[test]'")
    bs = arch.StationaryBootstrap(6, np.arange(50), seed=11)
    ours = stationary_indices(50, 8, 6, 11)
    for k, (pos, _) in enumerate(bs.bootstrap(8)):
        np.testing.assert_array_equal(pos[0], ours[k])


def test_kernel_variance_is_archs():
    arch = pytest.importorskip("arch.bootstrap", reason="arch is in the test extra")
    d = np.random.default_rng(4).normal(0.0, 0.01, (90, 7))
    spa = arch.SPA(np.zeros(90), -d, block_size=5, reps=10, seed=0)
    spa._compute_variance()
    np.testing.assert_allclose(kernel_variance(d, 5), spa._loss_diff_var, rtol=1e-9)


def _plain_kernel_variance(d: np.ndarray, block: float) -> np.ndarray:
    t, p = d.shape[0], 1 / block
    e = d - d.mean(axis=0)
    plain = (e * e).sum(axis=0) / t
    for i in range(1, t):  # the definition, lag by lag
        kappa = (1 - i / t) * (1 - p) ** i + (i / t) * (1 - p) ** (t - i)
        plain += 2 * kappa * (e[i:] * e[:-i]).sum(axis=0) / t
    return plain


def test_kernel_variance_of_many_series_is_archs_and_a_plain_sum():
    """Many series (rows across threads), against arch and against the definition summed lag by lag."""
    arch = pytest.importorskip("arch.bootstrap", reason="arch is in the test extra")
    d = np.random.default_rng(5).normal(0.0, 0.01, (97, 600))
    ours = kernel_variance(d, 4)
    spa = arch.SPA(np.zeros(97), -d[:, :40], block_size=4, reps=10, seed=0)
    spa._compute_variance()
    np.testing.assert_allclose(ours[:40], spa._loss_diff_var, rtol=1e-9)
    np.testing.assert_allclose(ours, _plain_kernel_variance(d, 4), rtol=1e-9)


@pytest.mark.parametrize(("t", "block"), [(2, 1.0), (7, 1.0), (60, 1.5), (4000, 2.0), (4000, 900.0)])
def test_kernel_variance_at_the_edges_is_the_definition(t, block):
    """Block 1 (no dependence), short series, and long ones where q^T underflows (short blocks) or not."""
    rng = np.random.default_rng(t)
    d = rng.normal(0.0, 0.01, (t, 3)) + rng.normal(0.0, 0.002, 3)
    np.testing.assert_allclose(kernel_variance(d, block), _plain_kernel_variance(d, block), rtol=1e-11)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_spa_matches_arch(seed):
    arch = pytest.importorskip("arch.bootstrap", reason="arch is in the test extra")
    rng = np.random.default_rng(seed)
    t, k = 150, 60
    r = rng.normal(0.0, 0.01, (t, k))
    r[:, :20] -= 0.004  # clearly bad combinations: the three re-centrings differ
    r[:, 25] += 0.0015
    spa = arch.SPA(np.zeros(t), -r, block_size=8, reps=400, seed=seed)  # losses = -returns, flat benchmark
    spa.compute()
    ours = SPAStream(t, 400, 8, seed)
    for a in range(0, k, 17):  # streamed in chunks of combinations
        ours.add(r[:, a : a + 17])
    got = ours.result()
    p = spa.pvalues
    assert got["spa_lower_p"] == pytest.approx(p["lower"], abs=1e-12)
    assert got["spa_p"] == pytest.approx(p["consistent"], abs=1e-12)
    assert got["reality_check_p"] == pytest.approx(p["upper"], abs=1e-12)


def test_spa_edge_and_noise():
    rng = np.random.default_rng(5)
    noise = rng.normal(0.0, 0.01, (250, 100))
    s = SPAStream(250, 500, 10, 0)
    s.add(noise)
    assert s.result()["spa_p"] > 0.1
    noise[:, 4] += 0.004
    s = SPAStream(250, 500, 10, 0)
    s.add(noise)
    assert s.result()["spa_p"] < 0.01


# ---------------------------------------------------------------- blocks


def test_block_ids_days_weeks_bars():
    ts = np.array([0, 10, DAY, DAY + 5, 4 * DAY, 5 * DAY, 11 * DAY], dtype=np.int64)  # 1970-01-01 is a Thursday
    assert block_ids(ts, BlockSpec("days", 1), 2.0).tolist() == [0, 0, 1, 1, 2, 3, 4]
    assert block_ids(ts, BlockSpec("days", 2), 2.0).tolist() == [0, 0, 0, 0, 1, 1, 2]
    assert block_ids(ts, BlockSpec("weeks", 1), 2.0).tolist() == [0, 0, 0, 0, 1, 1, 2]  # Mon 5 Jan starts week 2
    assert block_ids(ts, BlockSpec("bars", 3), 2.0).tolist() == [0, 0, 0, 1, 1, 1, 2]
    assert block_ids(ts, BlockSpec(), 1.0).tolist() == list(range(7))  # auto: daily bars -> one bar per block
    lay = layout(ts, 2, 5, BlockSpec(), 2.0)
    assert lay.of_bar.tolist() == [-1, -1, 0, 0, 1, 2, -1] and lay.starts.tolist() == [2, 4, 5]
    assert parse_block("390 bars") == BlockSpec("bars", 390) and parse_block("1w") == BlockSpec("weeks", 1)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 20 * DAY), min_size=1, max_size=200, unique=True), st.integers(1, 5))
def test_block_ids_are_consecutive_and_ordered(stamps, n):
    ts = np.array(sorted(stamps), dtype=np.int64)
    for spec in (BlockSpec("days", n), BlockSpec("weeks", n), BlockSpec("bars", n)):
        ids = block_ids(ts, spec, 10.0)
        assert ids[0] == 0 and np.all(np.diff(ids) >= 0) and np.all(np.diff(ids) <= 1)


# ---------------------------------------------------------------- the block of a ranking


def _evaluate(mat: np.ndarray, best: int, **cfg) -> dict:
    ids = np.arange(mat.shape[0])
    return evaluate(
        [(ids, mat)],
        n_blocks=mat.shape[1],
        rows=mat.shape[0],
        best_id=best,
        settings=OverfittingConfig(**cfg),
        seed=0,
        block_label="1d",
    )


def test_evaluate_noise_is_luck_and_edge_is_not():
    rng = np.random.default_rng(8)
    noise = rng.normal(0.0, 0.01, (300, 250))
    best = int(np.argmax(noise.mean(1) / noise.std(1)))
    out = _evaluate(noise, best, reps=300)
    assert out["verdict"] == "consistent with luck" and out["deflated_sharpe"] < 0.95
    assert out["trials"] == 300 and out["dsr"]["psr"] > out["deflated_sharpe"]
    edge = noise.copy()
    edge[11] += 0.006
    out = _evaluate(edge, 11, reps=300)
    assert out["verdict"] == "unlikely to be luck alone", out
    assert out["deflated_sharpe"] > 0.95 and out["pbo"] < 0.05 and out["spa_p"] < 0.05


def test_identical_trials_count_once():
    rng = np.random.default_rng(9)
    base = rng.normal(0.0, 0.01, (40, 120))
    mat = np.vstack([base, base[:10], np.zeros((5, 120))])
    out = _evaluate(mat, 0, reps=100)
    assert out["combinations"] == 55 and out["trials"] == 41


def test_not_computable_reasons():
    one = _evaluate(np.random.default_rng(0).normal(0, 0.01, (1, 100)), 0, reps=100)
    assert one["deflated_sharpe"] is None and "only one combination" in one["not_computable"]["pbo"]
    few = _evaluate(np.random.default_rng(0).normal(0, 0.01, (10, 8)), 0, reps=100)
    assert "at least 10" in few["not_computable"]["spa"] and verdict(few) == "not computable"
    short = _evaluate(np.random.default_rng(0).normal(0, 0.01, (10, 12)), 0, reps=100)
    assert short["pbo"] is None and "fewer than the 16 CSCV partitions" in short["not_computable"]["pbo"]
    assert short["deflated_sharpe"] is not None and short["spa_p"] is not None
