"""Honest optimisation as a user meets it: `sweep run` writes and prints how likely its winner is luck."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import sweep
from sweep.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _yaml(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _summary(run_dir: Path, phase: str) -> dict:
    return json.loads((run_dir / phase / "phase_summary.json").read_text())


def test_luck_example_from_the_cli(tmp_path, capsys, monkeypatch):
    """examples/luck.yaml: 500 edge-free strategies; the winner looks good and is called luck."""
    monkeypatch.chdir(ROOT)
    assert main(["run", "examples/luck.yaml", "--results-dir", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("500 combinations tried"))
    assert "deflated Sharpe" in line and "PBO" in line and "SPA p =" in line and line.endswith("consistent with luck.")
    run_dir = next((tmp_path / "luck").iterdir())
    block = _summary(run_dir, "optimize")["overfitting"][0]
    assert block["combinations"] == 500 and block["blocks"] >= 200 and block["block"] == "1d"
    assert block["deflated_sharpe"] < 0.95 and block["spa_p"] > 0.05 and block["sentence"] == line
    best = sweep.open_results(run_dir).best(1)
    assert block["best"]["combo_id"] == best["combo_id"][0] and best["sharpe"][0] > 1.0  # it looks good
    # the block returns are on disk for your own tests: one row per combination and block
    br = pl.read_parquet(run_dir / "optimize" / "block_returns.parquet")
    assert br.columns == ["combo_id", "symbol", "window", "block", "block_start", "return"]
    assert br.height == 500 * block["blocks"]
    growth = br.group_by("combo_id").agg((pl.col("return") + 1).product().alias("g")).sort("combo_id")
    m = pl.read_parquet(run_dir / "optimize" / "metrics.parquet").sort("combo_id")
    np.testing.assert_allclose(growth["g"].to_numpy(), (m["total_return"] + 1).to_numpy(), rtol=1e-9)


def test_train_test_has_a_block_per_train_and_an_out_of_sample_row(tmp_path, capsys):
    y = _yaml(
        tmp_path / "tt.yaml",
        "name: tt\ndata: {synthetic: {bars: 12000, timeframe: 5m, seed: 4}}\n"
        "workflow: {type: train_test, split: 0.6}\n"
        "strategies:\n  - type: ma_crossover\n    parameters: {fast: [5, 10, 20], slow: [40, 80, 160]}\n"
        "top_k: 4\nmin_trades: 0\n",
    )
    assert main(["run", str(y), "--results-dir", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "9 combinations tried" in out and "Out of sample (SYN, 1 window(s)" in out
    run_dir = next((tmp_path / "tt").iterdir())
    assert len(_summary(run_dir, "train")["overfitting"]) == 1
    test = _summary(run_dir, "test")
    assert "overfitting" not in test  # the test phase ranks nothing new
    oos = test["out_of_sample"][0]
    tm = pl.read_parquet(run_dir / "test" / "metrics.parquet")
    assert sorted(tm["train_rank"].to_list()) == [1, 2, 3, 4]
    winner = tm.filter(pl.col("train_rank") == 1)
    assert oos["total_return"] == pytest.approx(winner["total_return"][0], rel=1e-9)
    assert oos["max_drawdown"] == pytest.approx(winner["max_drawdown"][0], rel=1e-9)
    assert oos["sharpe"] == pytest.approx(winner["sharpe"][0], rel=1e-9)


def test_walk_forward_block_per_window_and_stitched_row(tmp_path, capsys):
    y = _yaml(
        tmp_path / "wf.yaml",
        "name: wf\ndata: {synthetic: {bars: 9000, timeframe: 5m, seed: 2}}\n"
        "workflow: {type: walk_forward, train: 3000, test: 1500}\n"
        "strategies:\n  - type: ma_crossover\n    parameters: {fast: [5, 10], slow: [40, 80]}\n",
    )
    assert main(["run", str(y), "--results-dir", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert out.count("combinations tried") == 4 and "window 3:" in out
    run_dir = next((tmp_path / "wf").iterdir())
    blocks = _summary(run_dir, "train")["overfitting"]
    assert [b["window"] for b in blocks] == [0, 1, 2, 3]
    oos = _summary(run_dir, "test")["out_of_sample"][0]
    eq = pl.read_parquet(run_dir / "test" / "equity.parquet").drop_nulls("stitched_growth").sort("bar")
    assert oos["windows"] == 4 and oos["bars"] == eq.height
    assert oos["total_return"] == pytest.approx(eq["stitched_growth"][-1] - 1.0, rel=1e-12)
    assert pl.read_parquet(run_dir / "test" / "metrics.parquet")["train_rank"].to_list() == [1, 1, 1, 1]


def test_few_trades_are_never_ranked_first(tmp_path):
    base = {
        "name": "few",
        "data": {"synthetic": {"bars": 6000, "timeframe": "5m", "seed": 8}},
        "strategies": [{"type": "ma_crossover", "parameters": {"fast": [3, 5, 10, 20], "slow": [30, 100, 400, 900]}}],
        "results_storage": "memory",
    }
    loose = sweep.run({**base, "min_trades": 0}, progress=False)
    trades = loose.metrics["trades"].to_numpy()
    cut = int(np.median(trades)) + 1
    strict = sweep.run({**base, "min_trades": cut}, progress=False)
    ranked = strict.best(16)
    few = (ranked["trades"] < cut).to_numpy()
    assert few.any() and not few[: int((~few).sum())].any()  # every combination with enough trades comes first
    flagged = strict.metrics.filter(pl.col("flags").str.contains("few_trades"))
    assert flagged.height == int((trades < cut).sum())
    s = strict.summary()
    assert s["ranking"]["excluded"] == flagged.height and s["ranking"]["min_trades"] == cut
    assert s["overfitting"][0]["best"]["combo_id"] == ranked["combo_id"][0]


@pytest.mark.parametrize("method", ["trades", "blocks"])
def test_monte_carlo_on_disk_states_selection_and_deflated_sharpe(tmp_path, capsys, method):
    y = _yaml(
        tmp_path / "mc.yaml",
        "name: mc\ndata: {synthetic: {bars: 8000, timeframe: 5m, seed: 6}}\n"
        f"workflow: {{type: monte_carlo, samples: 300, method: {method}, seed: 2}}\n"
        "strategies:\n  - type: ma_crossover\n    parameters: {fast: [5, 10, 20], slow: [40, 80]}\n"
        "top_k: 2\nmin_trades: 0\n",
    )
    assert main(["run", str(y), "--results-dir", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "selected in sample, resampled on the same bars (in sample)" in out and "deflated_sharpe" in out
    run_dir = next((tmp_path / "mc").iterdir())
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "complete"
    mc = pl.read_parquet(run_dir / "resample" / "metrics.parquet")
    assert mc.height == 2 and set(mc["selected_in"]) == {"backtest"} and set(mc["resampled_on"]) == {"in_sample"}
    assert mc["deflated_sharpe"].null_count() == 0 and mc["sharpe_p50"].null_count() == 0
    assert (mc["total_return_p5"] <= mc["total_return_p95"]).all() and (mc["max_drawdown_p95"] >= 0).all()
    # the deflated Sharpe of the best equals the backtest's luck block
    best = _summary(run_dir, "backtest")["overfitting"][0]
    top = mc.filter(pl.col("combo_id") == best["best"]["combo_id"])
    assert top["deflated_sharpe"][0] == pytest.approx(best["deflated_sharpe"], rel=1e-12)
    assert main(["results", str(run_dir), "--phase", "resample"]) == 0
    assert "bootstrap of combinations selected in backtest" in capsys.readouterr().out


def test_monte_carlo_holdout_resamples_the_test_part(tmp_path):
    res = sweep.run(
        {
            "name": "mch",
            "data": {"synthetic": {"bars": 8000, "timeframe": "5m", "seed": 6}},
            "workflow": {"type": "monte_carlo", "samples": 200, "holdout": 0.3},
            "strategies": [{"type": "ma_crossover", "parameters": {"fast": [5, 10, 20], "slow": [40, 80]}}],
            "top_k": 2,
            "min_trades": 0,
        },
        results_dir=tmp_path,
        progress=False,
    )
    assert res.phases == ["backtest", "test", "resample"]
    mc = res.phase("resample")["metrics"]
    assert set(mc["resampled_on"]) == {"holdout"}
    test_ids = set(res.phase("test")["metrics"]["combo_id"])
    assert set(mc["combo_id"]) == test_ids == set(res.best(2)["combo_id"])
    assert res.summary("test")["out_of_sample"][0]["bars"] == 8000 - int(8000 * 0.7)


def test_luck_not_computable_is_said_not_crashed(tmp_path, capsys):
    y = _yaml(
        tmp_path / "short.yaml",
        "name: short\ndata: {synthetic: {bars: 400, timeframe: 5m}}\noverfitting: {block: 1w}\n"
        "strategies:\n  - type: ma_crossover\n    parameters: {fast: [3, 5], slow: [20, 30]}\n",
    )
    assert main(["run", str(y), "--results-dir", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "luck statistics not computable" in out and "at least 10" in out
    one = _yaml(
        tmp_path / "one.yaml",
        "name: one\ndata: {synthetic: {bars: 3000, timeframe: 5m}}\nstrategies:\n  - type: ma_crossover\n",
    )
    assert main(["run", str(one), "--results-dir", str(tmp_path), "--quiet"]) == 0
    assert "only one combination ran" in capsys.readouterr().out
    bad = _yaml(tmp_path / "bad.yaml", "strategies:\n  - type: ma_crossover\noverfitting: {reps: 20}\n")
    assert main(["run", str(bad), "--results-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "overfitting.reps" in err and "Fix:" in err and "Traceback" not in err


def test_memory_estimate_counts_block_returns():
    plan = sweep.expand(
        {
            "data": {"synthetic": {"bars": 1_000_000, "timeframe": "1m"}},
            "strategies": [
                {
                    "type": "ma_crossover",
                    "parameters": {"fast": {"start": 1, "stop": 100}, "slow": {"start": 101, "stop": 200}},
                }
            ],
        }
    )
    mem = plan.memory_estimate()
    assert plan.combinations == 10_000
    blocks = math.ceil(1_000_000 / 390)
    assert mem["block_returns"] >= min(plan.combinations, 2000) * blocks * 8
    assert mem["total"] - mem["features"] < 2 * 2**30  # the feature block (201 rows x 1M bars) may be kept too


def test_memory_estimate_counts_the_kept_feature_block_only_when_it_is_kept(monkeypatch):
    cfg = {
        "data": {"synthetic": {"bars": 200_000, "timeframe": "1m"}},
        "strategies": [{"type": "ma_crossover", "parameters": {"fast": [1, 2, 3], "slow": [10, 20]}}],
    }
    monkeypatch.setenv("SWEEP_FEATURE_CACHE_BYTES", str(2**30))
    kept = sweep.expand(cfg).memory_estimate()["features"]
    monkeypatch.setenv("SWEEP_FEATURE_CACHE_BYTES", "1")
    streamed = sweep.expand(cfg).memory_estimate()["features"]
    assert kept - streamed >= 200_000 * 6 * 8  # the whole block: every bar of at least the 5 MAs + close
