"""Where traced events (and the trades they close) go while a phase runs.

With results on disk, the tracer's kept events are written to Parquet part
files whenever a million have accumulated, together with the trades their
POSITION_CLOSE events describe; a finished shard's parts become its file (a
rename when there is one part, else a streamed concatenation), and a
finished phase's shard files its events.parquet / trades.parquet the same
way, so memory stays flat however many events a sweep traces and a single
shard's events are written once.  With
``results_storage: memory`` everything stays in DataFrames.
"""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl

from containers.data import Universe
from containers.events import Tracer
from services import limits

from .faults import checkpoint
from .frames import events_frame, trades_frame
from .results import PARQUET_COMPRESSION, atomic_path, write_parquet

FLUSH_ROWS = limits.FLUSH_ROWS  # tests lower it


def _atomic_sink(frames: list, path: Path) -> None:
    """Write the concatenation of ``frames`` (paths or DataFrames) to ``path`` atomically."""
    lazy = [pl.scan_parquet(f) if isinstance(f, Path) else f.lazy() for f in frames]
    sink_lazy(pl.concat(lazy, how="diagonal_relaxed"), path)


class TraceSink:
    """Collects one shard's kept events and trades, in memory or as Parquet parts under ``folder``.

    Kept events arrive from the tracer as numpy batches; each flush turns them
    into one events frame and one trades frame (the trades their
    POSITION_CLOSE events describe) and writes each once.  A shard with a
    single part renames it (no second write).
    """

    def __init__(self, tracer: Tracer, universe: Universe, folder: Path | None, flush_rows: int | None = None):
        self.tracer = tracer
        self.universe = universe
        self.folder = folder
        if folder is not None and folder.is_dir():  # parts a killed run left: this shard starts again
            for old in folder.glob("*"):
                old.unlink()
        self.flush_rows = flush_rows or FLUSH_ROWS
        self.events: list = []  # Paths (disk) or DataFrames (memory)
        self.trades: list = []
        self.kept = 0

    def flush(self, force: bool = False, final: bool = False, extra_trades: pl.DataFrame | None = None) -> None:
        """Move the tracer's kept events out (to a part file when on disk) once enough have accumulated."""
        if not force and self.tracer.kept_rows < self.flush_rows:
            return
        batches = self.tracer.take_kept(final)
        ev = pl.DataFrame()
        if batches:  # one frame per batch, chunked together (no copy of all events into one array)
            u = self.universe
            ev = pl.concat([events_frame(b.owner, b.cols, u.symbol, u, seq=b.seq) for b in batches], rechunk=False)
        self.kept += ev.height
        tr = trades_frame(ev, self.universe) if ev.height and "POSITION_CLOSE" in self.tracer.types else pl.DataFrame()
        if extra_trades is not None and extra_trades.height:
            tr = pl.concat([tr, extra_trades], how="diagonal_relaxed") if tr.height else extra_trades
        if self.folder is None:
            if ev.height:
                self.events.append(ev)
            if tr.height:
                self.trades.append(tr)
            return
        k = len(self.events) + len(self.trades)
        for kind, frame, bucket in (("events", ev, self.events), ("trades", tr, self.trades)):
            if frame.height:
                path = self.folder / f"{kind}_part_{k:05d}.parquet"
                write_parquet(path, frame)
                bucket.append(path)

    def finish(self, events_path: Path | None, trades_path: Path | None, open_trades=None) -> tuple:
        """Settle the tracer and return this shard's (events, trades): one file each on disk, else DataFrames.

        ``open_trades`` (positions still open at the end) join the trades.
        """
        self.tracer.settle()
        self.tracer.drop_pending()
        self.flush(force=True, final=True, extra_trades=open_trades)
        if self.folder is None:
            ev = pl.concat(self.events, how="diagonal_relaxed") if self.events else None
            tr = pl.concat(self.trades, how="diagonal_relaxed") if self.trades else None
            return ev, tr
        out = []
        for parts, path in ((self.events, events_path), (self.trades, trades_path)):
            if len(parts) == 1:  # one part: it is the shard's file
                os.replace(parts[0], path)
                checkpoint(f"renamed {path.name}")
                out.append(path)
            elif parts:
                _atomic_sink(parts, path)
                for p in parts:
                    p.unlink()
                out.append(path)
            else:
                out.append(None)
        if self.folder.is_dir() and not any(self.folder.iterdir()):
            self.folder.rmdir()
        return tuple(out)


def combined(main: list, detail: list) -> pl.LazyFrame | Path | None:
    """Event/trade sources (Paths or DataFrames) as one LazyFrame; ``detail`` replaces ``main`` for its combinations.

    A single shard file with nothing to replace is returned as the Path itself (it is moved, not rewritten).
    """
    files = [s for s in main if s is not None]
    if len(files) == 1 and isinstance(files[0], Path) and not any(d is not None and d.height for d in detail):
        return files[0]

    def lazy(sources):
        return [
            pl.scan_parquet(s) if isinstance(s, Path) else s.lazy()
            for s in sources
            if s is not None and (isinstance(s, Path) or s.height)
        ]

    main_l, detail_l = lazy(main), lazy(detail)
    if not main_l and not detail_l:
        return None
    parts = []
    if main_l:
        m = pl.concat(main_l, how="diagonal_relaxed")
        if detail_l:
            ids = pl.concat(detail_l, how="diagonal_relaxed").select("combo_id").unique().collect()["combo_id"]
            m = m.filter(~pl.col("combo_id").is_in(ids.to_list()))
        parts.append(m)
    return pl.concat(parts + detail_l, how="diagonal_relaxed")


def sink_lazy(frame: pl.LazyFrame, path: Path) -> None:
    """Stream a LazyFrame into ``path`` atomically (temp file, fsync, rename)."""
    with atomic_path(path) as tmp:
        frame.sink_parquet(tmp, compression=PARQUET_COMPRESSION)
