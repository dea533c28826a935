"""The engine's own numbers (issue: engine), each measured in this run against its reference.

    python benchmarks/bench_engine.py

1. MA-crossover grid (100 combinations) on 1,000,000 synthetic bars: bar-combinations per
   second, and the ratio to the hand-written fused kernel (benchmarks/ceiling.py) measured here.
2. 10,000 combinations x 1,000,000 bars as a complete `sweep.run`: wall time and peak memory.
3. Cold start (empty numba and kernel caches, so everything compiles) vs a warm run of the
   quickstart, both as `sweep run` processes.
Writes benchmarks/out/engine.json.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

from common import ROOT, machine, run_worker, table, write_json


def cli_time(args, env) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "sweep", *args], cwd=ROOT, env=env, check=True, capture_output=True)
    return time.perf_counter() - t


def main() -> int:
    out = {"machine": machine()}
    # 1. throughput vs the ceiling
    eng = run_worker({"kind": "engine", "bars": 1_000_000, "reps": 5})
    ceil = run_worker({"kind": "ceiling", "bars": 1_000_000, "reps": 5})
    rate_e = eng["bars"] * eng["combos"] / eng["seconds"]
    rate_c = ceil["bars"] * ceil["combos"] / ceil["seconds"]
    out["throughput"] = {
        "engine_bar_combos_per_s": rate_e,
        "ceiling_bar_combos_per_s": rate_c,
        "engine_seconds": eng["seconds"],
        "ceiling_seconds": ceil["seconds"],
        "ratio_engine_time_to_ceiling": eng["seconds"] / ceil["seconds"],
        "engine_times": eng["times"],
        "ceiling_times": ceil["times"],
        "final_equity_agree_rel": max(abs(a - b) / b for a, b in zip(eng["final_equity"], ceil["final_equity"])),
        "trades_equal": eng["trades"] == ceil["trades"],
    }
    print(
        table(
            [
                {"what": "engine", "seconds": eng["seconds"], "M bar-combos/s": rate_e / 1e6},
                {"what": "ceiling (hand-written kernel)", "seconds": ceil["seconds"], "M bar-combos/s": rate_c / 1e6},
                {"what": "ratio engine/ceiling (time)", "seconds": eng["seconds"] / ceil["seconds"]},
            ],
            ["what", "seconds", "M bar-combos/s"],
            title="MA grid, 100 combinations x 1,000,000 bars",
        )
    )
    # 2. 10,000 combinations x 1,000,000 bars, complete run
    big = {
        "name": "big",
        "data": {"synthetic": {"bars": 1_000_000, "seed": 1}},
        "workflow": {"type": "optimization"},
        "strategies": [
            {
                "type": "ma_crossover",
                "parameters": {"fast": {"start": 1, "stop": 100}, "slow": {"start": 101, "stop": 200}},
            }
        ],
    }
    r = run_worker({"kind": "engine_run", "config": big})
    out["big"] = {
        "combinations": r["rows"],
        "bars": 1_000_000,
        "seconds": r["seconds"],
        "peak_mb": r["peak_mb"],
        "base_mb": r["base_mb"],
        "bar_combos_per_s": r["rows"] * 1_000_000 / r["seconds"],
    }
    print(
        table(
            [out["big"]],
            ["combinations", "bars", "seconds", "bar_combos_per_s", "peak_mb"],
            title="\n10,000 combinations x 1,000,000 bars (complete sweep.run, results written)",
        )
    )
    # 3. cold start vs warm
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "NUMBA_CACHE_DIR": os.path.join(tmp, "numba"), "SWEEP_KERNEL_DIR": os.path.join(tmp, "k")}
        args = ["run", "examples/quickstart.yaml", "--results-dir", os.path.join(tmp, "res"), "--quiet", "--force"]
        cold = cli_time(args, env)
        warm = [cli_time(args, env) for _ in range(3)]
    warm_med = sorted(warm)[1]
    out["start"] = {"cold_s": cold, "warm_s": warm_med, "warm_times": warm, "ratio": cold / warm_med}
    print(
        table(
            [out["start"]],
            ["cold_s", "warm_s", "ratio"],
            title="\nQuickstart as a process: cold (compiling everything) vs warm (disk caches)",
        )
    )
    print(f"\nwrote {write_json('engine', out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
