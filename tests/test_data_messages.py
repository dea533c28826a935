"""Bad data files, through the CLI: one message naming the real cause and the fix, exit 2, no traceback."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from containers.data import load_universes, sniff_delimiter
from sweep.cli import main
from sweep.config_data import DataConfig, parse_data
from sweep.errors import DataError

HEADER = ("timestamp", "open", "high", "low", "close", "volume")
START = dt.datetime(2024, 3, 26, 13, 30, tzinfo=dt.timezone.utc)


def bars(n: int, zone: str = "+00:00") -> list[list[str]]:
    """``n`` valid one-minute bars as text fields; integer-looking prices (so a later decimal is a surprise)."""
    rows = []
    for i in range(n):
        t = (START + dt.timedelta(minutes=i)).strftime("%Y-%m-%d %H:%M:%S") + zone
        p = 100 + (i * 7) % 13
        rows.append([t, str(p), str(p + 2), str(p - 2), str(p + 1), str(1000 + i)])
    return rows


def write(path: Path, rows, sep: str = ",", header=HEADER) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(sep.join(r) for r in [list(header), *rows]) + "\n")
    return path


def run(tmp_path: Path, data: str, capsys) -> tuple[int, str]:
    """Run a one-strategy sweep on ``data:`` (YAML text) through the CLI; (exit code, stderr)."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data: {data}\nstrategies:\n  - type: ma_crossover\n    parameters: {{fast: 3, slow: 8}}\n")
    rc = main(["run", str(cfg), "--quiet", "--results-dir", str(tmp_path / "out")])
    return rc, capsys.readouterr().err


def refused(tmp_path: Path, data: str, capsys, *words: str) -> str:
    """Assert the run exits 2 with one message holding ``words`` and a fix, and no traceback."""
    rc, err = run(tmp_path, data, capsys)
    assert rc == 2, err
    assert "Fix:" in err and "Traceback" not in err, err
    assert err.count("error:") == 1, err
    for w in words:
        assert w in err, f"{w!r} not in {err!r}"
    return err


# 1. a directory instead of a file ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["bars", "bars.csv"])
@pytest.mark.parametrize("form", ["{{path: {}}}", "{{paths: [{}]}}", "{{paths: {{SPY: {}}}}}"])
def test_directory_is_not_a_file(tmp_path, capsys, name, form):
    (tmp_path / name).mkdir()
    write(tmp_path / name / "SPY_5m.csv", bars(20))
    err = refused(tmp_path, form.format(name), capsys, "is a directory, not a file", "SPY_5m.csv")
    assert "not found" not in err and "must be .csv" not in err


def test_missing_file_still_not_found(tmp_path, capsys):
    refused(tmp_path, "{path: nowhere.csv}", capsys, "data file not found", "nowhere.csv")


# 2. permission denied ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "exc",
    [
        PermissionError(13, "Permission denied"),
        pl.exceptions.ComputeError("failed to open file: Permission denied (os error 13)"),
    ],
)
def test_permission_denied_from_the_reader(tmp_path, capsys, monkeypatch, exc):
    write(tmp_path / "SPY.csv", bars(20))

    def deny(*args, **kwargs):
        raise exc

    monkeypatch.setattr(pl, "read_csv", deny)
    err = refused(tmp_path, "{path: SPY.csv}", capsys, "permission denied", "chmod", "SPY.csv")
    assert "valid CSV" not in err


def test_permission_denied_for_real(tmp_path, capsys):
    f = write(tmp_path / "SPY.csv", bars(20))
    f.chmod(0)
    try:
        if os.access(f, os.R_OK):
            pytest.skip("this user (root?) can read a chmod 000 file")
        refused(tmp_path, "{path: SPY.csv}", capsys, "permission denied", "chmod")
    finally:
        f.chmod(0o644)


# 3. delimiters -------------------------------------------------------------------------------------


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_other_delimiters_are_read(tmp_path, capsys, sep):
    write(tmp_path / "SPY.csv", bars(200), sep=sep)
    rc, err = run(tmp_path, "{path: SPY.csv}", capsys)
    assert rc == 0, err
    write(tmp_path / "ref" / "SPY.csv", bars(200))
    (u,) = load_universes(parse_data({"path": "SPY.csv"}, tmp_path))
    (ref,) = load_universes(parse_data({"path": "ref/SPY.csv"}, tmp_path))
    assert u.symbol == "SPY" and u.n == 200
    assert np.array_equal(u.close, ref.close) and np.array_equal(u.timestamps, ref.timestamps)


def test_sniff_delimiter():
    assert sniff_delimiter(["timestamp;open;high", "2024-01-01 10:00;1,5;2,5"]) == ";"
    assert sniff_delimiter(["a,b,c", '"1,5",2,3']) == ","
    assert sniff_delimiter(["timestamp\topen", "x\t1"]) == "\t"
    assert sniff_delimiter(["timestamp open high"]) == ","


def test_unreadable_semicolon_file_names_the_delimiter(tmp_path, capsys):
    rows = bars(20)
    rows[4] = [*rows[4], "extra"]
    write(tmp_path / "SPY.csv", rows, sep=";")
    refused(tmp_path, "{path: SPY.csv}", capsys, "semicolon", "row 5", "7 fields", "header has 6")


def test_decimal_comma_gets_its_own_hint(tmp_path, capsys):
    rows = [[r[0], *(v + ",25" for v in r[1:5]), r[5]] for r in bars(20)]
    write(tmp_path / "SPY.csv", rows, sep=";")
    refused(tmp_path, "{path: SPY.csv}", capsys, "row 1", "column 'open'", "not a number", "decimal separator")


def test_one_column_file_says_how_it_was_split(tmp_path, capsys):
    write(tmp_path / "SPY.csv", [[r[0].replace(" ", "T"), *r[1:]] for r in bars(20)], sep=" ")
    refused(tmp_path, "{path: SPY.csv}", capsys, "comma-separated", "one column", "separate the columns")


# 4. time zones -------------------------------------------------------------------------------------


@pytest.mark.parametrize("first_zoned", [True, False])
def test_mixed_zoned_and_naive_timestamps(tmp_path, capsys, first_zoned):
    rows = bars(50, zone="+00:00" if first_zoned else "")
    odd = bars(50, zone="" if first_zoned else "+00:00")[30]
    rows[30] = odd
    write(tmp_path / "SPY.csv", rows)
    err = refused(
        tmp_path,
        "{path: SPY.csv}",
        capsys,
        "mixes time-zone-aware and naive timestamps",
        f"row 1 has {rows[0][0]!r}",
        f"row 31 has {odd[0]!r}",
        "use one form",
        "column 'timestamp'",
    )
    assert "cannot read the timestamp" not in err


def test_one_zone_form_still_loads(tmp_path):
    write(tmp_path / "N.csv", bars(30, zone=""))
    write(tmp_path / "Z.csv", bars(30, zone="Z"))
    n, z = load_universes(parse_data({"paths": ["N.csv", "Z.csv"]}, tmp_path))
    assert np.array_equal(n.timestamps, z.timestamps)


# 5. types inferred from the whole file -------------------------------------------------------------


def test_decimal_after_row_10000_loads(tmp_path, capsys):
    rows = bars(12_000)
    rows[11_000][4] = rows[11_000][4] + ".5"
    write(tmp_path / "SPY.csv", rows)
    rc, err = run(tmp_path, "{path: SPY.csv}", capsys)
    assert rc == 0, err
    (u,) = load_universes(parse_data({"path": "SPY.csv"}, tmp_path))
    assert u.n == 12_000 and u.close[11_000] == float(rows[11_000][4])


def test_text_after_row_10000_is_named(tmp_path, capsys):
    rows = bars(12_000)
    rows[11_499][4] = "n/a?"
    write(tmp_path / "SPY.csv", rows)
    refused(tmp_path, "{path: SPY.csv}", capsys, "row 11500", "column 'close'", "not a number", "'n/a?'")


def test_text_in_volume_is_not_silently_zero(tmp_path, capsys):
    rows = bars(30)
    rows[9][5] = "lots"
    write(tmp_path / "SPY.csv", rows)
    refused(tmp_path, "{path: SPY.csv}", capsys, "row 10", "column 'volume'", "not a number")


# 6. symbols ----------------------------------------------------------------------------------------


def test_two_files_with_one_symbol_are_refused(tmp_path, capsys):
    write(tmp_path / "a" / "SPY_x.csv", bars(30))
    write(tmp_path / "b" / "SPY_y.csv", bars(30))
    refused(
        tmp_path,
        "{paths: [a/SPY_x.csv, b/SPY_y.csv]}",
        capsys,
        "a/SPY_x.csv and b/SPY_y.csv both give the symbol 'SPY'",
        "data.paths[1]",
        "give them distinct symbols, e.g. paths: {SPY_A: a/SPY_x.csv, SPY_B: b/SPY_y.csv}",
    )


def test_distinct_symbols_for_the_same_stem_run(tmp_path, capsys):
    write(tmp_path / "a" / "SPY_x.csv", bars(30))
    write(tmp_path / "b" / "SPY_y.csv", bars(30))
    rc, err = run(tmp_path, "{paths: {SPY_A: a/SPY_x.csv, SPY_B: b/SPY_y.csv}}", capsys)
    assert rc == 0, err


def test_same_symbol_refused_from_python_too(tmp_path):
    a = write(tmp_path / "a" / "SPY_x.csv", bars(30))
    b = write(tmp_path / "b" / "SPY_y.csv", bars(30))
    with pytest.raises(DataError, match="gives the symbol 'SPY'") as info:
        load_universes(DataConfig(files=(("SPY", str(a)), ("SPY", str(b)))))
    assert str(a) in str(info.value) and str(b) in str(info.value)


@pytest.mark.parametrize("bad,words", [("SP\x00Y", ("control character", "'SP\\x00Y'")), ("", ("missing symbol",))])
def test_bad_symbol_values_are_named(tmp_path, capsys, bad, words):
    rows = [[r[0], "SPY", *r[1:]] for r in bars(30)]
    rows[2][1] = bad
    write(tmp_path / "multi.csv", rows, header=("timestamp", "symbol", *HEADER[1:]))
    refused(tmp_path, "{path: multi.csv}", capsys, "row 3", "column 'symbol'", *words)


# other files that are not what their name says -----------------------------------------------------


def test_files_that_are_not_what_they_say(tmp_path, capsys):
    (tmp_path / "empty.csv").write_text("")
    refused(tmp_path, "{path: empty.csv}", capsys, "the file is empty")
    write(tmp_path / "text.parquet", bars(10))
    refused(tmp_path, "{path: text.parquet}", capsys, "not a Parquet file", "looks like CSV")
    pl.DataFrame({"timestamp": ["2024-01-01"]}).write_parquet(tmp_path / "real.csv")
    refused(tmp_path, "{path: real.csv}", capsys, "Parquet file, not a CSV", "rename it to .parquet")
    (tmp_path / "latin.csv").write_bytes("timestamp,öpen\n".encode("latin-1"))
    refused(tmp_path, "{path: latin.csv}", capsys, "not UTF-8", "save the file as a UTF-8 CSV")
