"""Data container: formats, symbols, filtering, resampling, validation messages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from containers.data import frequency, load_universes
from sweep.cli import main
from sweep.config_data import parse_data
from sweep.errors import DataError


def write_csv(path: Path, rows, header="timestamp,open,high,low,close,volume") -> Path:
    path.write_text(header + "\n" + "\n".join(",".join(str(v) for v in r) for r in rows) + "\n")
    return path


def good_rows(n=10, start_minute=0):
    rows = []
    for i in range(n):
        p = 100 + i
        rows.append((f"2024-03-26 14:{start_minute + i:02d}:00+00:00", p, p + 1, p - 1, p + 0.5, 1000 + i))
    return rows


def load(tmp_path, raw):
    return load_universes(parse_data(raw, tmp_path))


def test_csv_and_parquet_case_insensitive(tmp_path):
    f = write_csv(tmp_path / "X.csv", good_rows(), header="Timestamp,OPEN,High,low,Close,Volume")
    u = load(tmp_path, {"path": str(f)})[0]
    assert u.symbol == "X" and u.n == 10 and u.close[0] == 100.5
    pl.read_csv(f).write_parquet(tmp_path / "Y_1m.parquet")
    v = load(tmp_path, {"path": "Y_1m.parquet"})[0]
    assert v.symbol == "Y" and np.array_equal(v.close, u.close) and np.array_equal(v.timestamps, u.timestamps)


def test_symbol_column_makes_universes(tmp_path):
    rows = [(*r[:1], "AAA", *r[1:]) for r in good_rows(5)] + [(*r[:1], "BBB", *r[1:]) for r in good_rows(7)]
    f = write_csv(tmp_path / "multi.csv", rows, header="timestamp,symbol,open,high,low,close,volume")
    us = load(tmp_path, {"path": str(f)})
    assert [(u.symbol, u.n) for u in us] == [("AAA", 5), ("BBB", 7)]
    only = load(tmp_path, {"path": str(f), "symbols": ["BBB"]})
    assert [u.symbol for u in only] == ["BBB"]
    with pytest.raises(DataError, match="symbol 'CCC' is not in column"):
        load(tmp_path, {"path": str(f), "symbols": ["CCC"]})


def test_one_file_per_symbol(tmp_path):
    write_csv(tmp_path / "a.csv", good_rows(4))
    write_csv(tmp_path / "b.csv", good_rows(6))
    us = load(tmp_path, {"paths": {"AAA": "a.csv", "BBB": "b.csv"}})
    assert [(u.symbol, u.n) for u in us] == [("AAA", 4), ("BBB", 6)]


def test_start_end_and_resample(tmp_path):
    f = write_csv(tmp_path / "x.csv", good_rows(30))
    u = load(tmp_path, {"path": str(f), "start": "2024-03-26T14:05:00", "end": "2024-03-26T14:14:00"})[0]
    assert u.n == 10 and u.open[0] == 105
    r = load(tmp_path, {"path": str(f), "timeframe": "5m"})[0]
    assert r.n == 6
    assert r.open[0] == 100 and r.close[0] == 104.5 and r.high[0] == 105 and r.low[0] == 99
    assert r.volume[0] == sum(1000 + i for i in range(5))
    with pytest.raises(DataError, match="no bars for x from 2025-01-01"):
        load(tmp_path, {"path": str(f), "start": "2025-01-01"})


@pytest.mark.parametrize(
    "mutate,expect,row,column",
    [
        (
            lambda r: r.__setitem__(3, (r[3][0], r[3][1], r[3][2], r[3][3], "", r[3][5])),
            "missing or non-finite",
            4,
            "close",
        ),
        (
            lambda r: r.__setitem__(2, (r[2][0], 0, r[2][2], r[2][3], r[2][4], r[2][5])),
            "prices must be positive",
            3,
            "open",
        ),
        (
            lambda r: r.__setitem__(5, (r[5][0], r[5][1], r[5][4] - 0.1, r[5][3], r[5][4], r[5][5])),
            "is below max(open, close)",
            6,
            "high",
        ),
        (
            lambda r: r.__setitem__(5, (r[5][0], r[5][1], r[5][2], r[5][1] + 0.1, r[5][4], r[5][5])),
            "is above min(open, close)",
            6,
            "low",
        ),
        (lambda r: r.__setitem__(4, (r[3][0], *r[4][1:])), "duplicate timestamp", 5, None),
        (lambda r: r.__setitem__(4, (r[1][0], *r[4][1:])), "not in increasing order", 5, None),
        (lambda r: r.__setitem__(6, ("yesterday", *r[6][1:])), "cannot read the timestamp", 7, "timestamp"),
        (
            lambda r: r.__setitem__(6, (r[6][0], r[6][1], r[6][2], r[6][3], r[6][4], -5)),
            "volume must not be negative",
            7,
            "volume",
        ),
    ],
)
def test_validation_names_file_row_and_column(tmp_path, mutate, expect, row, column):
    rows = good_rows()
    mutate(rows)
    f = write_csv(tmp_path / "bad.csv", rows)
    with pytest.raises(DataError) as info:
        load(tmp_path, {"path": str(f)})
    msg = str(info.value)
    assert expect in msg and f"row {row}" in msg and "Fix:" in msg and str(f) in msg
    if column:
        assert f"column {column!r}" in msg


def test_missing_column(tmp_path):
    f = write_csv(
        tmp_path / "nc.csv",
        [(r[0], r[1], r[2], r[3], r[5]) for r in good_rows()],
        header="timestamp,open,high,low,volume",
    )
    with pytest.raises(DataError, match="missing column 'close'"):
        load(tmp_path, {"path": str(f)})


def test_frequency_inference():
    minute = np.arange(0, 390 * 60 * 10**9, 60 * 10**9, dtype=np.int64)
    per_day, per_year = frequency(minute)
    assert per_day == 390 and per_year == 390 * 252
    days = np.arange(10, dtype=np.int64) * 86_400 * 10**9
    assert frequency(days) == (1.0, 252.0)


def test_cli_reports_data_errors_with_exit_2(tmp_path, capsys):
    rows = good_rows(300)
    rows[100] = (rows[99][0], *rows[100][1:])
    write_csv(
        tmp_path / "dup.csv",
        [
            (f"2024-03-26 {14 + i // 60:02d}:{i % 60:02d}:00+00:00", *r[1:])
            if i != 100
            else ("2024-03-26 15:39:00+00:00", *r[1:])
            for i, r in enumerate(rows)
        ],
    )
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {path: dup.csv}\nstrategies:\n  - type: momentum\nresults_dir: out\n")
    assert main(["run", str(cfg), "--quiet", "--results-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "duplicate timestamp" in err and "row 101" in err and "Traceback" not in err


def test_too_few_bars_for_warmup(tmp_path, capsys):
    write_csv(tmp_path / "short.csv", good_rows(30))
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {path: short.csv}\nstrategies:\n  - type: ma_crossover\n    parameters: {slow: 50}\n")
    assert main(["run", str(cfg), "--quiet", "--results-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "sma(close,50) needs 49 bars of warm-up" in err and "has 30 bars" in err


def test_real_spy_data(shared_data):
    u = load(shared_data, {"path": str(shared_data / "SPY_5m.csv")})[0]
    assert u.symbol == "SPY" and u.n == 20_769 and 75 <= u.bars_per_day <= 80
    m = load(
        shared_data,
        {"path": str(shared_data / "SPY_1m.parquet"), "timeframe": "15m", "start": "2024-06-01", "end": "2024-06-30"},
    )[0]
    assert 0 < m.n < 1000 and (m.high >= np.maximum(m.open, m.close)).all()
