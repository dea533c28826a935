"""``score_from:``: one first scored bar, so a combination scores the same alone and in any grid.

Run as a user runs it: YAML files, the ``sweep`` command line, results read back from disk.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import polars as pl
import pytest

import sweep
from sweep.cli import main
from sweep.config import load_config
from sweep.manifest import raw_config

COMPARED = (
    "sharpe",
    "total_return",
    "max_drawdown",
    "trades",
    "final_equity",
    "first_bar",
    "first_time",
    "bars_scored",
)


def write(tmp_path, name: str, data, slow, score_from=None, extra: str = "") -> str:
    text = (
        f"name: {name}\ndata: {{path: {data / 'SPY_5m.csv'}}}\n"
        f"strategies:\n  - type: ma_crossover\n    parameters: {{fast: 10, slow: {slow}}}\n{extra}"
    )
    if score_from is not None:
        text += f"score_from: {score_from}\n"
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return str(path)


def run_cli(tmp_path, config: str, capsys=None) -> tuple[str, pl.DataFrame]:
    """``sweep run CONFIG``: (its standard output, the first phase's metrics.parquet read from disk)."""
    assert main(["run", config, "--results-dir", str(tmp_path / "results"), "--quiet"]) == 0
    out = capsys.readouterr().out if capsys is not None else ""
    res = sweep.open_results(tmp_path / "results" / load_config(config).name)
    return out, pl.read_parquet(res.path / res.main_phase / "metrics.parquet")


def row_of_slow_50(m: pl.DataFrame) -> dict:
    return m.filter(pl.col("strategy.slow") == 50).select(COMPARED).row(0, named=True)


def test_a_combination_scores_the_same_alone_and_in_a_grid(tmp_path, shared_data):
    rows = {}
    for k, score_from in enumerate((None, "2024-06-03", 5000)):
        alone = run_cli(tmp_path, write(tmp_path, f"alone{k}", shared_data, 50, score_from))[1]
        grid = run_cli(tmp_path, write(tmp_path, f"grid{k}", shared_data, "[50, 200]", score_from))[1]
        assert alone.height == 1 and grid.height == 2
        rows[score_from] = alone.select(COMPARED).row(0, named=True), row_of_slow_50(grid)
    a, g = rows[None]
    # the bug: alone, fast 10 / slow 50 is scored from the end of its own warm-up (bar 49), in the grid from the
    # end of slow 200's (bar 199): other bars, other numbers
    assert (a["first_bar"], g["first_bar"]) == (49, 199) and a["sharpe"] != g["sharpe"]
    for score_from in ("2024-06-03", 5000):
        a, g = rows[score_from]
        assert a == g  # every compared value equal, to the bit
        assert a["trades"] > 0
    ts = pl.read_csv(shared_data / "SPY_5m.csv", try_parse_dates=True)["timestamp"]
    first = int(np.searchsorted(ts.dt.epoch("ns").to_numpy(), np.datetime64("2024-06-03", "ns").astype(np.int64)))
    assert rows["2024-06-03"][0]["first_bar"] == first and rows[5000][0]["first_bar"] == 5000


def test_the_summary_names_the_first_scored_bar(tmp_path, shared_data, capsys):
    out, m = run_cli(tmp_path, write(tmp_path, "grid", shared_data, "[50, 200]", "2024-06-03"), capsys)
    first, when, n = m["first_bar"][0], m["first_time"][0], m["bars_scored"][0]
    ts = pl.read_csv(shared_data / "SPY_5m.csv", try_parse_dates=True)["timestamp"]
    assert when == ts[first] and ts[first - 1] < ts[first].replace(hour=0, minute=0) <= ts[first]
    last = ts[first + n - 1]
    line = f"Scored from {when:%Y-%m-%d %H:%M} (bar {first:,}) to {last:%Y-%m-%d %H:%M} (bar {first + n - 1:,})"
    line += f", {n:,} bars"
    assert line in out.splitlines()
    assert first + n == ts.len()  # to the last bar of the data


def test_score_from_is_part_of_the_config_and_replays(tmp_path, shared_data):
    path = write(tmp_path, "grid", shared_data, "[50, 200]", 5000, extra="top_k: 0\n")
    cfg = load_config(path)
    again = load_config(raw_config(cfg))  # what the manifest keeps reloads with score_from
    assert again.score_from == 5000 and again.config_hash == cfg.config_hash
    without = {k: v for k, v in raw_config(cfg).items() if k != "score_from"}
    assert load_config(without).config_hash != cfg.config_hash  # it changes results, so it changes the hash
    run_cli(tmp_path, path)
    res = sweep.open_results(tmp_path / "results" / "grid")  # from disk: the curve is replayed from the manifest
    eq = res.equity(combo_id=1)
    assert eq["bar"][0] == 5000 and res.metrics.filter(pl.col("combo_id") == 1)["first_bar"][0] == 5000


def test_windows_that_start_later_are_unaffected(tmp_path, shared_data):
    wf = "workflow: {type: train_test, split: 0.5}\n"
    _, plain = run_cli(tmp_path, write(tmp_path, "plain", shared_data, "[50, 200]", extra=wf))
    res = sweep.open_results(tmp_path / "results" / "plain")
    test_plain = pl.read_parquet(res.path / "test" / "metrics.parquet")
    _, train = run_cli(tmp_path, write(tmp_path, "later", shared_data, "[50, 200]", 5000, extra=wf))
    res = sweep.open_results(tmp_path / "results" / "later")
    test_later = pl.read_parquet(res.path / "test" / "metrics.parquet")
    assert (train["first_bar"] == 5000).all() and (plain["first_bar"] == 199).all()
    assert test_later.sort("combo_id").select(COMPARED).equals(test_plain.sort("combo_id").select(COMPARED))


@pytest.mark.parametrize(
    ("value", "extra", "says"),
    [
        (20, "", ["inside the warm-up", "sma(close,200)", "bar 199", "got 20"]),
        ("2024-03-01", "", ["inside the warm-up", "bar 199 (2024-03-28 16:55:00)"]),
        ("2030-01-01", "", ["past the end of the data", "2030-01-01"]),
        (10**6, "", ["past the end of the data", "got 1000000"]),
        ("soon", "", ["expected a date or timestamp, or a bar number", "got 'soon'"]),
        (-3, "", ["expected a date or timestamp, or a bar number", "got -3"]),
        (15000, "workflow: {type: train_test, split: 0.3}\n", ["after the end of a window", "bar 15000"]),
    ],
)
def test_bad_score_from_is_refused_by_name(tmp_path, shared_data, value, extra, says):
    path = write(tmp_path, "bad", shared_data, "[50, 200]", value, extra=extra)
    done = subprocess.run(
        [sys.executable, "-m", "sweep", "run", path, "--results-dir", str(tmp_path / "results"), "--quiet"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and done.stderr.startswith("error: ")
    assert "score_from:" in done.stderr and "Fix:" in done.stderr
    for text in says:
        assert text in done.stderr, done.stderr
    assert not (tmp_path / "results" / "bad").exists()  # refused before a run folder is made
