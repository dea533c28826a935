"""Every documented workflow as a user runs it (CLI, real SPY data, results on disk, read back),
and the truths the workflows must tell: no test bar sets up a train result, readable results, clear states."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

import sweep
from sweep.cli import main

GRID = (
    "strategies:\n"
    "  - type: ma_crossover\n    parameters: {fast: [5, 10, 20], slow: [40, 80]}\n"
    "  - type: ma_crossover\n    parameters: {fast: [5, 10], slow: [40]}\n    active_regimes: [up]\n"
    "classifiers:\n  - type: trend\n    parameters: {period: [20, 40]}\n"
    "top_k: 3\n"
)

# the README's workflow table, row by row: (workflow YAML, phases written)
WORKFLOWS = {
    "backtest": ("workflow: backtest\n", ["backtest"]),
    "optimization": ("workflow: {type: optimization, base_pattern: full_backtest}\n", ["optimize"]),
    "train_test": ("workflow: {type: train_test, split: 0.7}\n", ["train", "test"]),
    "walk_forward": ("workflow: {type: walk_forward, train: 6000, test: 3000}\n", ["train", "test"]),
    "monte_carlo_trades": ("workflow: {type: monte_carlo, samples: 200, method: trades}\n", ["backtest", "resample"]),
    "monte_carlo_blocks": (
        "workflow: {type: monte_carlo, samples: 200, method: blocks, block_size: 78}\n",
        ["backtest", "resample"],
    ),
    "monte_carlo_holdout": (
        "workflow: {type: monte_carlo, samples: 200, holdout: 0.3}\n",
        ["backtest", "test", "resample"],
    ),
}


@pytest.mark.parametrize("wf", sorted(WORKFLOWS))
def test_documented_workflow_on_real_spy_data(shared_data, tmp_path, capsys, wf):
    text, phases = WORKFLOWS[wf]
    y = tmp_path / f"{wf}.yaml"
    y.write_text(f"name: {wf}\ndata: {{path: {shared_data / 'SPY_5m.csv'}}}\n" + text + GRID)
    assert main(["run", str(y), "--results-dir", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    run_dir = next((tmp_path / wf).iterdir())
    man = json.loads((run_dir / "manifest.json").read_text())
    assert man["status"] == "complete" and man["phase_order"] == phases and man["data"][0]["symbol"] == "SPY"
    assert "combinations tried" in out  # the luck sentence of the ranking phase
    first = pl.read_parquet(run_dir / phases[0] / "metrics.parquet")
    windows = first["window"].n_unique() if "window" in first.columns else 1
    assert first.height == 16 * windows and {"strategy_entry", "active_regimes", "first_bar", "bars_scored"} <= set(
        first.columns
    )
    assert first.filter(pl.col("strategy_entry") == 1)["active_regimes"].unique().to_list() == ["up"]
    for phase in phases:
        summary = json.loads((run_dir / phase / "phase_summary.json").read_text())
        assert summary["phase"] == phase and summary["windows"]
        assert (run_dir / phase / "metrics.parquet").is_file()
    luck = json.loads((run_dir / phases[0] / "phase_summary.json").read_text())["overfitting"]
    assert luck and all(b["sentence"] for b in luck)
    if "test" in phases:
        tm = pl.read_parquet(run_dir / "test" / "metrics.parquet")
        rank = [c for c in tm.columns if c.endswith("_rank")]
        assert rank and tm[rank[0]].min() == 1
        oos = json.loads((run_dir / "test" / "phase_summary.json").read_text())["out_of_sample"][0]
        assert oos["bars"] > 0 and "Out of sample" in out
    if "resample" in phases:
        mc = pl.read_parquet(run_dir / "resample" / "metrics.parquet")
        assert mc.height == 3 and mc["deflated_sharpe"].null_count() == 0 and mc["total_return_p50"].null_count() == 0
    # and it reads back as a result
    res = sweep.open_results(run_dir)
    assert res.metrics.height == 16 * windows and res.overfitting()[0]["sentence"] == luck[0]["sentence"]


def test_train_results_do_not_depend_on_test_bars(tmp_path):
    """Bars per day and durations come from the bars before the scored window: re-timing the test part
    leaves every train result bitwise identical."""
    from containers.synthetic import generate

    cols = generate(6000, seed=4, timeframe="5m")
    ts = cols.pop("timestamp")
    cols.pop("regime")
    frame = pl.DataFrame({"timestamp": pl.Series(ts).cast(pl.Datetime("ns", "UTC")), **cols})
    split = int(6000 * 0.6)
    respaced = ts.copy()
    respaced[split:] = ts[split] + np.arange(6000 - split, dtype=np.int64) * 15 * 60 * 10**9  # 15-minute bars
    frame.write_csv(tmp_path / "a.csv")
    frame.with_columns(pl.Series("timestamp", respaced).cast(pl.Datetime("ns", "UTC"))).write_csv(tmp_path / "b.csv")
    outs = []
    for name in ("a", "b"):
        cfg = {
            "name": name,
            "data": {"path": str(tmp_path / f"{name}.csv")},
            "workflow": {"type": "train_test", "split": 0.6},
            "strategies": [{"type": "ma_crossover", "parameters": {"fast": [5, 10], "slow": [30, 60]}}],
            "classifiers": [{"type": "hmm", "parameters": {"model_type": "svm", "lookback_days": [5]}}],
        }
        outs.append(sweep.run(cfg, results_dir=tmp_path, progress=False))
    a, b = outs
    drop = ["symbol"]
    assert a.table("metrics", "train").drop(drop).equals(b.table("metrics", "train").drop(drop))
    assert a.table("regimes", "train").drop(drop).equals(b.table("regimes", "train").drop(drop))
    assert a.table("block_returns", "train").drop(drop).equals(b.table("block_returns", "train").drop(drop))
    wa, wb = a.summary("train")["windows"][0], b.summary("train")["windows"][0]
    assert wa["bars_per_year"] == wb["bars_per_year"]
    ta, tb = a.summary("test")["windows"][0], b.summary("test")["windows"][0]
    assert ta["bars_per_day"] == tb["bars_per_day"] == wa["bars_per_day"]  # the test sees only the past


def test_walk_forward_reports_windows_and_untested_bars(tmp_path, capsys):
    y = tmp_path / "wf.yaml"
    y.write_text(
        "name: wf\ndata: {synthetic: {bars: 10000, timeframe: 5m}}\n"
        "workflow: {type: walk_forward, train: 3000, test: 2000}\n"
        "strategies:\n  - type: ma_crossover\n    parameters: {fast: [5, 10], slow: [40]}\n"
    )
    assert main(["run", str(y), "--results-dir", str(tmp_path), "--quiet"]) == 0
    assert "the last 1,000 bars were never tested" in capsys.readouterr().out
    res = sweep.open_results(tmp_path / "wf")
    s = res.summary("test")
    assert s["untested_bars"] == {"SYN": 1000}
    assert [(w["start_bar"], w["stop_bar"]) for w in s["windows"]] == [(3000, 5000), (5000, 7000), (7000, 9000)]
    assert all(w["first"] < w["last"] for w in s["windows"])
    bad = tmp_path / "bad.yaml"
    bad.write_text(y.read_text().replace("test: 2000}", "test: 2000, step: 500}"))
    assert main(["run", str(bad), "--results-dir", str(tmp_path)]) == 2
    assert "workflow.step" in capsys.readouterr().err


def test_readable_results(tmp_path, capsys):
    """Entries told apart, every varying parameter shown, copied results and look-ahead-prone fills warned about."""
    y = tmp_path / "r.yaml"
    y.write_text(
        "name: readable\ndata: {synthetic: {bars: 4000, timeframe: 5m}}\n"
        "strategies:\n"
        "  - type: ma_crossover\n    parameters: {fast: [5, 10], slow: [40, 80]}\n"
        "  - type: ma_crossover\n    parameters: {fast: [5, 10], slow: [40, 80]}\n    active_regimes: [high_vol]\n"
        "classifiers:\n  - type: volatility\n    parameters: {vol_window: [10, 20], rank_window: [50, 100]}\n"
        "execution: {fill: close}\n"
    )
    assert main(["expand", str(y)]) == 0
    out = capsys.readouterr().out
    assert "fill: close" in out and "20 of 32 combinations are distinct" in out
    assert main(["run", str(y), "--results-dir", str(tmp_path), "--top", "40"]) == 0
    cap = capsys.readouterr()
    assert "look-ahead-prone" in cap.err and "20 of 32 combinations are distinct" in cap.err
    header = next(line for line in cap.out.splitlines() if line.startswith("combo_id"))
    for col in ("entry", "active", "fast", "slow", "c.vol_window", "c.rank_window"):
        assert f" {col} " in f" {header} ", col
    res = sweep.open_results(tmp_path / "readable")
    assert any("look-ahead-prone" in w for w in res.manifest["warnings"])
    m = res.metrics
    assert (
        set(m["strategy_entry"]) == {0, 1} and m.filter(pl.col("strategy_entry") == 0)["active_regimes"].is_null().all()
    )
    plan = sweep.expand(str(y))
    gated = int(m.filter(pl.col("strategy_entry") == 1)["combo_id"][0])
    assert plan.combination(gated)["strategy_entry"] == 1 and plan.combination(gated)["active_regimes"] == ["high_vol"]
    assert (m["first_bar"] == m["first_bar"][0]).all() and (m["bars_scored"] == 4000 - m["first_bar"]).all()
    reg = res.regimes
    assert {"bars_in_regime", "return_in_regime", "trades_entered", "pnl_entered", "open_entered"} <= set(reg.columns)
    per = reg.group_by("combo_id").agg(pl.col("bars_in_regime").sum(), pl.col("trades_entered").sum())
    joined = per.join(m.select("combo_id", "bars_scored", "trades"), on="combo_id")
    assert (joined["bars_in_regime"] == joined["bars_scored"] - 1).all()  # every bar return, in the regime in force
    assert (joined["trades_entered"] == joined["trades"]).all()  # every closed trade, in its entry's regime
    still_open = m.filter(pl.col("open_position") != 0)["combo_id"]
    assert reg.filter(pl.col("combo_id").is_in(still_open.to_list()))["open_entered"].sum() == still_open.len()


def test_a_failed_run_is_marked_failed_and_resumes(tmp_path, monkeypatch, capsys):
    import sweep.runner as runner

    cfg = {
        "name": "fails",
        "data": {"synthetic": {"bars": 3000, "timeframe": "5m"}},
        "workflow": {"type": "monte_carlo", "samples": 100},
        "strategies": [{"type": "ma_crossover", "parameters": {"fast": [5, 10], "slow": [40]}}],
    }
    real = runner.resample_phase

    def broken(*a, **k):
        raise OSError("disk went away")

    monkeypatch.setattr(runner, "resample_phase", broken)
    with pytest.raises(OSError):
        sweep.run(cfg, results_dir=tmp_path, progress=False)
    run_dir = next((tmp_path / "fails").iterdir())
    man = json.loads((run_dir / "manifest.json").read_text())
    assert man["status"] == "failed" and "disk went away" in man["error"] and man["phases"] == {"backtest": "complete"}
    monkeypatch.setattr(runner, "resample_phase", real)
    res = sweep.run(cfg, results_dir=tmp_path, resume=True, notices=True, progress=False)
    err = capsys.readouterr().err
    assert f"resuming {run_dir} (status failed: OSError: disk went away)" in err
    assert res.path == run_dir
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "complete"
    assert res.table("metrics", "resample").height == 2


def test_profile_breakdown_from_the_cli(shared_data, tmp_path, capsys):
    """`sweep run --profile` ends with where the wall time went; the stages add up to no more than the total."""
    y = tmp_path / "prof.yaml"
    y.write_text(f"name: prof\ndata: {{path: {shared_data / 'SPY_5m.csv'}}}\nworkflow: optimization\n" + GRID)
    assert main(["run", str(y), "--results-dir", str(tmp_path), "--quiet", "--profile"]) == 0
    err = capsys.readouterr().err
    assert "where the time went" in err
    rows = {}
    for line in err.splitlines()[err.splitlines().index("where the time went (sweep run --profile):") + 2 :]:
        parts = line.split()
        if len(parts) >= 3 and parts[-1].endswith("%"):
            rows[" ".join(parts[:-2])] = float(parts[-2])
    total = rows.pop("total (wall)")
    for stage in ("config and plan", "data", "kernel (bar loop)", "luck statistics", "detail pass (top-k)"):
        assert stage in rows and rows[stage] >= 0.0
    top_level = ("config and plan", "data", "look-ahead check", "features (whole universe)", "luck statistics")
    assert sum(rows[k] for k in top_level if k in rows) <= total + 1e-3
    run_dir = next((tmp_path / "prof").iterdir())
    assert pl.read_parquet(run_dir / "optimize" / "metrics.parquet").height == 16  # the run itself wrote its results
