"""Budgets and limits, in one place: memory per part of a run, work per shard and per call, sizes refused.

Every layer reads them from here (this module imports nothing of the
project).  Environment variables override the shard sizing (tests and
tuning): ``SWEEP_SHARD_WORK`` (bar-combinations per shard) and
``SWEEP_MIN_SHARD``.
"""

from __future__ import annotations

import math
import os

EVENT_BUDGET_BYTES = 64 * 2**20  # kernel event buffers, all combinations of a shard together
HUB_BUDGET_BYTES = 128 * 2**20  # one chunk of the feature hub's block
FEATURE_CACHE_BYTES = 256 * 2**20  # a universe's whole feature block is always kept when it fits this
FEATURE_CACHE_MAX_BYTES = 4 * 2**30  # ... and up to this much when a quarter of the available memory allows
MATERIALISE_LIMIT = 50_000_000  # an entry is enumerated (then pruned by its constraints) only below this size

# bar-combinations per shard (about 10 s at full speed)
SHARD_WORK = int(os.environ.get("SWEEP_SHARD_WORK", 2_000_000_000))
MIN_SHARD = int(os.environ.get("SWEEP_MIN_SHARD", 256))
BLOCK_BUDGET_BYTES = 256 * 2**20  # one shard's (combinations x blocks) matrix of block returns
STATE_BUDGET_BYTES = 1 * 2**30  # streaming state of all indicator computations together
FLUSH_ROWS = 4_000_000  # traced events held (about 0.4 GB) before they are written to a part file
EVENTS_PER_COMBO_MAX = 65_536  # the kernel's event buffer per combination (within EVENT_BUDGET_BYTES)
PART_ROWS = 2_000_000  # block-return rows per part file (40 MB of columns at most)
MC_BATCH_CELLS = 4_000_000  # Monte Carlo draws held at once (32 MB of float64)
CSCV_MAX_WORK = 2_000_000_000  # splits x (S/2) x combinations above which CSCV uses a seeded subset of splits
LUCK_CHUNK_BYTES = 32 * 2**20  # block returns per chunk of the streamed luck statistics

# inputs refused (a few bytes of YAML must not exhaust the machine)
MAX_YAML_NODES = 200_000  # values in a config once aliases are expanded
MAX_YAML_DEPTH = 64  # levels of nesting
MAX_YAML_BYTES = 2 * 2**20  # size of a config file
MAX_CONSTRAINT_CHARS = 500
MAX_NAME_CHARS = 100  # a run name is a folder name
DEFAULT_MAX_COMBINATIONS = 5_000_000
MIN_LUCK_BLOCKS = 10  # a block of returns may be at most a tenth of the data
MIN_REPS, MAX_REPS = 100, 20_000  # bootstrap replicates of the Reality Check / SPA
MAX_PARTITIONS = 32  # CSCV partitions

# look-ahead checks (sweep check and the run-time guard of plugins)
ONE_BAR_BARS = 4_000_000  # longer series are fed one bar at a time in windows (the end among them), not whole
ONE_BAR_COMPILED = 100_000  # from this many bars on, a compiled loop feeds them (it costs a compilation per kernel)
ONE_BAR_WINDOWS = 8  # ... that many windows of ONE_BAR_BARS / ONE_BAR_WINDOWS bars
HISTORY_BARS = 65_536  # sweep check also runs each series after this much other history (bar counts past 2**16)
GUARD_SERVICE_BARS = 20_000  # plugin strategies/classifiers are called at every bar of the first and last this many
GUARD_SERVICE_SAMPLES = 8  # parameter sets per plugin strategy/classifier entry

# the plausibility alarm: a best combination beyond these has most likely seen the future
PLAUSIBLE_SHARPE = 10.0  # annualised Sharpe ratio
PLAUSIBLE_HIT_RATE = 0.75  # share of its exposed bars that gained
PLAUSIBLE_MIN_BARS = 100  # exposed bars needed before the hit rate says anything


def available_memory() -> int | None:
    """Bytes of memory available now (MemAvailable of /proc/meminfo), or None where it cannot be read."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def feature_cache_bytes() -> int:
    """Bytes a universe's whole feature block may take to be computed once and kept for the run.

    At least FEATURE_CACHE_BYTES; up to a quarter of the memory available now, at most
    FEATURE_CACHE_MAX_BYTES (the hand-written ceiling keeps all its moving averages too).  A block
    that does not fit is streamed chunk by chunk in every shard.  ``SWEEP_FEATURE_CACHE_BYTES``
    overrides it (tests and tuning).

    >>> feature_cache_bytes() >= FEATURE_CACHE_BYTES
    True
    """
    if os.environ.get("SWEEP_FEATURE_CACHE_BYTES"):
        return int(os.environ["SWEEP_FEATURE_CACHE_BYTES"])
    avail = available_memory()
    return max(FEATURE_CACHE_BYTES, min(FEATURE_CACHE_MAX_BYTES, (avail or 0) // 4))


def shard_size(n_scored_bars: int, n_blocks: int = 0) -> int:
    """Combinations per shard for a window of this many scored bars (and blocks of returns, if kept)."""
    size = math.ceil(SHARD_WORK / max(1, n_scored_bars))
    if n_blocks:
        size = min(size, BLOCK_BUDGET_BYTES // (8 * n_blocks))
    return max(MIN_SHARD, size)
