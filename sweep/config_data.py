"""The ``data:`` section: files or the built-in synthetic sample."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import attrs

from services.errors import ConfigError, check_keys

DATA_KEYS = ("path", "paths", "symbols", "start", "end", "timeframe", "synthetic", "symbol_column")
SYNTHETIC_KEYS = ("bars", "seed", "symbols", "timeframe", "start", "price", "drift", "volatility", "regimes")
TIMEFRAME = re.compile(r"^(\d+)\s*(s|m|min|h|d|w)$")
DATA_SUFFIXES = (".csv", ".parquet", ".pq")
SAMPLE_BARS = 50_000
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@attrs.frozen
class SyntheticConfig:
    """Seeded geometric Brownian motion with regime switches (see containers.synthetic)."""

    bars: int = SAMPLE_BARS
    seed: int = 7
    symbols: tuple[str, ...] = ("SYN",)
    timeframe: str = "1m"
    start: str = "2024-01-02"
    price: float = 100.0
    drift: float = 0.08
    volatility: float = 0.20
    regimes: bool = True


@attrs.frozen
class DataConfig:
    """Where bars come from: ``files`` as (symbol or None, path) pairs, or ``synthetic``."""

    files: tuple[tuple[str | None, str], ...] = ()
    symbols: tuple[str, ...] = ()
    start: str | None = None
    end: str | None = None
    timeframe: str | None = None
    synthetic: SyntheticConfig | None = None
    symbol_column: str = "symbol"
    is_sample: bool = False

    @property
    def is_synthetic(self) -> bool:
        return self.synthetic is not None

    def describe(self) -> str:
        if self.synthetic is not None:
            s = self.synthetic
            what = "built-in synthetic sample" if self.is_sample else "synthetic data"
            return f"{what}: {s.bars:,} {s.timeframe} bars x {len(s.symbols)} symbol(s), seed {s.seed}"
        names = ", ".join(Path(p).name for _, p in self.files)
        return f"{names}" + (f" resampled to {self.timeframe}" if self.timeframe else "")


def parse_timeframe(value: Any, path) -> str:
    """Normalise '5m', '1h', '1d', '15min' to polars duration text ('5m', '1h', '1d')."""
    m = TIMEFRAME.match(str(value).strip().lower()) if isinstance(value, (str, int)) else None
    if not m or int(m.group(1)) < 1:
        raise ConfigError(
            path, "expected a bar length such as 1m, 5m, 15m, 1h or 1d", value=value, fix="write e.g. timeframe: 15m"
        )
    unit = {"min": "m"}.get(m.group(2), m.group(2))
    return f"{int(m.group(1))}{unit}"


def _timestamp(value: Any, path) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00")).isoformat()
        except ValueError:
            pass
    raise ConfigError(
        path, "expected a date or timestamp", value=value, fix="write e.g. 2024-06-01 or 2024-06-01T14:30:00"
    )


def parse_score_from(value: Any) -> str | int | None:
    """``score_from:``: a date or timestamp (as ``data.start`` takes), or a bar number >= 0; None when absent."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        if value >= 0:
            return value
    elif isinstance(value, (str, dt.date)):
        try:
            return _timestamp(value, ("score_from",))
        except ConfigError:
            pass
    raise ConfigError(
        ("score_from",),
        "expected a date or timestamp, or a bar number >= 0 (0 is the first bar after data.start)",
        value=value,
        fix="write e.g. score_from: 2024-06-03, score_from: 2024-06-03T09:30:00 or score_from: 500",
    )


def _data_files_in(folder: Path) -> list[str]:
    """Names of the first few data files in ``folder`` (none when it cannot be listed)."""
    try:
        return sorted(f.name for f in folder.iterdir() if f.is_file() and f.suffix.lower() in DATA_SUFFIXES)[:3]
    except OSError:
        return []


def _resolve_file(value: Any, path, base_dir: Path) -> str:
    """The absolute path of the data file ``value`` names (relative: from ``base_dir``, then the cwd).

    Refuses non-text, a directory, a suffix other than .csv/.parquet/.pq and a missing file.
    """
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(
            path, "expected a path to a CSV or Parquet file", value=value, fix="write e.g. path: data/SPY.csv"
        )
    p = Path(value).expanduser()
    candidates = [p] if p.is_absolute() else [base_dir / p, Path.cwd() / p]
    files = [c for c in candidates if c.is_file()]
    folders = [c for c in candidates if c.is_dir()]
    if folders and not files:
        inside = _data_files_in(folders[0])
        fix = (
            f"name a data file inside it, e.g. {Path(value) / inside[0]}" if inside else "name a .csv or .parquet file"
        )
        raise ConfigError(path, f"{folders[0]} is a directory, not a file", value=value, fix=fix)
    if p.suffix.lower() not in DATA_SUFFIXES:
        raise ConfigError(
            path, "data files must be .csv or .parquet", value=value, fix="convert the file or fix the name"
        )
    if files:
        return str(files[0].resolve())
    tried = " or ".join(str(c) for c in dict.fromkeys(candidates))
    raise ConfigError(
        path,
        f"data file not found (looked for {tried})",
        value=value,
        fix="fix the path (relative paths are tried from the config's folder, then the current directory), "
        "or remove `data:` to use the built-in sample",
    )


def _check_symbols(entries: list[tuple[str, Any, Any]], path, from_names: bool) -> None:
    """Refuse ``paths`` entries (symbol, key, file as written) whose symbol has a control character or repeats."""
    first: dict[str, Any] = {}
    for sym, key, value in entries:
        if CONTROL.search(sym):
            raise ConfigError(tuple(path) + (key,), f"the symbol {sym!r} contains a control character", fix="rename it")
        if sym not in first:
            first[sym] = value
            continue
        how = " (a file's symbol is its name up to the first '_')" if from_names else ""
        raise ConfigError(
            tuple(path) + (key,),
            f"{first[sym]} and {value} both give the symbol {sym!r}{how}, so their results would be mixed up",
            fix=f"give them distinct symbols, e.g. paths: {{{sym}_A: {first[sym]}, {sym}_B: {value}}}",
        )


def _parse_paths(many: Any, path, base_dir: Path) -> list[tuple[str | None, str]]:
    """``paths:`` as (symbol, file) pairs: a mapping symbol -> file, or a list (symbol from each file name)."""
    if isinstance(many, dict) and many:
        entries = [(str(sym), sym, f) for sym, f in many.items()]
    elif isinstance(many, list) and many:
        entries = [(Path(str(f)).stem.split("_")[0], i, f) for i, f in enumerate(many)]
    else:
        raise ConfigError(
            path,
            "expected a list of files or a mapping symbol -> file",
            value=many,
            fix="write paths: {SPY: spy.csv, QQQ: qqq.csv}",
        )
    files = [(sym, _resolve_file(f, tuple(path) + (key,), base_dir)) for sym, key, f in entries]
    _check_symbols(entries, path, from_names=isinstance(many, list))
    return files


def _int(raw, path, low: int) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < low:
        raise ConfigError(path, f"expected a whole number >= {low}", value=raw, fix=f"use an integer of at least {low}")
    return raw


def _float(raw, path, low: float | None = None) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or (low is not None and raw < low):
        bound = f" >= {low}" if low is not None else ""
        raise ConfigError(path, f"expected a number{bound}", value=raw, fix=f"use a number{bound}")
    return float(raw)


def _symbols(raw, path) -> tuple[str, ...]:
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw or not all(isinstance(s, str) and s.strip() for s in raw):
        raise ConfigError(path, "expected a list of symbol names", value=raw, fix="write e.g. symbols: [SPY, QQQ]")
    if len(set(raw)) != len(raw):
        raise ConfigError(path, "symbols are listed twice", value=raw, fix="list each symbol once")
    return tuple(s.strip() for s in raw)


def parse_synthetic(raw: Any, path) -> SyntheticConfig:
    if raw is True or raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(
            path,
            "expected a mapping of synthetic-data settings",
            value=raw,
            fix="write e.g. synthetic: {bars: 100000, seed: 1}",
        )
    check_keys(raw, SYNTHETIC_KEYS, path)
    p = tuple(path)
    kw: dict[str, Any] = {}
    if "bars" in raw:
        kw["bars"] = _int(raw["bars"], p + ("bars",), 2)
    if "seed" in raw:
        kw["seed"] = _int(raw["seed"], p + ("seed",), 0)
    if "symbols" in raw:
        sym = raw["symbols"]
        if isinstance(sym, int) and not isinstance(sym, bool):
            kw["symbols"] = tuple(f"SYN{i + 1}" for i in range(_int(sym, p + ("symbols",), 1)))
        else:
            kw["symbols"] = _symbols(sym, p + ("symbols",))
    if "timeframe" in raw:
        kw["timeframe"] = parse_timeframe(raw["timeframe"], p + ("timeframe",))
        if kw["timeframe"][-1] not in "mhd":
            raise ConfigError(
                p + ("timeframe",),
                "synthetic bars are minutes, hours or days",
                value=raw["timeframe"],
                fix="use e.g. 1m, 5m, 1h or 1d",
            )
    if "start" in raw:
        kw["start"] = _timestamp(raw["start"], p + ("start",))
    if "price" in raw:
        kw["price"] = _float(raw["price"], p + ("price",), 1e-6)
    if "drift" in raw:
        kw["drift"] = _float(raw["drift"], p + ("drift",))
    if "volatility" in raw:
        kw["volatility"] = _float(raw["volatility"], p + ("volatility",), 0.0)
    if "regimes" in raw:
        if not isinstance(raw["regimes"], bool):
            raise ConfigError(
                p + ("regimes",), "expected true or false", value=raw["regimes"], fix="write true or false"
            )
        kw["regimes"] = raw["regimes"]
    return SyntheticConfig(**kw)


def parse_data(raw: Any, base_dir: Path) -> DataConfig:
    """Parse ``data:``; absent means the built-in synthetic sample."""
    path = ("data",)
    if raw is None:
        return DataConfig(synthetic=SyntheticConfig(), is_sample=True)
    if isinstance(raw, str):
        raw = {"path": raw}
    if not isinstance(raw, dict):
        raise ConfigError(
            path,
            "expected a mapping",
            value=raw,
            fix="write data: {path: file.csv} or data: {synthetic: {bars: 10000}}",
        )
    check_keys(raw, DATA_KEYS, path)
    has_files = "path" in raw or "paths" in raw
    if has_files and "synthetic" in raw:
        raise ConfigError(path, "give either path(s) or synthetic, not both", fix="remove one of them")
    kw: dict[str, Any] = {}
    if "start" in raw:
        kw["start"] = _timestamp(raw["start"], path + ("start",))
    if "end" in raw:
        kw["end"] = _timestamp(raw["end"], path + ("end",))
    if kw.get("start") and kw.get("end") and kw["start"] >= kw["end"]:
        raise ConfigError(
            path + ("end",), f"end must be after start ({kw['start']})", value=raw["end"], fix="swap start and end"
        )
    if "timeframe" in raw:
        kw["timeframe"] = parse_timeframe(raw["timeframe"], path + ("timeframe",))
    if "symbols" in raw:
        kw["symbols"] = _symbols(raw["symbols"], path + ("symbols",))
    if "symbol_column" in raw:
        if not isinstance(raw["symbol_column"], str):
            raise ConfigError(path + ("symbol_column",), "expected a column name", value=raw["symbol_column"])
        kw["symbol_column"] = raw["symbol_column"]
    if "synthetic" in raw:
        return DataConfig(synthetic=parse_synthetic(raw["synthetic"], path + ("synthetic",)), **kw)
    if not has_files:
        raise ConfigError(
            path, "no data source given", fix="add path: file.csv (or .parquet), or synthetic: {bars: 10000}"
        )
    if "path" in raw and "paths" in raw:
        raise ConfigError(path + ("paths",), "give path or paths, not both", fix="keep one")
    if "path" in raw:
        files = [(None, _resolve_file(raw["path"], path + ("path",), base_dir))]
    else:
        files = _parse_paths(raw["paths"], path + ("paths",), base_dir)
    return DataConfig(files=tuple(files), **kw)
