"""The signal store: every signal pair's changes, content-addressed and shared across runs.

A *signal pair* is one strategy combination with one classifier combination
(what ``decide`` turns into a signal and a regime each bar).  Layout, readable
by polars or duckdb as it is::

    <signals_dir>/SIGNAL_STORE.json              marks the folder as a store (format, version)
    <signals_dir>/<context>/context.json         the data its signals were made on: symbol, source,
                                                 bars, first and last bar, fingerprint, bars per day
    <signals_dir>/<context>/signals-<part>.parquet   changes: pair, bar, signal, regime
    <signals_dir>/<context>/index-<part>.parquet     a row per stored pair: pair, pair_hash,
                                                 code_version, part, changes, its services and parameters

A context is one universe's bars (their content fingerprint) at one inferred
frequency (features that count in days depend on it); a pair is reused only
with the same content hash *and* code version (a hash of the source of its
strategy, classifier and indicators).  A part is written to a temporary name,
synced and renamed; its index part is written after it and is what makes it
count, so a killed run leaves at most an orphan signals part that nothing
reads (``sweep signals`` lists it).  Parts are never rewritten: runs add parts.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path

import numpy as np
import polars as pl

from services.errors import SweepError

from .results import atomic_path, write_json

MARKER = "SIGNAL_STORE.json"
FORMAT = "sweep-signal-store"
VERSION = 1
COMPRESSION = "zstd"  # the store is kept: size on disk matters more than write speed
CHANGES_SCHEMA = {"pair": pl.UInt64, "bar": pl.Int64, "signal": pl.Float64, "regime": pl.Int16}


class StoreError(SweepError, ValueError):
    """A signal store that cannot be used as asked: names the folder or file and the fix."""

    def __init__(self, problem: str, fix: str = "") -> None:
        super().__init__(f"{problem}.\n  Fix: {fix}" if fix else problem)


def open_store(root, create: bool = True) -> SignalStore:
    """The store at ``root`` (made when ``create`` and the folder is missing or empty)."""
    root = Path(root)
    marker = root / MARKER
    if marker.is_file():
        try:
            info = json.loads(marker.read_text())
        except (OSError, ValueError) as exc:
            raise StoreError(f"{marker}: not readable as a signal store marker ({exc})") from None
        if info.get("format") != FORMAT or int(info.get("version", 0)) > VERSION:
            raise StoreError(
                f"{root}: a signal store of another format or a newer version ({info})",
                "use a signals_dir made by this version, or another folder",
            )
        if create:
            remove_temporaries(root)
        return SignalStore(root)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise StoreError(
            f"{root} is not a signal store (no {MARKER}) and is not empty",
            "point signals_dir (or --replay) at a store, or at a new or empty folder",
        )
    if not create:
        raise StoreError(f"{root}: no signal store there", "run workflow: signal_generation first, or fix the path")
    root.mkdir(parents=True, exist_ok=True)
    write_json(marker, {"format": FORMAT, "version": VERSION})
    return SignalStore(root)


def context_key(fingerprint: str, bars_per_day: float) -> str:
    """The folder of a universe's signals: its bars' content and the frequency the features were made with."""
    text = f"{fingerprint}|{float(bars_per_day)!r}|{VERSION}"
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


class SignalStore:
    """A folder of contexts (one per universe and frequency), each a set of append-only parts."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def context(self, info: dict, create: bool = True) -> Context:
        """The context for a universe described by ``info`` (symbol, source, bars, first, last, fingerprint,
        bars_per_day); made on first use when ``create``."""
        key = context_key(info["fingerprint"], info["bars_per_day"])
        path = self.root / key
        if not (path / "context.json").is_file():
            if not create:
                return Context(path, key, info, exists=False)
            path.mkdir(parents=True, exist_ok=True)
            write_json(path / "context.json", info)
        return Context(path, key, info)

    def contexts(self) -> list[Context]:
        out = []
        for d in sorted(p for p in self.root.iterdir() if p.is_dir()):
            f = d / "context.json"
            if f.is_file():
                try:
                    out.append(Context(d, d.name, json.loads(f.read_text())))
                except (OSError, ValueError) as exc:
                    raise StoreError(
                        f"{f}: unreadable ({exc})", f"remove the folder {d} (its signals are lost)"
                    ) from None
        return out


class Context:
    """One universe's stored signals: index rows (what is there) and the change parts."""

    def __init__(self, path: Path, key: str, info: dict, exists: bool = True) -> None:
        self.path, self.key, self.info, self.exists = path, key, info, exists
        self._index: pl.DataFrame | None = None

    def index(self) -> pl.DataFrame:
        """Every stored pair: pair, pair_hash, code_version, part, changes, services and parameters."""
        if self._index is None:
            parts = sorted(self.path.glob("index-*.parquet")) if self.exists else []
            frames = []
            for p in parts:
                try:
                    frames.append(pl.read_parquet(p))
                except Exception as exc:  # noqa: BLE001 - polars raises several kinds for a damaged file
                    raise StoreError(
                        f"{p}: a damaged index part ({type(exc).__name__}: {str(exc).splitlines()[0]})",
                        f"delete it and {p.with_name(p.name.replace('index-', 'signals-'))}; "
                        "their pairs are computed again",
                    ) from None
            self._index = (
                pl.concat(frames, how="diagonal_relaxed")
                if frames
                else pl.DataFrame(schema={"pair": pl.UInt64, "code_version": pl.Utf8, "part": pl.Utf8})
            )
        return self._index

    def stored(self, pairs: np.ndarray, versions: np.ndarray) -> np.ndarray:
        """True where (pair, code version) is stored."""
        ix = self.index()
        if not ix.height:
            return np.zeros(len(pairs), dtype=bool)
        have = set(zip(ix["pair"].to_list(), ix["code_version"].to_list()))
        return np.array([(int(p), str(v)) in have for p, v in zip(pairs, versions)], dtype=bool)

    def orphans(self) -> list[Path]:
        """Signal parts no index part names (left by a killed run; never read)."""
        named = set(self.index()["part"].to_list()) if self.index().height else set()
        return [p for p in sorted(self.path.glob("signals-*.parquet")) if p.name not in named]

    def write(self, index_rows: pl.DataFrame, changes: pl.DataFrame) -> str:
        """Add one part: its changes, then (what makes it count) its index rows; returns the part name."""
        name = f"signals-{uuid.uuid4().hex[:16]}.parquet"
        with atomic_path(self.path / name) as tmp:
            changes.select(list(CHANGES_SCHEMA)).write_parquet(tmp, compression=COMPRESSION)
        rows = index_rows.with_columns(pl.lit(name).alias("part"))
        with atomic_path(self.path / name.replace("signals-", "index-")) as tmp:
            rows.write_parquet(tmp, compression=COMPRESSION)
        self._index = None
        return name

    def read(self, pairs: np.ndarray, versions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(bars, values (changes, 2), offsets) of these pairs, in this order; every one must be stored."""
        ix = self.index()
        want = pl.DataFrame({"pair": np.asarray(pairs, dtype=np.uint64), "code_version": list(map(str, versions))})
        want = want.with_row_index("order")
        where = ix.select("pair", "code_version", "part").unique(["pair", "code_version"], keep="first")
        found = want.join(where, on=["pair", "code_version"], how="left")
        missing = found.filter(pl.col("part").is_null())
        if missing.height:
            raise StoreError(
                f"{self.path}: {missing.height} of the pairs asked for are not stored", "generate them first"
            )
        frames = []
        for part, group in found.group_by("part"):
            path = self.path / part[0]
            try:
                got = pl.scan_parquet(path).filter(pl.col("pair").is_in(group["pair"].implode())).collect()
            except Exception as exc:  # noqa: BLE001
                raise StoreError(
                    f"{path}: a damaged signals part ({type(exc).__name__}: {str(exc).splitlines()[0]})",
                    f"delete it and {path.with_name(path.name.replace('signals-', 'index-'))}; "
                    "their pairs are computed again",
                ) from None
            frames.append(got)
        rows = pl.concat(frames) if frames else pl.DataFrame(schema=CHANGES_SCHEMA)
        order = want.select("pair", "order")
        rows = rows.join(order, on="pair").sort(["order", "bar"])
        counts = np.bincount(rows["order"].to_numpy(), minlength=len(pairs))
        offsets = np.zeros(len(pairs) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        values = np.empty((rows.height, 2))
        values[:, 0] = rows["signal"].to_numpy()
        values[:, 1] = rows["regime"].to_numpy()
        return np.ascontiguousarray(rows["bar"].to_numpy().astype(np.int64)), values, offsets

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.path.iterdir() if p.is_file())


def remove_temporaries(root: Path) -> int:
    """Remove temporary files of writes a killed process left (they never count); returns how many.

    A temporary name carries its writer's pid (``.<name>.<pid>.tmp``): one of a live process - another
    run adding parts right now - is left alone.
    """
    gone = 0
    for p in Path(root).glob("*/.*.tmp"):
        try:
            pid = int(p.name.rsplit(".", 2)[-2])
        except (ValueError, IndexError):
            continue
        if pid != os.getpid() and _alive(pid):
            continue
        try:
            os.unlink(p)
            gone += 1
        except OSError:
            pass
    return gone


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
