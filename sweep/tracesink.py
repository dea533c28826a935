"""Where traced events (and the trades they close) go while a phase runs.

With results on disk, the tracer's kept events are written to Parquet part
files whenever a million have accumulated, together with the trades their
POSITION_CLOSE events describe; a finished shard's parts are then combined
into one file per shard, and a finished phase's shard files into
events.parquet / trades.parquet by streaming (polars ``sink_parquet``), so
memory stays flat however many events a sweep traces.  With
``results_storage: memory`` everything stays in DataFrames.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from containers.data import Universe
from containers.events import Tracer
from services import limits

from .frames import trades_frame
from .results import atomic_path

FLUSH_ROWS = limits.FLUSH_ROWS  # tests lower it


def _atomic_sink(frames: list, path: Path) -> None:
    """Write the concatenation of ``frames`` (paths or DataFrames) to ``path`` atomically."""
    lazy = [pl.scan_parquet(f) if isinstance(f, Path) else f.lazy() for f in frames]
    sink_lazy(pl.concat(lazy, how="diagonal_relaxed"), path)


class TraceSink:
    """Collects one shard's kept events and trades, in memory or as Parquet parts under ``folder``."""

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

    def flush(self, force: bool = False, final: bool = False) -> None:
        """Move the tracer's kept events out (to a part file when on disk) once enough have accumulated."""
        if not force and self.tracer.kept_rows < self.flush_rows:
            return
        frames = self.tracer.take_kept(final)
        if not frames:
            return
        ev = pl.concat(frames, how="diagonal_relaxed")
        self.kept += ev.height
        tr = trades_frame(ev, self.universe) if "POSITION_CLOSE" in self.tracer.types else pl.DataFrame()
        if self.folder is None:
            self.events.append(ev)
            if tr.height:
                self.trades.append(tr)
            return
        k = len(self.events)
        for kind, frame, bucket in (("events", ev, self.events), ("trades", tr, self.trades)):
            if frame.height:
                path = self.folder / f"{kind}_part_{k:05d}.parquet"
                _atomic_sink([frame], path)
                bucket.append(path)

    def finish(self, events_path: Path | None, trades_path: Path | None) -> tuple:
        """Settle the tracer and return this shard's (events, trades): one file each on disk, else DataFrames."""
        self.tracer.settle()
        self.tracer.drop_pending()
        self.flush(force=True, final=True)
        if self.folder is None:
            ev = pl.concat(self.events, how="diagonal_relaxed") if self.events else None
            tr = pl.concat(self.trades, how="diagonal_relaxed") if self.trades else None
            return ev, tr
        out = []
        for parts, path in ((self.events, events_path), (self.trades, trades_path)):
            if parts:
                _atomic_sink(parts, path)
                for p in parts:
                    p.unlink()
                out.append(path)
            else:
                out.append(None)
        if self.folder.is_dir() and not any(self.folder.iterdir()):
            self.folder.rmdir()
        return tuple(out)


def combined(main: list, detail: list) -> pl.LazyFrame | None:
    """Event/trade sources (Paths or DataFrames) as one LazyFrame; ``detail`` replaces ``main`` for its combinations."""

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
        frame.sink_parquet(tmp)
