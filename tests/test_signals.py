"""Signal generation and replay as a user runs them: the CLI on real SPY data, the store on disk, read back.

Replaying stored signals with the same settings must give the backtest's tables bit for bit; the store
is content-addressed (reused only for the same pair, data and code), grows without rewriting, and
refuses what it cannot use with a message and exit 2, changing nothing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import sweep
from sweep.cli import main

ROOT = Path(__file__).resolve().parents[1]

# every built-in strategy, a classifier, one regime-gated entry, risk and cost grids
EVERY_STRATEGY = """
strategies:
  - type: ma_crossover
    parameters: {fast: [5, 10], slow: [40], kind: [sma, ema]}
  - type: momentum
    parameters: {lookback_period: [10, 30]}
  - type: mean_reversion
    parameters: {window: [20], entry_z: [1.5]}
  - type: rsi_bands
    parameters: {period: [14]}
  - type: breakout
    parameters: {period: [20]}
  - type: bollinger_bands
    parameters: {period: [20]}
  - type: momentum
    parameters: {lookback_period: [20]}
    active_regimes: [up]
classifiers:
  - type: trend
    parameters: {period: [20, 40]}
risk:
  - type: trailing_stop
    parameters: {pct: [0.02]}
portfolio: {allow_short: [true, false]}
execution: {commission: {rate: [0.0, 0.0005]}}
top_k: 3
"""


def _cfg(tmp_path: Path, name: str, data: Path, workflow: str, body: str = EVERY_STRATEGY, extra: str = "") -> Path:
    y = tmp_path / f"{name}.yaml"
    y.write_text(
        f"name: {name}\ndata: {{path: {data}}}\nworkflow: {workflow}\nsignals_dir: {tmp_path / 'store'}\n{extra}" + body
    )
    return y


def _run(args, capsys) -> tuple[int, str, str]:
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def _run_dir(tmp_path: Path, name: str) -> Path:
    return sorted((tmp_path / "res" / name).iterdir())[-1]


def _listing(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def spy5(shared_data) -> Path:
    return shared_data / "SPY_5m.csv"


def test_replay_of_stored_signals_equals_the_backtest(tmp_path, spy5, capsys):
    res = str(tmp_path / "res")
    gen = _cfg(tmp_path, "gen", spy5, "signal_generation")
    code, out, err = _run(["run", str(gen), "--results-dir", res, "--quiet"], capsys)
    assert code == 0, err
    assert "generated, 0 reused" in out
    summary = json.loads((_run_dir(tmp_path, "gen") / "signals" / "phase_summary.json").read_text())
    block = summary["signals"][0]
    plan = sweep.expand(gen, count_data=False)
    assert block["pairs"] == plan.strategy_combinations * plan.classifier_combinations == block["generated"]
    index = pl.read_parquet(_run_dir(tmp_path, "gen") / "signals" / "signals.parquet")
    assert index.height == block["pairs"] and index["part"].null_count() == 0

    rep = _cfg(tmp_path, "rep", spy5, "signal_replay")
    bt = _cfg(tmp_path, "bt", spy5, "backtest")
    code, out, err = _run(["run", str(rep), "--results-dir", res, "--quiet", "--replay-only"], capsys)
    assert code == 0, err
    assert main(["run", str(bt), "--results-dir", res, "--quiet"]) == 0
    capsys.readouterr()
    a, b = _run_dir(tmp_path, "rep") / "replay", _run_dir(tmp_path, "bt") / "backtest"
    ma, mb = pl.read_parquet(a / "metrics.parquet"), pl.read_parquet(b / "metrics.parquet")
    assert ma.height == plan.combinations
    assert_frame_equal(ma, mb, check_exact=True)  # bit for bit, every column
    for table, keys in (("regimes", ["combo_id", "regime"]), ("trades", ["combo_id", "entry_bar", "status"])):
        assert_frame_equal(
            pl.read_parquet(a / f"{table}.parquet").sort(keys),
            pl.read_parquet(b / f"{table}.parquet").sort(keys),
            check_exact=True,
        )
    assert main(["run", str(bt), "--results-dir", res, "--quiet", "--force", "--replay", str(tmp_path / "store")]) == 0
    capsys.readouterr()
    c = _run_dir(tmp_path, "bt") / "backtest"
    assert_frame_equal(pl.read_parquet(c / "metrics.parquet"), mb, check_exact=True)  # --replay on a backtest config
    man = json.loads((c.parent / "manifest.json").read_text())
    assert man["signals"] == {"store": str(tmp_path / "store"), "replay": True}
    # trades and equity of any combination, answered by replay
    again = sweep.open_results(c.parent)
    base = sweep.open_results(b.parent)
    assert_frame_equal(again.equity(7), base.equity(7), check_exact=True)
    assert_frame_equal(again.trades(7), base.trades(7), check_exact=True)


def test_the_store_is_shared_grows_and_reuses(tmp_path, spy5, capsys):
    res = str(tmp_path / "res")
    small = "strategies:\n  - type: ma_crossover\n    parameters: {fast: [5, 10], slow: [40]}\n"
    big = "strategies:\n  - type: ma_crossover\n    parameters: {fast: [5, 10, 20], slow: [40, 80]}\n"
    code, out, _ = _run(
        ["run", str(_cfg(tmp_path, "a", spy5, "signal_generation", small)), "--results-dir", res], capsys
    )
    assert code == 0 and "2 pairs - 2 generated, 0 reused" in out
    store = tmp_path / "store"
    before = _listing(store)
    code, out, _ = _run(["run", str(_cfg(tmp_path, "b", spy5, "signal_generation", big)), "--results-dir", res], capsys)
    assert code == 0 and "6 pairs - 4 generated, 2 reused" in out
    after = _listing(store)
    assert all(after[k] == v for k, v in before.items())  # old parts are never rewritten
    code, out, _ = _run(["run", str(tmp_path / "b.yaml"), "--results-dir", res, "--force"], capsys)
    assert code == 0 and "6 pairs - 0 generated, 6 reused" in out and _listing(store) == after
    # other data (a shorter range) never reuses: a new context
    other = _cfg(tmp_path, "c", spy5, "signal_generation", small, extra="")
    other.write_text(other.read_text().replace(f"{{path: {spy5}}}", f"{{path: {spy5}, end: '2024-12-31'}}"))
    code, out, _ = _run(["run", str(other), "--results-dir", res], capsys)
    assert code == 0 and "2 pairs - 2 generated, 0 reused" in out
    code, out, _ = _run(["signals", str(store), "--json"], capsys)
    info = json.loads(out)
    assert code == 0 and len(info["contexts"]) == 2
    assert sorted(c["pairs"] for c in info["contexts"]) == [2, 6]
    assert all(c["symbol"] == "SPY" and c["size_bytes"] > 0 and not c["orphan_parts"] for c in info["contexts"])
    code, out, _ = _run(["signals", str(store)], capsys)
    assert code == 0 and "2 contexts, 8 pairs" in out and "ma_crossover (6)" in out


def test_changed_code_is_never_reused(tmp_path, spy5, capsys):
    res = str(tmp_path / "res")
    mod = tmp_path / "my_signals.py"
    src = (
        "from numba import njit\nfrom services import strategy, Int\n\n"
        "@strategy(params=[Int('n', 10, low=2)], features=['sma(close,{n})'])\n@njit(cache=True)\n"
        "def above(f, p, regime):\n    return 1.0 if f[0] == f[0] else 0.0\n"
    )
    mod.write_text(src)
    body = "plugins: [my_signals.py]\nstrategies:\n  - type: my_signals:above\n    parameters: {n: [10, 20]}\n"
    gen = _cfg(tmp_path, "g", spy5, "signal_generation", body)
    code, out, err = _run(["run", str(gen), "--results-dir", res, "--quiet"], capsys)
    assert code == 0 and "2 generated" in out, err
    store = tmp_path / "store"
    mod.write_text(src.replace("1.0 if f[0] == f[0] else 0.0", "0.5 if f[0] == f[0] else 0.0"))
    listing = _listing(store)
    rep = _cfg(tmp_path, "r", spy5, "signal_replay", body)
    proc = subprocess.run(
        [sys.executable, "-m", "sweep", "run", str(rep), "--results-dir", res, "--replay-only"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "made by other code" in proc.stderr and "--replay-only" in proc.stderr
    assert _listing(store) == listing  # nothing in the store changed
    proc = subprocess.run(
        [sys.executable, "-m", "sweep", "run", str(gen), "--results-dir", res, "--force"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0 and "2 generated, 0 reused" in proc.stdout, proc.stderr


def test_replay_only_of_signals_never_made_names_them(tmp_path, spy5, capsys):
    res = str(tmp_path / "res")
    body = "strategies:\n  - type: ma_crossover\n    parameters: {fast: [5], slow: [40]}\n"
    assert main(["run", str(_cfg(tmp_path, "g", spy5, "signal_generation", body)), "--results-dir", res]) == 0
    listing = _listing(tmp_path / "store")
    wider = body.replace("fast: [5]", "fast: [5, 7]")
    code, _, err = _run(
        ["run", str(_cfg(tmp_path, "r", spy5, "signal_replay", wider)), "--results-dir", res, "--replay-only"], capsys
    )
    assert code == 2 and "1 of 2 signal pairs are not in" in err and "strategy.fast=7" in err
    assert _listing(tmp_path / "store") == listing
    other = _cfg(tmp_path, "o", spy5, "signal_replay", body)  # the same pair, other bars
    other.write_text(other.read_text().replace(f"{{path: {spy5}}}", f"{{path: {spy5}, end: '2024-12-31'}}"))
    code, _, err = _run(["run", str(other), "--results-dir", res, "--replay-only"], capsys)
    assert code == 2 and "stored for other data: SPY" in err and "Traceback" not in err
    assert _listing(tmp_path / "store") == listing


def test_a_folder_that_is_not_a_store_and_a_damaged_part(tmp_path, spy5, capsys):
    res = str(tmp_path / "res")
    body = "strategies:\n  - type: ma_crossover\n    parameters: {fast: [5], slow: [40]}\n"
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("mine")
    code, _, err = _run(
        ["run", str(_cfg(tmp_path, "x", spy5, "backtest", body)), "--results-dir", res, "--replay", str(junk)], capsys
    )
    assert code == 2 and "is not a signal store" in err and "Fix:" in err
    assert _listing(junk) == {"notes.txt": 4}
    assert main(["run", str(_cfg(tmp_path, "g", spy5, "signal_generation", body)), "--results-dir", res]) == 0
    part = next((tmp_path / "store").rglob("signals-*.parquet"))
    part.write_bytes(part.read_bytes()[: part.stat().st_size // 2])
    listing = _listing(tmp_path / "store")
    code, _, err = _run(["run", str(_cfg(tmp_path, "r", spy5, "signal_replay", body)), "--results-dir", res], capsys)
    assert code == 2 and "damaged signals part" in err and part.name in err and "Traceback" not in err
    assert _listing(tmp_path / "store") == listing


def test_a_killed_generation_leaves_no_partial_part(tmp_path, spy5):
    res = tmp_path / "res"
    body = "strategies:\n  - type: ma_crossover\n    parameters: {fast: [5, 10], slow: [40]}\n"
    gen = _cfg(tmp_path, "g", spy5, "signal_generation", body)
    log = tmp_path / "points.log"
    env = {**os.environ, "SWEEP_CHECKPOINT_LOG": str(log)}
    cmd = [sys.executable, "-m", "sweep", "run", str(gen), "--results-dir", str(res), "--quiet"]
    subprocess.run([*cmd, "--force"], cwd=ROOT, env=env, check=True, capture_output=True)
    labels = log.read_text().splitlines()
    import shutil

    for want in ("signals-", "index-"):
        k = next(i for i, x in enumerate(labels) if want in x and "not yet renamed" in x)
        shutil.rmtree(tmp_path / "store", ignore_errors=True)
        env = {**os.environ, "SWEEP_KILL_AT": str(k + 1)}
        killed = subprocess.run([*cmd, "--force"], cwd=ROOT, env=env, capture_output=True)
        assert killed.returncode == -signal.SIGKILL
        info = json.loads(
            subprocess.run(
                [sys.executable, "-m", "sweep", "signals", str(tmp_path / "store"), "--json"],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        assert sum(c["pairs"] for c in info["contexts"]) == 0  # nothing half-written counts
        done = subprocess.run([*cmd, "--force"], cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 0 and "2 generated, 0 reused" in done.stdout, done.stderr
        assert not list((tmp_path / "store").rglob("*.tmp"))


def test_trace_summarises_a_run(tmp_path, spy5, capsys):
    res = str(tmp_path / "res")
    body = "strategies:\n  - type: ma_crossover\n    parameters: {fast: [5, 10], slow: [40]}\n"
    assert main(["run", str(_cfg(tmp_path, "t", spy5, "backtest", body)), "--results-dir", res, "--quiet"]) == 0
    capsys.readouterr()
    run_dir = _run_dir(tmp_path, "t")
    code, out, _ = _run(["trace", str(run_dir), "--json"], capsys)
    info = json.loads(out)["phases"][0]
    ev = pl.read_parquet(run_dir / "backtest" / "events.parquet")
    tr = pl.read_parquet(run_dir / "backtest" / "trades.parquet")
    assert code == 0 and info["events"] == {k: v for k, v in ev.group_by("event").len().iter_rows()}
    assert info["trades"]["total"] == tr.height and info["trades"]["combinations"] == 2
    code, out, _ = _run(["trace", str(run_dir)], capsys)
    assert code == 0 and f"trades: {tr.height:,}" in out and "POSITION_CLOSE" in out
    assert main(["run", str(_cfg(tmp_path, "g", spy5, "signal_generation", body)), "--results-dir", res]) == 0
    capsys.readouterr()
    code, out, _ = _run(["trace", str(_run_dir(tmp_path, "g"))], capsys)
    changes = pl.read_parquet(_run_dir(tmp_path, "g") / "signals" / "signals.parquet")["changes"].sum()
    assert code == 0 and f"signal changes: {changes:,} over 2 pairs" in out


def test_the_readme_signal_commands(tmp_path, examples, capsys):
    """README: signals.yaml stores, replay.yaml sweeps costs and stops over them (reusing every pair)."""
    res = str(tmp_path / "results")
    code, out, err = _run(["run", str(examples / "signals.yaml"), "--results-dir", res, "--quiet"], capsys)
    assert code == 0 and "8 pairs - 8 generated, 0 reused" in out, err
    code, out, err = _run(["run", str(examples / "replay.yaml"), "--results-dir", res, "--quiet"], capsys)
    assert code == 0, err
    summary = json.loads((sorted((tmp_path / "results" / "replay").iterdir())[-1] / "manifest.json").read_text())
    assert summary["signals"]["replay"] and summary["status"] == "complete"
    m = pl.read_parquet(sorted((tmp_path / "results" / "replay").iterdir())[-1] / "replay" / "metrics.parquet")
    assert m.height == 8 * 3 * 3 * 2
    code, out, _ = _run(["signals", str(tmp_path / "results" / ".signals")], capsys)
    assert code == 0 and "8 pairs" in out  # the replay generated nothing new
    code, out, err = _run(
        ["run", str(examples / "quickstart.yaml"), "--results-dir", res, "--quiet", "--replay", f"{res}/.signals"],
        capsys,
    )
    assert code == 0, err
    code, out, _ = _run(["trace", f"{res}/quickstart"], capsys)
    assert code == 0 and "phase backtest" in out and "trades:" in out
