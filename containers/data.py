"""The data container: bars from CSV/Parquet (or the synthetic sample), validated, as numpy columns.

Columns are found case-insensitively: a timestamp (``timestamp``, ``datetime``,
``date``, ``time`` or ``ts``), open, high, low, close, and optionally volume
and a symbol column.  Several symbols (a symbol column, or one file each) run
as independent universes (two inputs may not give the same symbol).  A CSV may
be separated by , ; tab or | (found from its header line); column types are
inferred from every row.  Every problem is a DataError naming the file, the
row (1-based, in file order) and column, and the fix.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import attrs
import numpy as np
import polars as pl

from services.errors import DataError

from . import synthetic
from .diskcache import cached_arrays

TIME_COLUMNS = ("timestamp", "datetime", "date", "time", "ts")
PRICE_COLUMNS = ("open", "high", "low", "close")
DELIMITERS = ",;\t|"
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
PARQUET_MAGIC = b"PAR1"
HEAD_BYTES = 64 * 1024
# a clock time followed by Z, UTC or an offset like +00:00 / -0400 / +05
ZONED = r"\d:\d\d(?::\d\d(?:\.\d+)?)?\s*(?:Z|UTC|[+-]\d\d(?::?\d\d)?)$"
# a date, optionally with a clock time, and nothing after it
NAIVE = r"^\d{4}-\d\d-\d\d(?:[ T]\d\d?:\d\d(?::\d\d(?:\.\d+)?)?)?$"
CONTROL = r"[\x00-\x1f\x7f]"


@attrs.frozen(eq=False)
class Universe:
    """One symbol's bars: int64 ns UTC timestamps and float64 OHLCV columns."""

    symbol: str
    timestamps: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    source: str
    bars_per_day: float
    bars_per_year: float
    memo: dict = attrs.field(factory=dict, eq=False, repr=False)  # computed once: fingerprint

    @property
    def n(self) -> int:
        return int(self.close.shape[0])

    def ohlcv(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Bars as a (5, n) C-contiguous block (what the feature hub takes)."""
        sl = slice(start, stop)
        return np.ascontiguousarray(
            np.vstack([self.open[sl], self.high[sl], self.low[sl], self.close[sl], self.volume[sl]])
        )

    def with_frequency(self, bars_per_day: float, bars_per_year: float) -> Universe:
        """The same bars with another inferred frequency (a window sees only what came before it).

        The universe itself when the frequency is its own; the bars' fingerprint is shared either way.
        """
        if (float(bars_per_day), float(bars_per_year)) == (self.bars_per_day, self.bars_per_year):
            return self
        return attrs.evolve(self, bars_per_day=float(bars_per_day), bars_per_year=float(bars_per_year), memo=self.memo)

    def fingerprint(self) -> str:
        """Content hash of the symbol and its bars (computed once)."""
        if "fingerprint" not in self.memo:
            h = hashlib.blake2b(digest_size=8)
            h.update(self.symbol.encode())
            columns = (self.timestamps, self.open, self.high, self.low, self.close, self.volume)
            with ThreadPoolExecutor(2) as pool:  # hashlib releases the GIL: two columns at a time
                for digest in pool.map(_column_digest, columns):
                    h.update(digest)
            self.memo["fingerprint"] = h.hexdigest()
        return self.memo["fingerprint"]

    def describe(self) -> dict:
        ts = self.timestamps.astype("datetime64[ns]")
        return {
            "symbol": self.symbol,
            "source": self.source,
            "bars": self.n,
            "first": str(ts[0]),
            "last": str(ts[-1]),
            "bars_per_day": self.bars_per_day,
            "bars_per_year": self.bars_per_year,
            "timeframe": timeframe_label(self.timestamps),
            "fingerprint": self.fingerprint(),
        }


def _column_digest(a: np.ndarray) -> bytes:
    return hashlib.blake2b(memoryview(np.ascontiguousarray(a)).cast("B"), digest_size=16).digest()


def timeframe_label(timestamps: np.ndarray) -> str:
    """The median spacing of the bars, as 1m / 5m / 1h / 1d / 1w (or seconds)."""
    if timestamps.size < 2:
        return "-"
    step = int(np.median(np.diff(timestamps[:100_000].astype(np.int64)))) // 10**9  # seconds
    for unit, secs in (("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60)):
        if step >= secs and step % secs == 0:
            return f"{step // secs}{unit}"
    return f"{step}s"


def frequency(timestamps: np.ndarray) -> tuple[float, float]:
    """(bars per day, bars per year) inferred from timestamps.

    Intraday data: the median number of bars per UTC date, times 252 sessions.
    Daily or slower: 252 / (median spacing in days).
    """
    if timestamps.size < 2:
        return 1.0, 252.0
    gaps = np.diff(timestamps)
    if gaps.size > 100_000:  # the median spacing of a long series: from 100,000 evenly spread gaps
        gaps = gaps[:: gaps.size // 100_000]
    spacing_days = float(np.median(gaps)) / 86_400e9
    if spacing_days >= 0.8:
        return 1.0, 252.0 / max(1.0, round(spacing_days)) if spacing_days < 6 else 365.25 / spacing_days
    days = timestamps // (86_400 * 10**9)
    starts = np.flatnonzero(np.r_[True, days[1:] != days[:-1]])  # bars are in time order: one run per date
    per_day = float(np.median(np.diff(np.r_[starts, days.size])))
    return per_day, per_day * 252.0


def _find(columns: Sequence[str], wanted: Sequence[str]) -> str | None:
    lower = {c.lower().strip(): c for c in columns}
    for w in wanted:
        if w in lower:
            return lower[w]
    return None


def _is_parquet(path: str) -> bool:
    return path.lower().endswith((".parquet", ".pq"))


def _head(path: str) -> bytes:
    """The file's first bytes (enough for the header line); raises OSError as ``open`` does."""
    with open(path, "rb") as f:
        return f.read(HEAD_BYTES)


def sniff_delimiter(lines: Sequence[str]) -> str:
    """The delimiter of CSV ``lines`` (header first): the one of , ; tab | the header uses most.

    A delimiter that splits every line into as many fields as the header wins
    over one that does not; with none in the header, a comma.
    """
    header, rest = lines[0], lines[1:]

    def score(d: str) -> tuple[bool, int]:
        n = header.count(d)
        return n > 0 and all(line.count(d) == n for line in rest), n

    best = max(DELIMITERS, key=score)
    return best if header.count(best) else ","


def _csv_delimiter(path: str, head: bytes) -> str:
    """Check the first bytes look like CSV text and return its delimiter."""
    if not head.strip():
        raise DataError(path, "the file is empty", fix="point data.path at a CSV with a header row and bars")
    if head.startswith(PARQUET_MAGIC):
        raise DataError(path, "this is a Parquet file, not a CSV", fix="rename it to .parquet")
    lines = head.split(b"\n")
    if len(head) == HEAD_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut off
    try:
        header = lines[0].decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(
            path, "the header line is not UTF-8 text", fix="save the file as a UTF-8 CSV (with a header row)"
        ) from None
    rest = [line.decode("utf-8", "replace") for line in lines[1:6] if line.strip()]
    return sniff_delimiter([header, *rest])


def _check_parquet(path: str, head: bytes) -> None:
    """Refuse a .parquet file that does not start like one (empty, or CSV text under the wrong name)."""
    if not head:
        raise DataError(path, "the file is empty", fix="point data.path at a Parquet file with bars")
    if not head.startswith(PARQUET_MAGIC):
        looks = " (it looks like CSV text)" if head[:64].isascii() and b"," in head else ""
        raise DataError(
            path,
            f"not a Parquet file{looks}",
            fix="rename a CSV to .csv, or write the Parquet file with e.g. polars DataFrame.write_parquet",
        )


def _read(path: str) -> tuple[pl.DataFrame, str | None]:
    """Read a CSV (its delimiter found from the header, types from every row) or Parquet file.

    Returns the frame and the CSV delimiter (None for Parquet); any failure is
    one DataError naming the cause.
    """
    delimiter = None
    try:
        head = _head(path)
        if _is_parquet(path):
            _check_parquet(path, head)
            return pl.read_parquet(path), None
        delimiter = _csv_delimiter(path, head)
        return pl.read_csv(path, separator=delimiter, infer_schema_length=None), delimiter
    except DataError:
        raise
    except Exception as exc:
        raise _read_error(path, exc, delimiter) from None


def _read_error(path: str, exc: Exception, delimiter: str | None) -> DataError:
    """The DataError for an exception raised while opening or parsing ``path``."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, PermissionError) or "permission denied" in text.lower():
        return DataError(
            path,
            "permission denied: this user may not read the file",
            fix=f"make it readable (e.g. chmod a+r {path}) or run as a user who can read it",
        )
    if isinstance(exc, IsADirectoryError):
        return DataError(path, "this is a directory, not a file", fix="point data.path at a .csv or .parquet file")
    if isinstance(exc, FileNotFoundError):
        return DataError(path, "data file not found", fix="fix the path")
    if isinstance(exc, pl.exceptions.NoDataError):
        return DataError(path, "the file is empty", fix="point data.path at a CSV with a header row and bars")
    how = f" (read as {DELIMITER_NAMES[delimiter]}-separated)" if delimiter else ""
    ragged = _ragged_row(path, delimiter) if delimiter and "more fields" in text else None
    if ragged:
        row, got, width = ragged
        return DataError(
            path,
            f"the row has {got} fields but the header has {width}{how}",
            row=row,
            fix="fix that row, or quote values that contain the delimiter",
        )
    fix = "check it is a valid Parquet file" if delimiter is None else "check it is a valid CSV with a header row"
    return DataError(path, f"cannot read the file{how}: {type(exc).__name__}: {text}", fix=fix)


def _ragged_row(path: str, delimiter: str) -> tuple[int, int, int] | None:
    """(data row, its field count, the header's) of the first row with more fields than the header."""
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        reader = csv.reader(f, delimiter=delimiter)
        width = len(next(reader, []))
        for row, fields in enumerate(reader, 1):
            if len(fields) > width:
                return row, len(fields), width
    return None


def _check_one_zone_form(s: pl.Series, col: str, path: str) -> None:
    """Refuse text timestamps that mix time-zone-aware and naive values (naming a row of each)."""
    text = s.str.strip_chars()
    zoned = text.str.contains(ZONED).arg_true()
    naive = text.str.contains(NAIVE).arg_true()
    if len(zoned) and len(naive):
        examples = sorted([(int(zoned[0]), "with a time zone"), (int(naive[0]), "naive")])
        which = " but ".join(f"row {r + 1} has {s[r]!r} ({kind})" for r, kind in examples)
        raise DataError(
            path,
            f"the file mixes time-zone-aware and naive timestamps: {which}",
            column=col,
            fix="use one form: every timestamp with its offset (e.g. 2024-03-26 13:30:00+00:00), "
            "or none (naive times are read as UTC)",
        )


def _timestamps(df: pl.DataFrame, col: str, path: str) -> np.ndarray:
    """The timestamp column as int64 ns UTC (ISO text, dates, datetimes or epoch s/ms/us/ns)."""
    s = df[col]
    if s.dtype == pl.Utf8:
        _check_one_zone_form(s, col, path)
        parsed = s.str.strip_chars().str.to_datetime(time_zone="UTC", strict=False)
        if parsed.null_count() > s.null_count():
            naive = s.str.strip_chars().str.to_datetime(strict=False)
            parsed = naive.dt.replace_time_zone("UTC") if naive.null_count() < parsed.null_count() else parsed
        bad = (parsed.is_null() & s.is_not_null()).arg_true()
        if len(bad):
            r = int(bad[0])
            raise DataError(
                path,
                "cannot read the timestamp",
                row=r + 1,
                column=col,
                value=s[r],
                fix="use ISO timestamps like 2024-03-26 13:30:00+00:00",
            )
        s = parsed
    if s.dtype == pl.Date:
        s = s.cast(pl.Datetime("us"))
    if isinstance(s.dtype, pl.Datetime):
        if s.dtype.time_zone is None:
            s = s.dt.replace_time_zone("UTC")
        out = s.dt.convert_time_zone("UTC").dt.epoch("ns")
    elif s.dtype.is_numeric():
        x = s.cast(pl.Float64)
        mx = float(x.abs().max() or 0)
        scale = 1e9 if mx < 1e11 else (1e6 if mx < 1e14 else (1e3 if mx < 1e17 else 1.0))  # s, ms, us or ns
        out = (x * scale).cast(pl.Int64)
    else:
        raise DataError(path, f"timestamp column has type {s.dtype}", column=col, fix="use ISO text or epoch numbers")
    nulls = out.is_null().arg_true()
    if len(nulls):
        raise DataError(path, "missing timestamp", row=int(nulls[0]) + 1, column=col, fix="remove or fill that row")
    return out.to_numpy().astype(np.int64)


def validate(path: str, ts: np.ndarray, cols: dict[str, np.ndarray], rows: np.ndarray | None = None) -> None:
    """Raise DataError at the first bad row: order, duplicates, NaN, non-positive or inconsistent prices."""

    def row_of(i: int) -> int:
        return int(rows[i]) + 1 if rows is not None else i + 1

    for name in (*PRICE_COLUMNS, "volume"):
        a = cols[name]
        bad = np.flatnonzero(~np.isfinite(a))
        if bad.size:
            raise DataError(
                path,
                "missing or non-finite value",
                row=row_of(bad[0]),
                column=name,
                value=a[bad[0]],
                fix="fill or drop that row",
            )
    for name in PRICE_COLUMNS:
        bad = np.flatnonzero(cols[name] <= 0)
        if bad.size:
            raise DataError(
                path,
                "prices must be positive",
                row=row_of(bad[0]),
                column=name,
                value=float(cols[name][bad[0]]),
                fix="fix or drop that row",
            )
    bad = np.flatnonzero(cols["volume"] < 0)
    if bad.size:
        raise DataError(
            path,
            "volume must not be negative",
            row=row_of(bad[0]),
            column="volume",
            value=float(cols["volume"][bad[0]]),
            fix="fix or drop that row",
        )
    o, h, l, c = (cols[k] for k in PRICE_COLUMNS)
    bad = np.flatnonzero(h < np.maximum(o, c))
    if bad.size:
        i = bad[0]
        raise DataError(
            path,
            f"high {h[i]} is below max(open, close) = {max(o[i], c[i])}",
            row=row_of(i),
            column="high",
            fix="high must be the bar's highest price; fix or drop that row",
        )
    bad = np.flatnonzero(l > np.minimum(o, c))
    if bad.size:
        i = bad[0]
        raise DataError(
            path,
            f"low {l[i]} is above min(open, close) = {min(o[i], c[i])}",
            row=row_of(i),
            column="low",
            fix="low must be the bar's lowest price; fix or drop that row",
        )
    d = np.diff(ts)
    bad = np.flatnonzero(d <= 0)
    if bad.size:
        i = bad[0] + 1
        what = "duplicate timestamp" if d[bad[0]] == 0 else "timestamps are not in increasing order"
        raise DataError(
            path,
            what,
            row=row_of(i),
            value=str(ts[i].astype("datetime64[ns]")),
            fix="sort the bars by time and keep one bar per timestamp",
        )


def _resample(ts: np.ndarray, cols: dict[str, np.ndarray], timeframe: str, path: str):
    df = pl.DataFrame({"timestamp": pl.Series(ts).cast(pl.Datetime("ns", "UTC")), **cols})
    every = timeframe
    spacing = np.median(np.diff(ts)) if ts.size > 1 else 0
    unit_ns = {"s": 1e9, "m": 60e9, "h": 3600e9, "d": 86400e9, "w": 7 * 86400e9}[timeframe[-1]]
    if spacing and int(timeframe[:-1]) * unit_ns < spacing * 0.999:
        raise DataError(
            path,
            f"timeframe {timeframe} is finer than the data's bars",
            fix="use a timeframe that is a multiple of the data's bar length, or drop `timeframe:`",
        )
    out = (
        df.sort("timestamp")
        .group_by_dynamic("timestamp", every=every, closed="left", label="left")
        .agg(
            pl.col("open").first(),
            pl.col("high").max(),
            pl.col("low").min(),
            pl.col("close").last(),
            pl.col("volume").sum(),
        )
    )
    return out["timestamp"].dt.epoch("ns").to_numpy(), {k: out[k].to_numpy().astype(np.float64) for k in cols}


def to_bound(text: str | None) -> int | None:
    """A timestamp as ``data.start``/``end`` (and ``score_from``) read it: int64 ns UTC, or None."""
    if not text:
        return None
    t = np.datetime64(text.replace("+00:00", "").split("+")[0], "ns")
    return int(t.astype(np.int64))


def _universe(symbol, ts, cols, source, cfg, path, rows=None) -> Universe:
    """Validate one symbol's bars (``rows``: their rows in the file), cut to start/end, resample."""
    validate(path, ts, cols, rows)
    start, end = to_bound(cfg.start), to_bound(cfg.end)
    keep = np.ones(ts.size, dtype=bool)
    if start is not None:
        keep &= ts >= start
    if end is not None:
        keep &= ts <= end
    if not keep.any():
        span = f"{ts[0].astype('datetime64[ns]')} to {ts[-1].astype('datetime64[ns]')}" if ts.size else "nothing"
        raise DataError(
            path,
            f"no bars for {symbol} "
            + " and ".join(
                w for w in (f"from {cfg.start}" if cfg.start else "", f"to {cfg.end}" if cfg.end else "") if w
            )
            + f" (the data covers {span})",
            fix="widen data.start/data.end",
        )
    if not keep.all():  # (a mask copies every column, so only when it cuts something)
        ts = ts[keep]
        cols = {k: np.ascontiguousarray(v[keep]) for k, v in cols.items()}
    if cfg.timeframe:
        ts, cols = _resample(ts, cols, cfg.timeframe, path)
    per_day, per_year = frequency(ts)
    return Universe(
        symbol,
        np.ascontiguousarray(ts),
        cols["open"],
        cols["high"],
        cols["low"],
        cols["close"],
        cols["volume"],
        source,
        per_day,
        per_year,
    )


def _columns(df: pl.DataFrame, path: str, delimiter: str | None) -> tuple[str, dict[str, str], str | None]:
    """(timestamp column, {open/high/low/close: column}, volume column or None) of the file."""
    names = df.columns
    found = f"found: {', '.join(names)}"
    if delimiter and len(names) == 1:
        found = f"read as {DELIMITER_NAMES[delimiter]}-separated, found one column: {names[0]}"
    tcol = _find(names, TIME_COLUMNS)
    if tcol is None:
        raise DataError(
            path,
            f"no timestamp column ({found})",
            fix=f"name one of the columns {', '.join(TIME_COLUMNS)}"
            + ("; separate the columns with , ; tab or |" if len(names) == 1 else ""),
        )
    prices = {}
    for want in PRICE_COLUMNS:
        col = _find(names, (want, want[0]))
        if col is None:
            raise DataError(
                path,
                f"missing column {want!r} ({found})",
                fix="provide open, high, low and close columns (any letter case)",
            )
        prices[want] = col
    return tcol, prices, _find(names, ("volume", "vol", "v"))


def _number_fix(value: object, delimiter: str | None) -> str:
    """How to fix a price or volume text that is not a number (a decimal comma gets its own hint)."""
    if delimiter != "," and isinstance(value, str) and re.fullmatch(r"\s*-?\d+,\d+\s*", value):
        return "use a dot as the decimal separator (e.g. 521.23), with no thousands separators"
    return "fix that value"


def _numbers(df: pl.DataFrame, col: str, path: str, delimiter: str | None) -> pl.Series:
    """A price or volume column as Float64 (empty values null); text that is not a number is refused."""
    s = df[col]
    if s.dtype != pl.Utf8:
        return s.cast(pl.Float64, strict=False)
    text = s.str.strip_chars()
    x = text.cast(pl.Float64, strict=False)
    bad = (x.is_null() & text.is_not_null() & (text != "")).arg_true()
    if len(bad):
        r = int(bad[0])
        raise DataError(path, "not a number", row=r + 1, column=col, value=s[r], fix=_number_fix(s[r], delimiter))
    return x


def _symbol_values(df: pl.DataFrame, col: str, path: str) -> np.ndarray:
    """The symbol column as text; refuses empty values and control characters (NUL, tab, newline...)."""
    s = df[col].cast(pl.Utf8)
    checks = (
        ("missing symbol", s.is_null() | (s.str.strip_chars() == ""), "fill in the symbol or drop that row"),
        (
            "the symbol contains a control character",
            s.str.contains(CONTROL),
            "remove NUL, tab, newline and other control characters from the symbol",
        ),
    )
    for problem, mask, fix in checks:
        bad = mask.arg_true()
        if len(bad):
            r = int(bad[0])
            raise DataError(path, problem, row=r + 1, column=col, value=s[r], fix=fix)
    return s.to_numpy()


def _by_symbol(path: str, syms: np.ndarray, col: str, ts_all, all_cols, cfg) -> list[Universe]:
    """One universe per symbol of the symbol column (or per symbol in ``data.symbols``)."""
    universes = []
    wanted = cfg.symbols or tuple(dict.fromkeys(syms.tolist()))
    for sym in wanted:
        mask = syms == sym
        if not mask.any():
            raise DataError(
                path,
                f"symbol {sym!r} is not in column {col!r}",
                column=col,
                fix=f"symbols in the file: {', '.join(sorted(set(syms.tolist()))[:20])}",
            )
        rows = np.flatnonzero(mask)
        cols = {k: v[rows] for k, v in all_cols.items()}
        universes.append(_universe(str(sym), ts_all[rows], cols, path, cfg, path, rows))
    return universes


def load_file(path: str, symbol: str | None, cfg) -> list[Universe]:
    """Read, check and validate one data file: a universe per symbol (``symbol``, its column, or the file name)."""
    df, delimiter = _read(path)
    if df.height == 0:
        raise DataError(path, "the file has no rows", fix="point data.path at a file with bars")
    tcol, prices, vcol = _columns(df, path, delimiter)
    scol = _find(df.columns, (cfg.symbol_column.lower(), "symbol", "ticker"))
    ts_all = _timestamps(df, tcol, path)
    all_cols = {want: _numbers(df, col, path, delimiter).to_numpy().astype(np.float64) for want, col in prices.items()}
    volume = _numbers(df, vcol, path, delimiter).fill_null(0.0) if vcol else pl.zeros(df.height, eager=True)
    all_cols["volume"] = volume.to_numpy().astype(np.float64)
    if scol is not None and symbol is None:
        return _by_symbol(path, _symbol_values(df, scol, path), scol, ts_all, all_cols, cfg)
    sym = symbol or path.replace("\\", "/").split("/")[-1].split(".")[0].split("_")[0]
    if cfg.symbols and sym not in cfg.symbols and len(cfg.symbols) == 1 and symbol is None:
        sym = cfg.symbols[0]
    return [_universe(sym, ts_all, all_cols, path, cfg, path)]


def _check_distinct_symbols(universes: Sequence[Universe]) -> None:
    """Refuse two inputs that give the same symbol (their results would be mixed up)."""
    seen: dict[str, Universe] = {}
    for u in universes:
        first = seen.setdefault(u.symbol, u)
        if first is not u:
            raise DataError(
                u.source,
                f"gives the symbol {u.symbol!r}, as {first.source} does",
                fix="give them distinct symbols, e.g. paths: "
                f"{{{u.symbol}_A: {first.source}, {u.symbol}_B: {u.source}}}",
            )


SYNTHETIC_CACHE_BARS = 100_000  # longer samples are generated once and then read from the cache folder


def _synthetic(args) -> dict[str, np.ndarray]:
    """The synthetic bars for these generator arguments (cached on disk when long)."""
    if args[0] < SYNTHETIC_CACHE_BARS:
        return synthetic.generate(*args)
    key = f"{args!r}|{hashlib.blake2b(Path(synthetic.__file__).read_bytes(), digest_size=8).hexdigest()}"
    return dict(cached_arrays("synthetic", key, lambda: synthetic.generate(*args)))


def load_universes(data_cfg) -> list[Universe]:
    """Load every symbol of a ``DataConfig`` (files or synthetic) as validated universes."""
    if data_cfg.synthetic is not None:
        s = data_cfg.synthetic
        out = []
        for i, sym in enumerate(s.symbols):
            args = (s.bars, s.seed + 1000 * i, s.timeframe, s.start, s.price, s.drift, s.volatility, s.regimes)
            cols = _synthetic(args)
            ts = cols.pop("timestamp")
            cols.pop("regime")
            out.append(_universe(sym, ts, cols, f"synthetic(seed={s.seed + 1000 * i})", data_cfg, f"synthetic:{sym}"))
        return out
    out = []
    for symbol, path in data_cfg.files:
        out += load_file(path, symbol, data_cfg)
    _check_distinct_symbols(out)
    if data_cfg.symbols:
        missing = [s for s in data_cfg.symbols if s not in {u.symbol for u in out}]
        if missing:
            raise DataError(
                data_cfg.files[0][1],
                f"symbol(s) {', '.join(missing)} not found in the data",
                fix=f"symbols found: {', '.join(u.symbol for u in out)}",
            )
    return out
