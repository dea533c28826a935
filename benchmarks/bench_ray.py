"""Local threads vs local Ray on the same grid: what the Ray backend costs and what it gives.

    python benchmarks/bench_ray.py [--quick]

Every case is ``sweep run CONFIG --quiet --force`` as a process (what a user waits for: start,
data, features, kernel, luck statistics, results written), warm (kernels in numba's caches),
median of ``reps`` runs, all in this run:

- threads: the default backend, numba threads in one process (2 threads);
- ray, 2 workers: a local Ray instance with 2 CPUs, one CPU (and one numba thread) per task;
- ray, 1 worker: the same with 1 CPU (how one worker's throughput compares with one thread's).

From the Ray runs' ``backend.json`` and ``--profile``: Ray's start-up, the object-store bytes
broadcast once, per-shard task seconds, the driver's time per shard (receiving, writing), and
the compile cost of a worker: cold (an empty numba cache: the node's warm-up task compiles) and
warm (the cache is there: it loads).  Ratios are ``threads seconds / ray seconds`` (1.0 = as fast
as threads).  Writes benchmarks/out/ray.json.  Needs the ray extra (``pip install -e '.[ray]'``).
"""

from __future__ import annotations

import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from common import INITIAL, ROOT, machine, table, write_json

GRID = {"fast": list(range(2, 42)), "slow": list(range(45, 70))}  # 1,000 combinations
LARGE = {"fast": list(range(2, 82)), "slow": list(range(85, 135))}  # 4,000


def config(bars: int, backend: dict | None, grid: dict = GRID) -> dict:
    cfg = {
        "name": "bench_ray",
        "data": {"synthetic": {"bars": bars, "timeframe": "1m", "seed": 7}},
        "strategies": [{"type": "ma_crossover", "parameters": grid}],
        "portfolio": {"initial_capital": INITIAL, "position_size": 1.0, "fractional_shares": True},
        "workflow": {"type": "optimization", "base_pattern": "full_backtest"},
        "top_k": 5,
    }
    if backend:
        cfg["backend"] = backend
    return cfg


def run_once(cfg_path: Path, results: Path, *extra) -> tuple[float, str]:
    args = [sys.executable, "-m", "sweep", "run", str(cfg_path), "--results-dir", str(results), "--quiet", "--force"]
    t = time.perf_counter()
    done = subprocess.run([*args, *extra], cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - t
    if done.returncode:
        raise SystemExit(f"{cfg_path.name}: {done.stderr}")
    return seconds, done.stderr


def newest(results: Path) -> Path:
    return max((results / "bench_ray").iterdir(), key=lambda p: p.stat().st_mtime)


def stage(profile: str, name: str) -> float:
    m = re.search(rf"^\s*{re.escape(name)}\s+([0-9.]+)", profile, re.M)
    return float(m.group(1)) if m else 0.0


def case(label: str, cfg: dict, tmp: Path, reps: int, *extra) -> dict:
    path = tmp / f"{label.replace(' ', '_').replace(',', '')}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    results = tmp / "res"
    run_once(path, results, *extra)  # warm-up: compiled kernels and the synthetic data cached
    times, profile = [], ""
    for _ in range(reps):
        s, err = run_once(path, results, "--profile", *extra)
        times.append(s)
        profile = err
    out = {"case": label, "seconds": statistics.median(times), "times": times}
    backend = newest(results) / "backend.json"
    if backend.exists():
        info = json.loads(backend.read_text())
        start = re.search(r"\(([0-9.]+)s to start\)", profile)
        shards = info["shards_run"]
        waiting = stage(profile, "shards on ray (waiting)")
        out.update(
            {
                "ray_start_s": float(start.group(1)) if start else None,
                "shards": shards,
                "object_store_mb": info["object_store_bytes"] / 2**20,
                "task_s_mean": statistics.mean(w["seconds"] for w in info["workers"]) if info["workers"] else None,
                "waiting_s": waiting,
                "driver_per_shard_ms": 1000 * info["driver_seconds"] / max(1, shards),
                "task_s_total": info["task_seconds"],
                "warm_compile_s": max(w["compile_s"] for w in info["warm_up"]),
                "worker_setup_s": max(w["setup_s"] for w in info["workers"]) if info["workers"] else None,
            }
        )
    return out


def cold_compile(cfg: dict, tmp: Path) -> float:
    """A worker's compile cost with an empty numba cache (the node's warm-up task compiles the kernel)."""
    folder = Path(tempfile.mkdtemp(prefix="bench-numba-"))
    cold = {**cfg, "backend": {**cfg["backend"], "numba_cache": str(folder)}}
    path = tmp / "cold.yaml"
    path.write_text(yaml.safe_dump(cold, sort_keys=False))
    run_once(path, tmp / "cold")
    info = json.loads((newest(tmp / "cold") / "backend.json").read_text())
    shutil.rmtree(folder, ignore_errors=True)
    return max(w["compile_s"] for w in info["warm_up"])


def main() -> int:
    try:
        import ray  # noqa: F401
    except ImportError:
        print("bench_ray: skipped - Ray is not installed (pip install -e '.[ray]')")
        return 0
    quick = "--quick" in sys.argv
    bars, reps = (200_000, 1) if quick else (400_000, 2)
    tmp = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    ray2 = {"type": "ray", "cpus_per_task": 1}
    rows = [
        case("threads (2 threads)", config(bars, None), tmp, reps, "--threads", "2"),
        case("ray, 2 workers", config(bars, ray2), tmp, reps, "--threads", "2"),
        case("ray, 1 worker", config(bars, ray2), tmp, reps, "--threads", "1"),
    ]
    for r in rows:
        r["combinations"] = 1000
    if not quick:  # where the fixed costs stop mattering
        large = [
            case("threads (2 threads), 4,000", config(bars, None, LARGE), tmp, 1, "--threads", "2"),
            case("ray, 2 workers, 4,000", config(bars, ray2, LARGE), tmp, 1, "--threads", "2"),
            case(
                "ray, 2 workers, 4,000, shards of 1,000",
                config(bars, {**ray2, "shard_combinations": 1000}, LARGE),
                tmp,
                1,
                "--threads",
                "2",
            ),
        ]
        for r in large:
            r["combinations"] = 4000
        rows += large
    for r in rows:
        base = next(x["seconds"] for x in rows if x["combinations"] == r["combinations"])
        r["ratio_vs_threads"] = base / r["seconds"]
        r["bar_combos_per_s_M"] = r["combinations"] * bars / r["seconds"] / 1e6
    cold = cold_compile(config(bars, ray2), tmp)
    print(machine()["cpu"])
    print(
        table(
            rows,
            ["case", "seconds", "ratio_vs_threads", "bar_combos_per_s_M", "ray_start_s", "shards", "task_s_total"],
            f"MA combinations (1,000; 4,000) x {bars:,} bars, optimization, `sweep run` as a process (warm)",
        )
    )
    r2 = rows[1]
    print(
        f"ray, 2 workers: start {r2['ray_start_s']}s, object store {r2['object_store_mb']:.1f} MiB broadcast once, "
        f"{r2['shards']} shards of {1000 // max(1, r2['shards'])}+ combinations, "
        f"driver {r2['driver_per_shard_ms']:.0f} ms per shard; a worker's compile: cold {cold:.1f}s (empty cache), "
        f"warm {r2['warm_compile_s']:.2f}s (loads the node's cache), setup (config + plan) {r2['worker_setup_s']:.2f}s"
    )
    write_json("ray", {"machine": machine(), "bars": bars, "rows": rows, "cold_compile_s": cold})
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
