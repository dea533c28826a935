"""What a user waits for: `sweep run` end to end against the hand-written ceiling, in the same run.

    python benchmarks/bench_wall.py [--quick]

For each case the complete run (config, data load, features, kernel, luck statistics, top-k
detail, results written to disk) is timed two ways, warm (compiled kernels and the synthetic
data in their disk caches):

- as a process: ``python -m sweep run CONFIG --quiet --force`` (interpreter start and imports included);
- in-process: ``sweep.run(CONFIG)`` in a warm interpreter (the stage breakdown comes from this one).

Beside them, measured in this run: the hand-written fused kernel of ``benchmarks/ceiling.py``
on the same bars and grid (moving averages + one pass per combination, arrays already in
memory), and the engine's kernel alone (``sweep.engine.simulate``; labelled kernel-only, never
the headline).  Ratios are throughputs relative to the ceiling (ceiling seconds / our seconds;
1.0 = as fast as the hand-written kernel).

Cases (issue 12): (a) the 100-combination MA grid on 1,000,000 synthetic bars with
``workflow: optimization``; (b) the same with the default workflow (backtest: every trade of
every combination traced and written); (c) SPY 1-minute bars (about 102,000, from
../shared/data) with the same grid; (d) 10,000 combinations x 1,000,000 bars, optimization.
Also: ``sweep run examples/quickstart.yaml`` as a warm process.  ``--quick`` skips (d).
Writes benchmarks/out/wall.json.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from common import FAST, INITIAL, ROOT, SHARED_DATA, SLOW, machine, run_worker, table, write_json

PORTFOLIO = {"initial_capital": INITIAL, "position_size": 1.0, "allow_short": False, "fractional_shares": True}
GRID = {"fast": FAST.tolist(), "slow": SLOW.tolist()}
BIG = {"fast": list(range(1, 101)), "slow": list(range(101, 201))}


def config(name: str, data: dict, grid: dict, workflow: str | None) -> dict:
    """The benchmark's sweep: what the ceiling computes (long-only, all-in, next-open fills, no costs)."""
    cfg = {
        "name": name,
        "data": data,
        "strategies": [{"type": "ma_crossover", "parameters": grid}],
        "portfolio": PORTFOLIO,
        "execution": {"commission": {"rate": 0.0}},
    }
    if workflow:
        cfg["workflow"] = workflow
    return cfg


def process_times(cfg_path: Path, results: Path, reps: int) -> list[float]:
    """Wall seconds of ``sweep run`` as a process, after one warm-up run."""
    args = [sys.executable, "-m", "sweep", "run", str(cfg_path), "--results-dir", str(results), "--quiet", "--force"]
    times = []
    for k in range(reps + 1):
        t = time.perf_counter()
        subprocess.run(args, cwd=ROOT, check=True, capture_output=True)
        if k:
            times.append(time.perf_counter() - t)
    return times


def agreement(run: dict, ceil: dict, grid: dict) -> float | None:
    """Largest relative difference of final equity between the run and the ceiling, matched by (fast, slow)."""
    if not run.get("keys") or not ceil.get("final_equity"):
        return None
    pos = {
        (int(f), int(s)): i * len(grid["slow"]) + j
        for i, f in enumerate(grid["fast"])
        for j, s in enumerate(grid["slow"])
    }
    worst = 0.0
    for (f, s), eq in zip(run["keys"], run["final_equity"]):
        ref = ceil["final_equity"][pos[(f, s)]]
        worst = max(worst, abs(eq - ref) / abs(ref))
    return worst


def case(label: str, cfg: dict, grid: dict, source: str, bars: int, reps: int, tmp: Path) -> dict:
    cfg_path = tmp / f"{cfg['name']}.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    ceil = run_worker({"kind": "ceiling", "source": source, "bars": bars, "reps": max(3, reps), **grid})
    if "error" in ceil:
        return {"case": label, "error": ceil["error"]}
    inproc = run_worker({"kind": "engine_run", "config": cfg, "reps": reps, "warm": "full"})
    if "error" in inproc:
        return {"case": label, "error": inproc["error"]}
    proc = process_times(cfg_path, tmp / "res", reps)
    kernel = None
    if grid is GRID:  # the engine's kernel alone on the same bars (simulate; no data load, no files)
        kernel = run_worker({"kind": "engine", "source": source, "bars": bars, "reps": max(3, reps)})
    c = ceil["seconds"]
    p = statistics.median(proc)
    out = {
        "case": label,
        "bars": ceil["bars"],
        "combinations": ceil["combos"],
        "ceiling_s": c,
        "process_s": p,
        "process_times": proc,
        "in_process_s": inproc["seconds"],
        "in_process_times": inproc["times"],
        "ratio_process": c / p,
        "ratio_in_process": c / inproc["seconds"],
        "kernel_only_s": kernel["seconds"] if kernel else None,
        "ratio_kernel_only": c / kernel["seconds"] if kernel else None,
        "stages": inproc["stages"],
        "peak_mb": inproc["peak_mb"],
        "final_equity_agree_rel": agreement(inproc, ceil, grid),
    }
    return out


def main() -> int:
    quick = "--quick" in sys.argv
    out: dict = {"machine": machine(), "cases": []}
    spy = SHARED_DATA / "SPY_1m.parquet"
    cases = [
        (
            "(a) 100 x 1M, optimization",
            config("wall_a", {"synthetic": {"bars": 1_000_000, "seed": 1}}, GRID, "optimization"),
            GRID,
            "synthetic",
            1_000_000,
            5,
        ),
        (
            "(b) 100 x 1M, backtest (all trades)",
            config("wall_b", {"synthetic": {"bars": 1_000_000, "seed": 1}}, GRID, None),
            GRID,
            "synthetic",
            1_000_000,
            3,
        ),
    ]
    if spy.exists():
        cases.append(
            (
                "(c) 100 x SPY 1m, optimization",
                config("wall_c", {"path": str(spy)}, GRID, "optimization"),
                GRID,
                "spy1m",
                0,
                5,
            )
        )
    else:
        print(f"(c) skipped: {spy} not found (set SWEEP_SHARED_DATA)")
    if not quick:
        cases.append(
            (
                "(d) 10,000 x 1M, optimization",
                config("wall_d", {"synthetic": {"bars": 1_000_000, "seed": 1}}, BIG, "optimization"),
                BIG,
                "synthetic",
                1_000_000,
                1,
            )
        )
    with tempfile.TemporaryDirectory() as tmp:
        for label, cfg, grid, source, bars, reps in cases:
            print(f"measuring {label} ...", flush=True)
            out["cases"].append(case(label, cfg, grid, source, bars, reps, Path(tmp)))
        qs = process_times(ROOT / "examples" / "quickstart.yaml", Path(tmp) / "res", 3)
    out["quickstart_process_s"] = statistics.median(qs)
    out["quickstart_process_times"] = qs
    rows = [r for r in out["cases"] if "error" not in r]
    for r in out["cases"]:
        if "error" in r:
            print(f"{r['case']}: failed: {r['error']}")
    print(
        table(
            rows,
            [
                "case",
                "ceiling_s",
                "process_s",
                "ratio_process",
                "in_process_s",
                "ratio_in_process",
                "kernel_only_s",
                "ratio_kernel_only",
                "peak_mb",
                "final_equity_agree_rel",
            ],
            title="sweep run end to end vs the hand-written ceiling (ratio = ceiling time / ours; 1 = as fast)",
        )
    )
    for r in rows:
        total = r["in_process_s"]
        print(f"\n{r['case']}: where the in-process time went")
        for k, v in r["stages"].items():
            print(f"  {k:<34} {v:7.3f}  {v / total:5.0%}")
    runs = ", ".join(f"{t:.2f}" for t in qs)
    print(f"\nquickstart as a warm process: {out['quickstart_process_s']:.2f} s (runs {runs})")
    print(f"\nwrote {write_json('wall', out)}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main())
