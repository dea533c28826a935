"""The life of a results folder: find or create it, lock it, resume it, finish it, report on it.

- A finished run (same config, data and code) is returned unless ``force``.
- ``resume`` continues the newest unfinished run of this config; its shard
  layout settings must be those it started with (else it is refused).
- One writer per folder: ``RunStore.lock`` (released by the OS when the
  process ends); a second writer exits 2 saying who holds it.
- Temporary files of interrupted writes are removed on resume and on finish.
"""

from __future__ import annotations

from pathlib import Path

import numba

from services import limits
from services.errors import ConfigError

from .interrupts import Terminated
from .manifest import raw_config, versions
from .results import RunStore, write_json


def layout_settings() -> dict:
    """Settings that decide which combinations land in which shard (a resume must use the same)."""
    return {
        "shard_work": limits.SHARD_WORK,
        "min_shard": limits.MIN_SHARD,
        "block_budget_bytes": limits.BLOCK_BUDGET_BYTES,
    }


def status_text(store: RunStore) -> str:
    m = store.manifest
    status = m.get("status", "unknown")
    holder = store.holder()
    if status == "running" and holder:
        return f"running now: {holder}"
    if status == "running":
        return "status running, but no process holds it: it was killed"
    return f"status {status}: {m['error']}" if m.get("error") else f"status {status}"


def results_root(cfg, results_dir) -> Path:
    """The results folder from --results-dir or the config; refused when no folder can have that name."""
    raw = str(results_dir or cfg.results_dir)
    where = ("--results-dir",) if results_dir else ("results_dir",)
    if any(ord(ch) < 32 for ch in raw):
        raise ConfigError(
            where,
            "a folder name cannot hold a NUL or other control character",
            value=raw,
            fix="give a plain path, e.g. results",
        )
    return Path(raw)


def open_store(cfg, plan, universes, key: str, *, engine, threads, phase_list, results_dir, resume, force, log, extra):
    """(store, None) to run into, or (None, its folder) when this exact run is already complete."""
    root = results_root(cfg, results_dir)
    found = RunStore.find(root, cfg.name, key)
    done = [s for s in found if s.complete]
    if done and not force:
        log.note(f"already computed (same config, data and code): {done[0].path}  (use --force to recompute)")
        return None, done[0].path
    unfinished = [s for s in found if not s.complete]
    store = None
    if resume:
        store = unfinished[0] if unfinished else None
        if store is not None:
            log.note(f"resuming {store.path} ({status_text(store)}): completed phases and shards are kept")
            store.lock()
            started = store.manifest.get("layout")
            if started is not None and started != layout_settings():
                store.unlock()
                raise ConfigError(
                    ("--resume",),
                    f"{store.path} was started with shard settings {started}, this process has {layout_settings()}",
                    fix="resume with the environment it was started with (SWEEP_SHARD_WORK, SWEEP_MIN_SHARD), "
                    "or start again with --force",
                )
            removed = store.remove_temporaries()
            if removed:
                log.note(f"removed {removed} temporary file(s) of interrupted writes")
            m = store.manifest
            store.update_manifest(status="running", error=None, resumes=int(m.get("resumes", 0)) + 1)
            return store, None
        log.note("nothing to resume for this config, data and code: starting a new run")
    elif unfinished:
        older = unfinished[0]
        what = "--force: recomputing in a new folder" if force else "starting a new run"
        log.note(f"{what}; the unfinished run {older.path} ({status_text(older)}) is left as it is")
        log.note("  (`sweep run ... --resume` continues it instead)")
    elif force and done:
        log.note(f"--force: recomputing in a new folder; {done[0].path} is left as it is")
    store = RunStore.create(root, cfg.name, cfg.config_hash)
    store.lock()
    write_json(
        store.path / "plan.json",
        {
            **plan.to_json(),
            "features": list(plan.features),
            "outer": plan.outer,
            "sizes": list(plan.sizes),
            "memory_estimate": plan.memory_estimate(),
        },
    )
    store.update_manifest(
        run_id=store.path.name,
        name=cfg.name,
        status="running",
        run_key=key,
        config=cfg.normalized,
        config_hash=cfg.config_hash,
        raw_config=raw_config(cfg),
        engine=engine,
        source=cfg.source,
        data=[u.describe() for u in universes],
        seed=cfg.seed,
        versions=versions(),
        phase_order=[p.name for p in phase_list],
        main_phase=phase_list[0].name,
        phases={},
        threads=threads or numba.get_num_threads(),
        layout=layout_settings(),
        **extra,
    )
    return store, None


def finish(store: RunStore, seconds: float, bar_combinations: int) -> None:
    """Mark a run complete, drop what interrupted writes left, release the folder."""
    store.update_manifest(status="complete", seconds=round(seconds, 3), bar_combinations=bar_combinations)
    store.remove_temporaries()
    store.unlock()


def fail(store: RunStore, exc: BaseException) -> None:
    """Record why a run stopped (interrupted or failed); never raise while doing so (the disk may be full)."""
    status = "interrupted" if isinstance(exc, (KeyboardInterrupt, SystemExit, Terminated)) else "failed"
    try:
        store.update_manifest(status=status, error=f"{type(exc).__name__}: {exc}"[:2000])
    except OSError:
        pass
    store.unlock()
