"""Budgets and limits of a run, in one place: memory per part, work per shard, sizes refused.

Environment variables override the shard sizing (tests and tuning):
``SWEEP_SHARD_WORK`` (bar-combinations per shard) and ``SWEEP_MIN_SHARD``.
"""

from __future__ import annotations

import math
import os

EVENT_BUDGET_BYTES = 64 * 2**20  # kernel event buffers, all combinations of a shard together
HUB_BUDGET_BYTES = 128 * 2**20  # one chunk of the feature hub's block
FEATURE_CACHE_BYTES = 256 * 2**20  # a universe's whole feature block is kept when it fits this
MATERIALISE_LIMIT = 50_000_000  # an entry is enumerated (then pruned by its constraints) only below this size

# bar-combinations per shard (about 10 s at full speed)
SHARD_WORK = int(os.environ.get("SWEEP_SHARD_WORK", 2_000_000_000))
MIN_SHARD = int(os.environ.get("SWEEP_MIN_SHARD", 256))
BLOCK_BUDGET_BYTES = 256 * 2**20  # one shard's (combinations x blocks) matrix of block returns


def shard_size(n_scored_bars: int, n_blocks: int = 0) -> int:
    """Combinations per shard for a window of this many scored bars (and blocks of returns, if kept)."""
    size = math.ceil(SHARD_WORK / max(1, n_scored_bars))
    if n_blocks:
        size = min(size, BLOCK_BUDGET_BYTES // (8 * n_blocks))
    return max(MIN_SHARD, size)
