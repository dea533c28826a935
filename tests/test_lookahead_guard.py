"""No peek passes the guard anywhere in a run, and the one no streaming test can see sets off the alarm.

The held peeks (tests/plugins/late_peeks.py) each ran to a Sharpe ratio of 85-146 with
``lookahead_check: passed`` when the guard looked at the first 20,000 bars only: a peek that starts after
bar 30,000, a centred "fast path" for inputs longer than 32,768 bars, and future closes loaded when the
module is imported.  Runs go through the CLI with default settings on 40,000 one-minute bars.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from containers.synthetic import generate
from services.causality import find_leak, one_bar_windows, power_chunkings
from sweep.cli import main

PLUGIN = str(Path(__file__).parent / "plugins" / "late_peeks.py")
BARS = 40_000


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """40,000 one-minute bars as a CSV, and their closes as the file ``known_future`` loads at import."""
    folder = tmp_path_factory.mktemp("peek-data")
    cols = generate(BARS, seed=11, timeframe="1m", price=300.0)
    frame = pl.DataFrame(
        {
            "timestamp": pl.Series(cols["timestamp"]).cast(pl.Datetime("ns", "UTC")),
            **{k: cols[k] for k in ("open", "high", "low", "close", "volume")},
        }
    )
    frame.write_csv(folder / "bars.csv")
    np.savetxt(folder / "closes.txt", pl.read_csv(folder / "bars.csv")["close"].to_numpy(), fmt="%.17g")
    return folder


def _config(folder: Path, data: Path, indicator: str) -> Path:
    y = folder / f"{indicator}.yaml"
    y.write_text(
        f"name: {indicator}\nplugins: [{PLUGIN}]\ndata: {{path: {data / 'bars.csv'}}}\n"
        f"strategies:\n  - type: follow_peek\n    parameters: {{indicator: {indicator}}}\n"
        "portfolio: {allow_short: true}\n"
    )
    return y


@pytest.mark.parametrize(("name", "bar", "reach"), [("late_peek", 30_000, 1), ("long_input_peek", 0, 32_768)])
def test_sweep_run_refuses_a_late_or_long_input_peek(tmp_path, data, capsys, name, bar, reach):
    y = _config(tmp_path, data, name)
    assert main(["run", str(y), "--results-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"late_peeks.{name}" in err and "looks ahead" in err and "Traceback" not in err
    assert f"its value at bar {bar:,}" in err and f"it reached {reach:,} bar(s) into the future" in err
    assert "Fix:" in err and not (tmp_path / "out").exists()  # refused before anything was written


def test_sweep_check_with_its_defaults_catches_both(capsys):
    names = ["indicator:late_peek", "indicator:long_input_peek", "follow_peek"]
    assert main(["check", *names, "--plugins", PLUGIN]) == 1
    out = capsys.readouterr().out
    assert "FAIL indicator 'late_peek'" in out and "FAIL indicator 'long_input_peek'" in out
    assert "after 65,536 bars of other history" in out
    assert "strategy 'follow_peek' looks ahead through indicator 'late_peek'" in out


def test_future_data_loaded_at_import_passes_the_guard_and_sets_off_the_alarm(tmp_path, data):
    y = _config(tmp_path, data, "known_future")
    env = {**os.environ, "SWEEP_TEST_FUTURE_CLOSES": str(data / "closes.txt")}
    proc = subprocess.run(
        [sys.executable, "-m", "sweep", "run", str(y), "--results-dir", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "WARNING (" in proc.stdout and "implausible: combination 0" in proc.stdout
    assert f"sweep check NAME --plugins {PLUGIN}" in proc.stdout
    run = next((tmp_path / "out" / "known_future").iterdir())
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["lookahead_check"]["status"] == "passed"  # no streaming test can see it ...
    assert manifest["plausibility"]["alarm"] is True  # ... the alarm does
    block = json.loads((run / "backtest" / "phase_summary.json").read_text())["plausibility"][0]
    assert block["alarm"] and block["sharpe"] > 10 and block["hit_rate"] > 0.75 and block["exposed_bars"] > 1000


def test_an_honest_plugin_raises_no_alarm(tmp_path, examples, capsys):
    assert main(["run", str(examples / "plugin.yaml"), "--results-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "WARNING" not in out
    run = next((tmp_path / "plugin").iterdir())
    assert json.loads((run / "manifest.json").read_text())["plausibility"] == {"alarm": False, "alarms": []}
    block = json.loads((run / "backtest" / "phase_summary.json").read_text())["plausibility"][0]
    assert block["alarm"] is False and 0.3 < block["hit_rate"] < 0.7 and abs(block["sharpe"]) < 10


@pytest.mark.parametrize("n", [1, 2, 7, 1000, 32_769, 70_536])
def test_chunks_straddle_every_power_of_two(n):
    chunkings = power_chunkings(n)
    lengths = {int(d) for b in chunkings for d in np.diff(b)}
    assert all(b[0] == 0 and b[-1] == n and (np.diff(b) > 0).all() for b in chunkings)
    for k in range(n.bit_length()):
        assert {m for m in (2**k - 1, 2**k, 2**k + 1) if 1 <= m <= n} <= lengths, (n, k)


def test_one_bar_windows_cover_everything_or_include_both_ends():
    assert one_bar_windows(5_000) == [(0, 5_000)]
    w = one_bar_windows(3_000_000, limit=1_000_000)
    assert w[0][0] == 0 and w[-1][1] == 3_000_000 and len(w) == 8
    assert all(a < b <= c for (a, b), (c, _) in zip(w, w[1:]))


def test_a_peek_only_in_mid_sized_chunks_is_found():
    """A kernel that peeks only when handed 100 to 200 bars at once: one pass and one bar at a time are clean."""
    from numba import njit

    @njit
    def mid_sized(x, p, s, out):
        n = x.shape[1]
        for t in range(n):
            out[0, t] = x[0, t + 1] if (100 <= n <= 200 and t + 1 < n) else x[0, t]

    x = np.cumsum(np.random.default_rng(0).normal(size=(1, 5_000)), axis=1)
    leak = find_leak(mid_sized, np.zeros(0), 1, x, 1, chunkings=0)
    assert leak is not None and leak.kind in ("look-ahead", "state")
