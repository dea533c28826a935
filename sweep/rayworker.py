"""The worker side of the Ray backend: what runs inside a Ray worker process.

Nothing here imports Ray: these are plain functions the driver (``sweep.raybackend``) wraps with
``ray.remote``.  A worker rebuilds the plan once per job from the run's config (its plugins must be
importable there: same paths, or installed), checks it is the driver's plan, and keeps it with its
service tables and compiled kernel for every later shard.  The bars and the feature block arrive from
the object store read-only and zero-copy; the kernel reads them as they are.

``setup_process`` runs first in every worker process (Ray's ``worker_process_setup_hook``): it points
numba's cache at a node-local folder per user, before numba is imported, so a node compiles a kernel
once and every other worker process there loads it.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path

import attrs
import numpy as np

CACHE_ENV = "SWEEP_NUMBA_CACHE"  # on | off | a folder: set by the driver in the job's runtime_env


def numba_cache_folder(mode: str) -> Path:
    """The folder numba caches compiled kernels in on this node (``mode``: on, off or a folder)."""
    if mode == "off":  # a private folder per process: nothing shared, nothing raced
        _remove_dead_private_folders()
        path = Path(tempfile.mkdtemp(prefix=f"sweep-numba-{os.getpid()}-"))
        atexit.register(shutil.rmtree, path, True)  # Ray usually kills its workers: the next start removes it
        return path
    if mode == "on":
        path = Path(tempfile.gettempdir()) / f"sweep-engine-{os.getuid()}" / "numba"
    else:
        path = Path(mode)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def _remove_dead_private_folders() -> None:
    """Private cache folders (numba_cache: off) of worker processes that no longer exist."""
    for folder in Path(tempfile.gettempdir()).glob("sweep-numba-*-*"):
        try:
            pid = int(folder.name.split("-")[2])
            if folder.stat().st_uid != os.getuid():
                continue
            os.kill(pid, 0)  # raises when the process is gone
        except (ValueError, IndexError, OSError) as exc:
            if isinstance(exc, ProcessLookupError):
                shutil.rmtree(folder, ignore_errors=True)


def setup_process() -> None:
    """Ray's worker_process_setup_hook: numba's cache folder for this process (numba reads it on import)."""
    os.environ["NUMBA_CACHE_DIR"] = str(numba_cache_folder(os.environ.get(CACHE_ENV, "on")))


def plan_key(plan) -> str:
    """What must be equal on the driver and a worker for a shard to mean the same thing: every
    combination's content hash, the features and the services' code."""
    from . import __version__
    from .manifest import plan_code

    h = hashlib.blake2b(digest_size=10)
    h.update(f"{plan.combinations}|{__version__}|{','.join(plan.features)}".encode())
    h.update(np.ascontiguousarray(plan.hash_values(np.arange(plan.combinations, dtype=np.int64))).tobytes())
    h.update(plan_code(plan).encode())
    return h.hexdigest()


@attrs.frozen
class Job:
    """One window's shard settings, the same for every shard of it (the ids travel apart)."""

    key: str  # plan_key of the driver's plan
    config: dict  # the run's config (sweep.manifest.raw_config): absolute paths
    start: int
    stop: int
    bars_per_day: float
    bars_per_year: float
    record_events: bool
    blocks: object  # a BlockSpec, or None
    threads: int


class _State:
    """A worker's plan, tables and timings for one job (kept for every later shard)."""

    def __init__(self, job: Job):
        from services.errors import BackendError

        from .config import load_config
        from .expander import expand

        tick = time.perf_counter()
        cfg = load_config(job.config)
        self.plan = expand(cfg, count_data=False)
        self.tables: dict = {}
        if plan_key(self.plan) != job.key:
            raise BackendError(
                f"Ray worker on {os.uname().nodename}",
                "the plan built from the run's config differs from the driver's (another sweep-engine version, "
                "or other plugin code at the same path)",
                fix="install the same sweep-engine and plugins on every node (`pip install -e .` at the same path)",
            )
        self.setup_s = time.perf_counter() - tick
        self.first_s: float | None = None  # the first shard's seconds (it compiles or loads the kernel)

    def tables_for(self, universe):
        from containers.feature_hub import FeatureHub

        from .engine import build_tables

        if universe.bars_per_day not in self.tables:
            self.tables[universe.bars_per_day] = build_tables(
                self.plan, FeatureHub(self.plan.features, universe.bars_per_day)
            )
        return self.tables[universe.bars_per_day]


_STATES: dict[str, _State] = {}


def _state(job: Job) -> tuple[_State, bool]:
    fresh = job.key not in _STATES
    if fresh:
        _STATES.clear()  # one job's plan at a time: a worker process serves one run
        _STATES[job.key] = _State(job)
    return _STATES[job.key], fresh


def preload() -> int:
    """Import the engine (numba, polars, the kernels' modules) while the driver loads data: the first shard
    then starts at once."""
    from . import engine  # noqa: F401

    return os.getpid()


def _where() -> dict:
    return {"pid": os.getpid(), "host": os.uname().nodename, "numba_cache": os.environ.get("NUMBA_CACHE_DIR")}


def _simulate(state: _State, job: Job, u, features, ids: np.ndarray, stop: int):
    from .engine import simulate

    return simulate(
        state.plan,
        u,
        ids,
        state.tables_for(u),
        start=job.start,
        stop=stop,
        record_events=job.record_events,
        threads=job.threads,
        features=features,
        blocks=job.blocks,
    )


def run_shard(job: Job, universe, features, ids: np.ndarray):
    """Backtest combinations ``ids`` of the job's window: (``SimResult`` with events collected, timings)."""
    state, fresh = _state(job)
    tick = time.perf_counter()
    res = _simulate(state, job, universe.with_frequency(job.bars_per_day, job.bars_per_year), features, ids, job.stop)
    seconds = time.perf_counter() - tick
    first = state.first_s is None
    if first:
        state.first_s = seconds
    info = {**_where(), "seconds": seconds, "setup_s": state.setup_s if fresh else 0.0, "first_shard": first}
    return res, info


def warm_node(job: Job, universe, features) -> dict:
    """Compile (or load) the kernel once on this node before the shards fan out: its cache is then warm."""
    from containers.feature_hub import FeatureHub

    state, fresh = _state(job)
    u = universe.with_frequency(job.bars_per_day, job.bars_per_year)
    warm = FeatureHub(state.plan.features, u.bars_per_day).warmup
    stop = min(job.stop, max(warm, job.start) + 64)  # a few scored bars: enough to compile every branch's types
    ids = np.arange(min(2, state.plan.combinations), dtype=np.int64)  # 2: the portfolio bank's layout of any n > 1
    tick = time.perf_counter()
    _simulate(state, job, u, features, ids, stop)
    return {**_where(), "setup_s": state.setup_s if fresh else 0.0, "compile_s": time.perf_counter() - tick}
