"""Per-block returns of a shard of combinations: kept compact, read in chunks, published as one tidy table.

A shard's (combinations x blocks) matrix is written as Parquet parts of at
most ``PART_ROWS`` rows (combo_id, block, return) - or kept as the array when
results stay in memory.  The phase's ``block_returns.parquet`` is the
concatenation of every shard with the symbol, window and each block's start
time added lazily, so it streams to disk without a copy of the whole table:

    combo_id, symbol, window, block, block_start, return   (ordered by combination, then block)
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl

from services.limits import PART_ROWS

from .results import write_parquet


class BlockShard:
    """The block returns of one shard: an array in memory, or part files on disk."""

    def __init__(self, symbol: str, window: int, starts: np.ndarray, n_blocks: int, ids=None, mat=None, parts=()):
        self.symbol, self.window, self.n_blocks = symbol, int(window), int(n_blocks)
        self.starts = np.asarray(starts, dtype=np.int64)  # block start times, int64 ns UTC
        self.ids, self.mat, self.parts = ids, mat, tuple(parts)

    @classmethod
    def write(cls, folder: Path, symbol, window, starts, ids: np.ndarray, mat: np.ndarray) -> BlockShard:
        """Write ``mat`` (ids x blocks) as part files under ``folder`` (replacing what a killed run left)."""
        if folder.exists():
            shutil.rmtree(folder)
        t = mat.shape[1]
        step = max(1, PART_ROWS // max(1, t))
        parts = []
        for k, a in enumerate(range(0, len(ids), step)):
            sub = mat[a : a + step]
            frame = pl.DataFrame(
                {
                    "combo_id": np.repeat(np.asarray(ids[a : a + step], dtype=np.int64), t),
                    "block": np.tile(np.arange(t, dtype=np.int32), sub.shape[0]),
                    "return": np.ascontiguousarray(sub).ravel(),
                }
            )
            path = folder / f"part_{k:05d}.parquet"
            write_parquet(path, frame)
            parts.append(path)
        return cls(symbol, window, starts, t, parts=parts)

    @classmethod
    def read(cls, folder: Path, symbol, window, starts, n_blocks: int) -> BlockShard | None:
        """The parts a completed shard wrote, or None when there are none."""
        parts = sorted(folder.glob("part_*.parquet")) if folder.is_dir() else []
        return cls(symbol, window, starts, n_blocks, parts=parts) if parts else None

    def chunks(self, rows: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(combo ids, returns (ids x blocks)) in chunks of at most ``rows`` combinations."""
        t = self.n_blocks
        if self.mat is not None:
            sources = [(np.asarray(self.ids), self.mat)]
        else:
            sources = []
            for p in self.parts:
                f = pl.read_parquet(p, columns=["combo_id", "return"])
                sources.append((f["combo_id"].to_numpy()[::t], f["return"].to_numpy().reshape(-1, t)))
        for ids, mat in sources:
            for a in range(0, len(ids), rows):
                yield np.asarray(ids[a : a + rows], dtype=np.int64), np.asarray(mat[a : a + rows], dtype=np.float64)

    def lazy(self) -> pl.LazyFrame:
        """The tidy rows of this shard (see the module docstring)."""
        t = self.n_blocks
        if self.mat is not None:
            n = len(self.ids)
            base = pl.LazyFrame(
                {
                    "combo_id": np.repeat(np.asarray(self.ids, dtype=np.int64), t),
                    "block": np.tile(np.arange(t, dtype=np.int32), n),
                    "return": np.ascontiguousarray(self.mat).ravel(),
                }
            )
        else:
            base = pl.concat([pl.scan_parquet(p) for p in self.parts])
        start = pl.Series(self.starts).cast(pl.Datetime("ns", "UTC"))
        return base.select(
            "combo_id",
            pl.lit(self.symbol).alias("symbol"),
            pl.lit(self.window, dtype=pl.Int32).alias("window"),
            "block",
            pl.lit(start).gather(pl.col("block")).alias("block_start"),  # streams (replace_strict does not)
            "return",
        )


def lazy_table(shards: list[BlockShard]) -> pl.LazyFrame | None:
    """Every shard's rows as one LazyFrame (what block_returns.parquet holds)."""
    frames = [s.lazy() for s in shards if s is not None]
    return pl.concat(frames) if frames else None
