"""sweep.run / sweep run: results folder, RunResult, tracing, workflows, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import sweep
from sweep.cli import main

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = Path(__file__).parent / "plugins"

SMALL = {
    "name": "small",
    "data": {"synthetic": {"bars": 3000, "timeframe": "5m", "seed": 11}},
    "strategies": [
        {"type": "ma_crossover", "parameters": {"fast": [5, 10], "slow": [30, 60]}},
        {"type": "momentum", "parameters": {"lookback_period": [12, 24], "signal_threshold": 0.001}},
    ],
    "classifiers": [{"type": "trend", "parameters": {"period": [20, 40]}}],
    "top_k": 3,
}


def cfg(**over):
    return {**SMALL, **over}


def test_run_writes_every_file(tmp_path):
    res = sweep.run(cfg(event_tracing=True), results_dir=tmp_path, progress=False)
    p = res.path
    assert p.parent == tmp_path / "small"
    for f in ("manifest.json", "plan.json"):
        assert (p / f).is_file()
    phase = p / "backtest"
    for f in (
        "metrics.parquet",
        "regimes.parquet",
        "trades.parquet",
        "equity.parquet",
        "events.parquet",
        "phase_summary.json",
        "aggregate_results.json",
    ):
        assert (phase / f).is_file(), f
    assert not (phase / "shards").exists()
    assert not list(p.rglob("*.tmp"))
    man = json.loads((p / "manifest.json").read_text())
    assert man["status"] == "complete" and man["config_hash"] and man["data"][0]["fingerprint"]
    assert {"numpy", "numba", "polars", "sweep"} <= set(man["versions"])
    m = pl.read_parquet(phase / "metrics.parquet")
    assert m.height == 12 and {
        "combo_id",
        "combo_hash",
        "symbol",
        "strategy",
        "classifier",
        "strategy.fast",
        "classifier.period",
        "sharpe",
        "max_drawdown",
        "flags",
    } <= set(m.columns)
    assert m["combo_hash"].to_list() == sweep.expand(cfg(), count_data=False).hashes()
    reg = pl.read_parquet(phase / "regimes.parquet")
    assert set(reg["regime"].unique()) <= {"down", "flat", "up"}
    agg = json.loads((phase / "aggregate_results.json").read_text())
    assert agg["counts"]["combinations"] == 12 and "best" in agg
    summary = json.loads((phase / "phase_summary.json").read_text())
    assert summary["events"]["delivered"] > 0


def test_run_result_api(tmp_path):
    res = sweep.run(cfg(), results_dir=tmp_path, progress=False)
    best = res.best(3)
    assert best.height == 3
    vals = best["sharpe"].to_list()
    assert vals == sorted(vals, reverse=True)
    top = int(best["combo_id"][0])
    trades = res.trades(top)
    assert trades.height > 0 and set(trades["combo_id"]) == {top}
    eq = res.equity(top)
    m = res.metrics.filter(pl.col("combo_id") == top)
    assert eq["equity"][-1] == pytest.approx(m["final_equity"][0])
    # a combination outside the top-k is replayed on request, identically
    other = int(res.best(12)["combo_id"][-1])
    assert res.trades(other)["combo_id"].unique().to_list() in ([other], [])
    again = sweep.open_results(res.path)
    assert again.metrics.equals(res.metrics)
    assert again.trades(top).equals(trades)
    replayed = again.equity(other)
    assert replayed["equity"][-1] == pytest.approx(res.metrics.filter(pl.col("combo_id") == other)["final_equity"][0])


def test_finished_run_is_not_recomputed(tmp_path, capsys):
    a = sweep.run(cfg(), results_dir=tmp_path, progress=False)
    b = sweep.run(cfg(), results_dir=tmp_path, progress=True)
    assert a.path == b.path and "already computed" in capsys.readouterr().err
    c = sweep.run(cfg(), results_dir=tmp_path, progress=False, force=True)
    assert c.path != a.path and c.metrics.equals(a.metrics)


def test_memory_storage_writes_nothing(tmp_path):
    res = sweep.run(cfg(results_storage="memory"), results_dir=tmp_path, progress=False)
    assert res.path is None and res.metrics.height == 12 and not any(tmp_path.iterdir())


@pytest.mark.parametrize("policy", ["trade_complete", "sliding_window", "minimal"])
def test_retention_policies(tmp_path, policy):
    res = sweep.run(
        cfg(
            event_tracing=["FILL", "POSITION_CLOSE"],
            retention_policy=policy,
            sliding_window_size=3,
            top_k=0,
            results_storage="memory",
        ),
        progress=False,
    )
    ev = res.events
    if policy == "minimal":
        assert ev.height == 0
        return
    assert set(ev["event"].unique()) <= {"FILL", "POSITION_CLOSE"}
    if policy == "sliding_window":
        assert ev.group_by("combo_id").len()["len"].max() <= 3
    else:  # every kept fill belongs to a closed trade: fills = 2 per closed long-only trade
        per = ev.group_by("combo_id", "event").len().pivot(on="event", index="combo_id", values="len")
        assert (per["FILL"] == 2 * per["POSITION_CLOSE"]).all()


def test_engine_reference_gives_same_results(tmp_path):
    small = cfg(
        data={"synthetic": {"bars": 600, "timeframe": "1h", "seed": 2}},
        classifiers=[{"type": "trend", "parameters": {"period": [10]}}],
        results_storage="memory",
    )
    a = sweep.run(small, progress=False)
    b = sweep.run(small, engine="reference", progress=False)
    for col in ("final_equity", "sharpe", "trades", "max_drawdown", "win_rate"):
        np.testing.assert_allclose(
            a.metrics[col].to_numpy().astype(float), b.metrics[col].to_numpy().astype(float), rtol=1e-9, equal_nan=True
        )


def test_train_test_and_walk_forward(tmp_path):
    tt = sweep.run(cfg(workflow={"type": "train_test", "split": 0.6}, results_storage="memory"), progress=False)
    assert tt.phases == ["train", "test"]
    test = tt.phase("test")["metrics"]
    assert test.height == 3 and set(test["combo_id"]) == set(tt.best(3, phase="train")["combo_id"])
    wf = sweep.run(
        cfg(workflow={"type": "walk_forward", "train": 1000, "test": 500}, results_storage="memory"), progress=False
    )
    tr, te = wf.phase("train")["metrics"], wf.phase("test")["metrics"]
    assert tr["window"].n_unique() == te["window"].n_unique() == 4
    assert te.group_by("window").len()["len"].to_list() == [1, 1, 1, 1]
    eq = wf.phase("test")["equity"]
    assert "stitched_growth" in eq.columns and eq["bar"].is_sorted()


@pytest.mark.parametrize("method", ["trades", "blocks"])
def test_monte_carlo_in_memory(tmp_path, method):
    wf = {"type": "monte_carlo", "samples": 200, "seed": 1, "method": method}
    res = sweep.run(cfg(workflow=wf, results_storage="memory", min_trades=0), progress=False)
    mc = res.phase("resample")["metrics"]
    assert mc.height == 3 and (mc["total_return_p5"] <= mc["total_return_p95"]).all()
    assert mc["sharpe_p50"].null_count() == 0 and mc["deflated_sharpe"].null_count() == 0
    again = sweep.run(cfg(workflow=wf, results_storage="memory", min_trades=0), progress=False)
    assert again.phase("resample")["metrics"].equals(mc)


def test_keep_names_extra_combinations(tmp_path):
    plan = sweep.expand(cfg(), count_data=False)
    res = sweep.run(cfg(top_k=1, keep=[5, plan.hashes()[7]], results_storage="memory"), progress=False)
    assert set(res.phase("backtest")["equity"]["combo_id"].unique()) >= {5, 7}


def test_sample_plugin_swept_from_yaml(tmp_path):
    y = tmp_path / "plugin.yaml"
    y.write_text(
        f"plugins: [{PLUGINS / 'sample_plugin.py'}]\n"
        "data: {synthetic: {bars: 2000, timeframe: 5m}}\n"
        "strategies:\n  - type: slope_follow\n    parameters: {n: [5, 10, 20], band: [0.0, 0.01]}\n"
    )
    assert main(["run", str(y), "--results-dir", str(tmp_path / "out"), "--quiet"]) == 0
    res = sweep.open_results(tmp_path / "out" / "plugin")
    assert res.metrics.height == 6 and res.metrics["trades"].sum() > 0


def test_cli_run_and_results(tmp_path, capsys):
    y = tmp_path / "c.yaml"
    y.write_text(
        "name: cli\ndata: {synthetic: {bars: 2000, timeframe: 5m}}\n"
        "strategies:\n  - type: ma_crossover\n    parameters: {fast: [5, 10], slow: [30, 60]}\n"
    )
    assert main(["run", str(y), "--results-dir", str(tmp_path), "--quiet", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "Top 4 of 4 by sharpe" in out and "results:" in out
    assert main(["results", str(tmp_path / "cli"), "--sort", "total_return", "--top", "2"]) == 0
    assert "top 2 by total_return" in capsys.readouterr().out
    assert main(["results", str(tmp_path / "cli"), "--sort", "nope"]) == 2
    assert main(["results", str(tmp_path / "missing")]) == 2


def test_resume_after_kill_9(tmp_path):
    y = tmp_path / "r.yaml"
    y.write_text(
        "name: resumable\ndata: {synthetic: {bars: 40000, timeframe: 1m, seed: 5}}\n"
        "strategies:\n  - type: ma_crossover\n"
        "    parameters: {fast: {start: 2, stop: 40}, slow: {start: 50, stop: 200, step: 10}}\n"
        "classifiers:\n  - type: volatility\n    parameters: {vol_window: [10, 20]}\n"
    )
    env = {**os.environ, "SWEEP_SHARD_WORK": "1000000", "SWEEP_MIN_SHARD": "16"}
    cmd = [sys.executable, "-m", "sweep", "run", str(y), "--results-dir", str(tmp_path / "out"), "--quiet"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    shards = tmp_path / "out" / "resumable"
    deadline = time.time() + 120
    while time.time() < deadline:
        done = list(shards.glob("*/backtest/shards/*_s*.parquet"))
        if len([d for d in done if ".regimes." not in d.name and ".events." not in d.name]) >= 3:
            break
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    run_dir = next(shards.iterdir())
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "running"
    finished_before = {p.name for p in (run_dir / "backtest" / "shards").glob("*_s*.parquet")}
    resumed = subprocess.run([*cmd, "--resume"], env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stderr
    res = sweep.open_results(run_dir)
    fresh = sweep.run(str(y), results_dir=tmp_path / "fresh", progress=False)
    assert res.manifest["status"] == "complete" and len(finished_before) >= 3
    assert res.metrics.sort("combo_id").equals(fresh.metrics.sort("combo_id"))
    key = ["combo_id", "block"]
    assert res.block_returns.sort(key).equals(fresh.block_returns.sort(key))
    a, b = res.overfitting()[0], fresh.overfitting()[0]
    assert a["sentence"] == b["sentence"] and a["pbo"] == b["pbo"] and a["spa_p"] == b["spa_p"]


def test_traced_events_stream_through_part_files(tmp_path, monkeypatch):
    import sweep.tracesink as ts

    monkeypatch.setattr(ts, "FLUSH_ROWS", 40)  # many small part files per shard
    traced = cfg(event_tracing=["FILL", "POSITION_OPEN", "POSITION_CLOSE"], top_k=2)
    disk = sweep.run(traced, results_dir=tmp_path, progress=False)
    mem = sweep.run({**traced, "results_storage": "memory"}, progress=False)
    key = ["combo_id", "seq", "event"]
    ev_d = pl.read_parquet(disk.path / "backtest" / "events.parquet")
    assert ev_d.height > 40 and ev_d.sort(key).equals(mem.events.sort(key))
    tr_d = pl.read_parquet(disk.path / "backtest" / "trades.parquet")
    tkey = ["combo_id", "entry_bar", "status"]
    assert tr_d.sort(tkey).equals(mem.phase("backtest")["trades"].sort(tkey))
    assert set(tr_d["combo_id"].unique()) == set(range(12))  # every combination's closed trades were traced
    assert not list((disk.path / "backtest").rglob("*part*"))


@pytest.mark.parametrize("workflow", ["signal_generation", "signal_replay"])
def test_signal_modes_run_and_refuse_the_reference_engine(tmp_path, capsys, workflow):
    y = tmp_path / "c.yaml"
    y.write_text(f"workflow: {workflow}\nstrategies:\n  - type: momentum\n")
    assert main(["expand", str(y)]) == 0  # the plan is known
    assert main(["run", str(y), "--quiet", "--results-dir", str(tmp_path), "--engine", "reference"]) == 2
    assert "the reference engine computes every signal itself" in capsys.readouterr().err
    assert main(["run", str(y), "--quiet", "--results-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert ("1 pair - 1 generated" in out) if workflow == "signal_generation" else ("Top 1 of 1" in out)
    assert (tmp_path / ".signals" / "SIGNAL_STORE.json").is_file()  # the default store, under the results root


def test_bad_threads_and_unfinished_results(tmp_path, capsys):
    y = tmp_path / "c.yaml"
    y.write_text("data: {synthetic: {bars: 500, timeframe: 5m}}\nstrategies:\n  - type: momentum\n")
    assert main(["run", str(y), "--quiet", "--threads", "0", "--results-dir", str(tmp_path)]) == 2
    assert "threads: expected a whole number >= 1" in capsys.readouterr().err
    run_dir = tmp_path / "c" / "20990101-000000-unfinished"
    run_dir.mkdir(parents=True)
    (run_dir / "manifest.json").write_text(
        json.dumps({"status": "running", "phase_order": ["backtest"], "source": str(y)})
    )
    assert main(["results", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert "is not complete" in err and "--resume" in err


def test_replay_from_a_file_based_run(tmp_path):
    lines = ["timestamp,open,high,low,close,volume"]
    rng = np.random.default_rng(4)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, 600)))
    for i, c in enumerate(close):
        lines.append(
            f"2024-02-{1 + i // 300:02d} {10 + (i % 300) // 60:02d}:{i % 60:02d}:00,{c},{c * 1.001},{c * 0.999},{c},10"
        )
    (tmp_path / "prices.csv").write_text("\n".join(lines) + "\n")
    y = tmp_path / "f.yaml"
    y.write_text(
        "data: {path: prices.csv}\ntop_k: 1\nstrategies:\n  - type: ma_crossover\n"
        "    parameters: {fast: [3, 5], slow: [20, 30]}\n"
    )
    res = sweep.run(str(y), results_dir=tmp_path / "out", progress=False)
    again = sweep.open_results(res.path)
    other = int(res.best(4)["combo_id"][-1])
    eq = again.equity(other)  # not kept: replayed from the manifest's config, data path made absolute
    assert eq["equity"][-1] == pytest.approx(res.metrics.filter(pl.col("combo_id") == other)["final_equity"][0])


def test_several_symbols_are_independent_universes(tmp_path):
    two = cfg(
        data={"synthetic": {"bars": 2000, "timeframe": "5m", "symbols": ["AAA", "BBB"]}}, results_storage="memory"
    )
    res = sweep.run(two, progress=False)
    m = res.metrics
    assert m.height == 24 and sorted(m["symbol"].unique()) == ["AAA", "BBB"]
    one = sweep.run(
        cfg(
            data={"synthetic": {"bars": 2000, "timeframe": "5m", "symbols": ["AAA", "BBB"]}},
            results_storage="memory",
            name="other",
        ),
        progress=False,
    )
    a = m.filter(pl.col("symbol") == "AAA").sort("combo_id")["final_equity"]
    b = m.filter(pl.col("symbol") == "BBB").sort("combo_id")["final_equity"]
    assert not a.equals(b)  # different data per symbol
    assert one.metrics.sort("symbol", "combo_id")["final_equity"].equals(m.sort("symbol", "combo_id")["final_equity"])
    top = m.filter(pl.col("symbol") == "BBB").sort("combo_id")["combo_id"][0]
    eq = res.equity(top, symbol="BBB")  # replayed on request, for that symbol
    assert set(eq["symbol"].unique()) == {"BBB"}
    want = m.filter((pl.col("symbol") == "BBB") & (pl.col("combo_id") == top))["final_equity"][0]
    assert eq["equity"][-1] == pytest.approx(want)


def test_a_kept_feature_block_and_a_streamed_one_give_the_same_tables(tmp_path):
    """The whole feature block is kept when memory allows (SWEEP_FEATURE_CACHE_BYTES caps it); else streamed."""
    y = tmp_path / "blk.yaml"
    y.write_text(
        "name: blk\ndata: {synthetic: {bars: 6000, timeframe: 5m, seed: 4}}\nworkflow: train_test\n"
        "strategies:\n  - type: ma_crossover\n    parameters: {fast: [3, 5, 8], slow: [20, 40]}\n"
        "classifiers:\n  - type: trend\n    parameters: {period: [20, 40]}\ntop_k: 2\n"
    )
    runs = {}
    for label, cap in (("kept", ""), ("streamed", "1")):
        env = {**os.environ, "SWEEP_FEATURE_CACHE_BYTES": cap, "SWEEP_MIN_SHARD": "4"}
        out = tmp_path / label
        done = subprocess.run(
            [sys.executable, "-m", "sweep", "run", str(y), "--results-dir", str(out), "--quiet"],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
        )
        assert done.returncode == 0, done.stderr
        runs[label] = next((out / "blk").iterdir())
    for phase, tables in (
        ("train", ("metrics", "regimes", "trades", "block_returns")),
        ("test", ("metrics", "equity")),
    ):
        for table in tables:
            a, b = (pl.read_parquet(r / phase / f"{table}.parquet") for r in runs.values())
            key = [c for c in ("combo_id", "regime", "block", "bar", "entry_bar", "status") if c in a.columns]
            assert a.sort(key).equals(b.sort(key)), (phase, table)


def test_the_feature_cache_cap_decides_whether_the_block_is_kept(monkeypatch):
    from containers.data import load_universes
    from containers.feature_hub import FeatureHub
    from sweep.config import load_config
    from sweep.engine import feature_block

    cfg = load_config({**SMALL, "results_storage": "memory"})
    plan = sweep.expand(cfg)
    (u,) = load_universes(cfg.data)
    monkeypatch.setenv("SWEEP_FEATURE_CACHE_BYTES", "1")
    assert feature_block(plan, u) is None  # streamed chunk by chunk in every shard
    monkeypatch.delenv("SWEEP_FEATURE_CACHE_BYTES")
    block = feature_block(plan, u)
    assert block is not None and block.parts.shape[1] == FeatureHub(plan.features, u.bars_per_day).n_rows + 1
    assert block.parts.shape[0] * block.chunk >= u.n  # every bar, computed once
    assert not block.parts.flags.writeable
