"""Luck against buy-and-hold, not only against doing nothing.

The flat benchmark asks "is the winner better than holding cash?"; buy-and-hold of the same bars asks
"is it better than just holding the asset?".  Checked here: buy-and-hold's block returns are aligned
exactly as the kernel accumulates a combination's (an all-in long combination has them), the SPA and
Reality Check against it are arch's, the deflated Sharpe of excess returns is the hand-written formula,
every ranking phase carries both, and on a rising market a grid of zero-skill long/flat strategies
beats cash convincingly and buy-and-hold not at all.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from statistics import NormalDist

import numpy as np
import polars as pl
import pytest

from sweep.cli import main
from sweep.config_sections import OverfittingConfig
from sweep.overfitting import evaluate, sentence, verdict
from sweep.stats.spa import SPAStream

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
DAY = 86_400 * 10**9
FIVE_MIN = 5 * 60 * 10**9

ALWAYS_LONG = '''
from numba import njit
from services import Float, strategy


@strategy(params=[Float("level", 1.0, low=0.0, high=1.0)], features=["sma(close,30)"])
@njit(cache=True, nogil=True)
def always_long(f, p, regime):
    """Long ``level`` of equity from the first scored bar on (the SMA only sets the warm-up)."""
    return p[0]
'''


def _summary(run_dir: Path, phase: str) -> dict:
    return json.loads((run_dir / phase / "phase_summary.json").read_text())


def _bars(days: int, seed: int, drift: float = 0.0) -> pl.DataFrame:
    """5-minute bars, 78 a day on weekdays, each bar opening at the previous close (no gaps)."""
    rng = np.random.default_rng(seed)
    n = days * 78
    close = 100.0 * np.exp(np.cumsum(rng.normal(drift, 0.002, n)))
    opens = np.r_[100.0, close[:-1]]
    day0 = np.datetime64("2024-01-01", "D")
    sessions = (day0 + np.arange(days * 2))[np.is_busday(day0 + np.arange(days * 2))][:days]
    ts = np.repeat(sessions.astype("datetime64[ns]").astype(np.int64), 78) + 14 * 3_600 * 10**9 + 30 * 60 * 10**9
    ts += np.tile(np.arange(78, dtype=np.int64) * FIVE_MIN, days)
    return pl.DataFrame(
        {
            "timestamp": pl.Series(ts).cast(pl.Datetime("ns", "UTC")),
            "open": opens,
            "high": np.maximum(opens, close) * 1.0005,
            "low": np.minimum(opens, close) * 0.9995,
            "close": close,
            "volume": np.full(n, 1000.0),
        }
    )


def _hand_hold_returns(df: pl.DataFrame, t_first: int) -> np.ndarray:
    """Buy-and-hold per day from the close of ``t_first``: last close of each day / the day before's - 1."""
    ts = df["timestamp"].cast(pl.Int64).to_numpy()[t_first:]
    close = df["close"].to_numpy()[t_first:]
    day = ts // DAY
    last = np.r_[np.flatnonzero(day[1:] != day[:-1]), day.size - 1]
    return close[last] / close[np.r_[0, last[:-1]]] - 1.0


# ---------------------------------------------------------------- alignment, pinned by the engine itself


@pytest.mark.parametrize("fill", ["close", "next_open"])
def test_an_all_in_long_combination_has_buy_and_holds_block_returns(tmp_path, capsys, fill):
    """Block returns of an all-in long combination without costs = buy-and-hold's on the same blocks.

    ``fill: close`` buys at the close of the first scored bar; the default next-open fill buys at the next
    open, which these bars set to the previous close.  The first scored bar (29, the SMA's warm-up) is
    mid-day, so the first block is partial.  The luck block's excess returns are pinned block by block
    through the winner (a quarter in the market: the smallest drawdown), whose excess Sharpe, skewness
    and kurtosis change with any shift of buy-and-hold's blocks.
    """
    df = _bars(30, seed=5)
    df.write_parquet(tmp_path / "BARS.parquet")
    (tmp_path / "longs.py").write_text(ALWAYS_LONG)
    (tmp_path / "run.yaml").write_text(
        "name: hold\nplugins: [longs.py]\ndata: {path: BARS.parquet}\n"
        "strategies:\n  - type: always_long\n    parameters: {level: [1.0, 0.25]}\n"
        f"execution: {{fill: {fill}}}\nworkflow: optimization\nmin_trades: 0\n"
        "objective: {metric: max_drawdown, direction: min}\n"
    )
    assert main(["run", str(tmp_path / "run.yaml"), "--results-dir", str(tmp_path / "res"), "--quiet"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "combinations tried" in x)
    run_dir = next((tmp_path / "res" / "hold").iterdir())
    m = pl.read_parquet(run_dir / "optimize" / "metrics.parquet")
    assert m["first_bar"].unique().to_list() == [29]
    ids = {lv: m.filter(pl.col("strategy.level") == lv)["combo_id"][0] for lv in (1.0, 0.25)}
    br = pl.read_parquet(run_dir / "optimize" / "block_returns.parquet")

    def returns(cid):
        return br.filter(pl.col("combo_id") == cid).sort("block")["return"].to_numpy()

    want = _hand_hold_returns(df, 29)
    assert want.size == 30
    np.testing.assert_allclose(returns(ids[1.0]), want, rtol=1e-11, atol=1e-14)
    summary = _summary(run_dir, "optimize")
    block = summary["overfitting"][0]
    hold = block["vs_buy_and_hold"]
    assert hold["benchmark"]["return"] == pytest.approx(np.prod(1 + want) - 1, rel=1e-12)
    assert hold["benchmark"]["return"] == pytest.approx(summary["buy_and_hold"][0]["return"], rel=1e-12)
    assert block["best"]["combo_id"] == ids[0.25]
    x = returns(ids[0.25]) - want  # the winner's excess returns, by hand
    e = x - x.mean()
    by_hand = (x.mean() / x.std(ddof=1), (e**3).mean() / (e**2).mean() ** 1.5, (e**4).mean() / (e**2).mean() ** 2)
    d = hold["dsr"]
    assert (d["best_sharpe"], d["skew"], d["kurtosis"]) == pytest.approx(by_hand, rel=1e-9)
    assert block["sentence"] == line and "beats buy-and-hold:" in line


@pytest.mark.parametrize(
    "workflow,phase,windows",
    [
        ("backtest", "backtest", 1),
        ("optimization", "optimize", 1),
        ("{type: train_test, split: 0.6}", "train", 1),
        ("{type: walk_forward, train: 3000, test: 1500}", "train", 4),
    ],
)
def test_every_ranking_phase_has_both_benchmarks(tmp_path, workflow, phase, windows):
    """Backtest, optimization, train/test's train and every walk-forward train window: buy-and-hold's
    return over the luck block's blocks is that window's buy-and-hold of the scored bars."""
    (tmp_path / "run.yaml").write_text(
        "name: both\ndata: {synthetic: {bars: 9000, timeframe: 5m, seed: 2}}\n"
        f"workflow: {workflow}\n"
        "strategies:\n  - type: ma_crossover\n    parameters: {fast: [5, 10], slow: [40, 80]}\n"
    )
    assert main(["run", str(tmp_path / "run.yaml"), "--results-dir", str(tmp_path / "res"), "--quiet"]) == 0
    run_dir = next((tmp_path / "res" / "both").iterdir())
    summary = _summary(run_dir, phase)
    blocks = summary["overfitting"]
    assert len(blocks) == windows
    bh = {(r["symbol"], r["window"]): r["return"] for r in summary["buy_and_hold"]}
    returns = set()
    for b in blocks:
        hold = b["vs_buy_and_hold"]
        assert hold["benchmark"]["return"] == pytest.approx(bh[(b["symbol"], b["window"])], rel=1e-9, abs=1e-12)
        assert hold["spa_p"] is not None and hold["reality_check_p"] is not None and hold["dsr"]["trials"] == 4
        assert hold["verdict"] == verdict(hold) and "; beats buy-and-hold: " in b["sentence"]
        returns.add(round(hold["benchmark"]["return"], 12))
    assert len(returns) == windows  # each window its own bars


# ---------------------------------------------------------------- the statistics, against arch and numpy


def _rising(seed: int, t: int = 150, k: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Buy-and-hold with drift, and combinations partly in it (long/flat-like), a few clearly bad."""
    rng = np.random.default_rng(seed)
    hold = rng.normal(0.0015, 0.01, t)
    r = 0.6 * hold[:, None] + rng.normal(0.0, 0.006, (t, k))
    r[:, :20] -= 0.004
    r[:, 25] += 0.002
    return hold, r


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_spa_against_buy_and_hold_matches_arch(seed):
    arch = pytest.importorskip("arch.bootstrap", reason="arch is in the test extra: pip install -e '.[test]'")
    hold, r = _rising(seed)
    t, k = r.shape
    ours = SPAStream(t, 400, 8, seed, benchmarks={"flat": None, "buy_and_hold": hold})
    for a in range(0, k, 17):  # streamed in chunks of combinations
        ours.add(r[:, a : a + 17])
    for name, bench_losses in (("buy_and_hold", -hold), ("flat", np.zeros(t))):
        spa = arch.SPA(bench_losses, -r, block_size=8, reps=400, seed=seed)  # losses = -returns
        spa.compute()
        p, got = spa.pvalues, ours.result(name)
        assert got["spa_lower_p"] == pytest.approx(p["lower"], abs=1e-12)
        assert got["spa_p"] == pytest.approx(p["consistent"], abs=1e-12)
        assert got["reality_check_p"] == pytest.approx(p["upper"], abs=1e-12)
    assert ours.result("flat")["spa_p"] < 0.05 < ours.result("buy_and_hold")["spa_p"]  # the benchmark matters


def test_evaluate_against_buy_and_hold_matches_arch():
    """The block's ``vs_buy_and_hold.spa``: arch with the block's seed, bootstrap block and replicates."""
    arch = pytest.importorskip("arch.bootstrap", reason="arch is in the test extra")
    hold, r = _rising(4, t=144, k=50)
    ids = np.arange(r.shape[1])
    out = evaluate(
        [(ids[:30], r[:, :30].T), (ids[30:], r[:, 30:].T)],
        n_blocks=144,
        rows=50,
        best_id=25,
        settings=OverfittingConfig(reps=300),
        seed=9,
        block_label="1d",
        hold=hold,
    )
    got = out["vs_buy_and_hold"]["spa"]
    assert got["bootstrap_block"] == 12.0 and got["reps"] == 300 and got["seed"] == 9
    spa = arch.SPA(-hold, -r, block_size=12, reps=300, seed=9)
    spa.compute()
    p = spa.pvalues
    assert (got["spa_lower_p"], got["spa_p"], got["reality_check_p"]) == pytest.approx(
        (p["lower"], p["consistent"], p["upper"]), abs=1e-12
    )
    assert out["vs_buy_and_hold"]["spa_p"] == got["spa_p"]
    assert out["vs_buy_and_hold"]["reality_check_p"] == got["reality_check_p"]


def test_deflated_sharpe_of_excess_returns_by_hand():
    rng = np.random.default_rng(12)
    t, n = 200, 40
    hold = rng.normal(0.0008, 0.01, t)
    r = np.where(rng.random((n, t)) < 0.5, hold, 0.0) + rng.normal(0.0, 0.002, (n, t))
    r[7] = r[3]  # the same trial twice counts once
    r[33] = r[3]  # also across chunks
    ids = np.arange(n)
    chunks = [(ids[:15], r[:15]), (ids[15:], r[15:])]
    kw = dict(n_blocks=t, rows=n, best_id=21, settings=OverfittingConfig(reps=100), seed=0, block_label="1d")
    out = evaluate(chunks, hold=hold, **kw)
    # by hand: excess returns over buy-and-hold, the distinct trials' Sharpe ratios, the best's moments
    x = r - hold
    trials = np.delete(x, [7, 33], axis=0)
    sr_trials = trials.mean(1) / trials.std(1, ddof=1)
    v, big_n = sr_trials.var(ddof=1), trials.shape[0]
    z, g = NormalDist(), 0.5772156649015329
    sr0 = math.sqrt(v) * ((1 - g) * z.inv_cdf(1 - 1 / big_n) + g * z.inv_cdf(1 - 1 / (big_n * math.e)))
    best = x[21]
    e = best - best.mean()
    skew, kurt = (e**3).mean() / (e**2).mean() ** 1.5, (e**4).mean() / (e**2).mean() ** 2
    sr = best.mean() / best.std(ddof=1)

    def psr(bench):
        return z.cdf((sr - bench) * math.sqrt(t - 1) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr * sr))

    hold_block = out["vs_buy_and_hold"]
    d = hold_block["dsr"]
    assert d["trials"] == big_n == 38 and d["periods"] == t
    assert d["trial_sharpe_variance"] == pytest.approx(v, rel=1e-9)
    assert d["expected_max_sharpe"] == pytest.approx(sr0, rel=1e-9)
    assert (d["best_sharpe"], d["skew"], d["kurtosis"]) == pytest.approx((sr, skew, kurt), rel=1e-9)
    assert hold_block["deflated_sharpe"] == pytest.approx(psr(sr0), rel=1e-9)
    assert d["psr"] == pytest.approx(psr(0.0), rel=1e-9)
    assert 0.01 < psr(sr0) < 0.99  # not a saturated probability: the comparison means something
    # the flat statistics do not change when buy-and-hold is added
    flat = evaluate(chunks, **kw)
    for key in ("deflated_sharpe", "pbo", "spa_p", "reality_check_p", "dsr", "verdict"):
        assert out[key] == flat[key]
    assert "vs_buy_and_hold" not in flat and out["dsr"]["best_sharpe"] != pytest.approx(sr)


def test_not_computable_against_buy_and_hold_says_why():
    r = np.random.default_rng(0).normal(0, 0.01, (10, 8))
    out = evaluate(
        [(np.arange(10), r)],
        n_blocks=8,
        rows=10,
        best_id=0,
        settings=OverfittingConfig(reps=100),
        seed=0,
        block_label="1d",
        hold=np.zeros(8),
    )
    hold = out["vs_buy_and_hold"]
    assert hold["verdict"] == "not computable" and "at least 10" in hold["not_computable"]["spa"]
    assert "luck statistics not computable" in sentence(out, "sharpe", 1.0)


# ---------------------------------------------------------------- verdicts and the sentence


def test_sentence_asks_both_questions():
    block = {
        "combinations": 500,
        "trials": 500,
        "deflated_sharpe": 0.971,
        "pbo": 0.384,
        "spa_p": 0.001,
        "verdict": "mixed evidence",
        "not_computable": {},
        "vs_buy_and_hold": {"deflated_sharpe": 0.031, "spa_p": 0.99, "verdict": "consistent with luck"},
    }
    assert sentence(block, "sharpe", 0.712) == (
        "500 combinations tried: best sharpe 0.712; beats doing nothing: deflated Sharpe 0.97, PBO 0.38, "
        "SPA p = 0.00 - mixed evidence; beats buy-and-hold: deflated Sharpe 0.03, SPA p = 0.99 - consistent with luck."
    )


def test_zero_skill_long_flat_on_a_drift_beats_cash_not_buy_and_hold():
    """Coin-flip exposure to a rising asset: better than cash, never better than holding it."""
    rng = np.random.default_rng(3)
    t, n = 2000, 300
    hold = rng.normal(0.0006, 0.01, t)  # about 15 % a year, Sharpe ~1 at 252 blocks a year
    r = np.where(rng.random((n, t)) < 0.5, hold, 0.0)
    best = int(np.argmax(r.mean(1) / r.std(1, ddof=1)))
    out = evaluate(
        [(np.arange(n), r)],
        n_blocks=t,
        rows=n,
        best_id=best,
        settings=OverfittingConfig(reps=300),
        seed=1,
        block_label="1d",
        hold=hold,
    )
    assert out["spa_p"] <= 0.05 and out["deflated_sharpe"] >= 0.95  # against cash it looks like a find
    hold_block = out["vs_buy_and_hold"]
    assert hold_block["verdict"] == "consistent with luck", hold_block
    assert hold_block["spa_p"] > 0.5 and hold_block["deflated_sharpe"] < 0.5


# ---------------------------------------------------------------- a rising market, from the CLI


def _sp500(tmp_path: Path) -> Path:
    """The S&P 500 index, daily closes 1990-2022, as bars (each opening at the previous close)."""
    src = SHARED / "sp500_index_daily.parquet"
    if not src.exists():
        pytest.skip(f"real data not found at {src}")
    d = pl.read_parquet(src).sort("time")
    c = d["close"].to_numpy()
    o = np.r_[c[0], c[:-1]]
    out = tmp_path / "SP500.parquet"
    pl.DataFrame(
        {"timestamp": d["time"], "open": o, "high": np.maximum(o, c), "low": np.minimum(o, c), "close": c}
    ).write_parquet(out)
    return out


def test_zero_skill_long_flat_on_the_sp500_is_luck_against_buy_and_hold(tmp_path, capsys):
    """500 seeded coin flips, long or flat (``allow_short`` is off by default: -1 becomes flat), on 33
    years of the S&P 500: against doing nothing the winner looks like a find, against buy-and-hold of
    the same days it is consistent with luck.  Default settings, from the CLI, read back from disk."""
    data = _sp500(tmp_path)
    (tmp_path / "rise.yaml").write_text(
        f"name: rise\nplugins: [{ROOT / 'examples' / 'noise.py'}]\ndata: {{path: {data}}}\n"
        "strategies:\n  - type: coin_flip\n    parameters:\n      seed: {start: 0, stop: 499}\n"
        "workflow: optimization\n"
    )
    args = ["run", str(tmp_path / "rise.yaml"), "--results-dir", str(tmp_path / "res"), "--quiet", "--report"]
    assert main(args) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("500 combinations tried"))
    run_dir = next((tmp_path / "res" / "rise").iterdir())
    block = _summary(run_dir, "optimize")["overfitting"][0]
    assert block["sentence"] == line and block["blocks"] > 8000
    # long or flat: about half the time in the market, every trade long
    m = pl.read_parquet(run_dir / "optimize" / "metrics.parquet")
    assert 0.4 < m["exposure"].mean() < 0.6
    assert set(pl.read_parquet(run_dir / "optimize" / "trades.parquet")["direction"]) == {"long"}
    # against doing nothing: the SPA rejects luck and the deflated Sharpe is high
    assert block["spa_p"] <= 0.05 and block["deflated_sharpe"] >= 0.9, line
    # against buy-and-hold: consistent with luck
    hold = block["vs_buy_and_hold"]
    assert hold["verdict"] == "consistent with luck", line
    assert hold["spa_p"] > 0.5 and hold["reality_check_p"] > 0.5 and hold["deflated_sharpe"] < 0.5
    assert hold["benchmark"]["return"] > 5.0  # the index rose more than six-fold
    tail = f"beats buy-and-hold: deflated Sharpe {hold['deflated_sharpe']:.2f}, SPA p = {hold['spa_p']:.2f}"
    assert line.endswith(f"{tail} - consistent with luck.")
    # the report's luck block shows both benchmarks
    page = (run_dir / "report.html").read_text()
    for label, value in (
        ("SPA p (vs doing nothing)", block["spa_p"]),
        ("SPA p (vs buy-and-hold)", hold["spa_p"]),
        ("Reality Check p (vs buy-and-hold)", hold["reality_check_p"]),
        ("deflated Sharpe (vs buy-and-hold, of excess returns)", hold["deflated_sharpe"]),
    ):
        shown = re.search(f"<th>{re.escape(label)}</th><td>([^<]*)</td>", page)
        assert shown and float(shown.group(1)) == pytest.approx(value, rel=1e-3, abs=1e-12), label
