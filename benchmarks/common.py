"""Shared helpers for the benchmarks: machine label, timing, isolated workers, tables, JSON."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
SHARED_DATA = Path(os.environ.get("SWEEP_SHARED_DATA", ROOT.parent / "shared" / "data"))
FAST = np.arange(5, 55, 5)
SLOW = np.arange(20, 220, 20)
INITIAL = 100_000.0

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def machine() -> dict:
    """What the absolute figures were measured on."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    import numba

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": mem,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "os": platform.platform(),
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def timed(fn, reps: int = 3, warmup: int = 1):
    """Median wall time of ``fn()`` over ``reps`` runs after ``warmup`` runs; returns (median, times, last result)."""
    out = None
    for _ in range(warmup):
        out = fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times, out


def rss_mb() -> float:
    """Current resident memory of this process, MiB."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return float("nan")


def peak_mb() -> float:
    """Peak resident memory of this process and its finished children, MiB (Linux: ru_maxrss in KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024


def run_worker(task: dict, timeout: float = 7200) -> dict:
    """Run one measurement in a fresh Python process (clean peak memory); returns its JSON result."""
    cmd = [sys.executable, str(HERE / "worker.py"), json.dumps(task)]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=str(ROOT))
    if proc.returncode != 0:
        return {
            "task": task,
            "error": (proc.stderr or proc.stdout).strip().splitlines()[-12:],
            "seconds_total": time.perf_counter() - t,
        }
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")][-1]
    return json.loads(line)


def write_json(name: str, obj) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=_default) + "\n")
    os.replace(tmp, path)
    return path


def _default(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def table(rows: list[dict], cols: list[str], title: str = "") -> str:
    def cell(v):
        if v is None:
            return "-"
        if isinstance(v, float):
            if v != v:
                return "nan"
            return f"{v:,.3g}" if abs(v) < 1000 else f"{v:,.0f}"
        return str(v)

    body = [[cell(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(c), *(len(b[i]) for b in body)) if body else len(c) for i, c in enumerate(cols)]
    lines = ([title] if title else []) + [
        "  ".join(c.rjust(w) for c, w in zip(cols, widths)),
        "  ".join("-" * w for w in widths),
    ]
    lines += ["  ".join(v.rjust(w) for v, w in zip(b, widths)) for b in body]
    return "\n".join(lines)


def synthetic_bars(n: int, seed: int = 1) -> dict:
    from containers.synthetic import generate

    return generate(n, seed=seed, timeframe="1m")


def spy_bars(which: str = "1m") -> dict | None:
    """SPY bars from ../shared/data (None when absent)."""
    from containers.data import load_universes
    from sweep.config_data import parse_data

    name = "SPY_1m.parquet" if which == "1m" else "SPY_5m.csv"
    path = SHARED_DATA / name
    if not path.exists():
        return None
    u = load_universes(parse_data({"path": str(path)}, ROOT))[0]
    return {
        "timestamp": u.timestamps,
        "open": u.open,
        "high": u.high,
        "low": u.low,
        "close": u.close,
        "volume": u.volume,
    }
