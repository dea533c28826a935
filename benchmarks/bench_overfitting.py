"""What honest optimisation costs, each figure against its reference in this run.

    python benchmarks/bench_overfitting.py [--quick]

1. Kernel-only: the MA grid (100 combinations x 1,000,000 synthetic one-minute bars) with and
   without accumulating every combination's daily returns in the same pass (target: at most 15 %
   more kernel time).  Repetitions alternate so both see the same machine state.
2. The statistics alone: deflated Sharpe + PBO (CSCV, 16 partitions = 12,870 splits) + Reality
   Check / SPA (1,000 stationary-bootstrap replicates) on 10,000 combinations x 260 daily blocks
   (target: under 10 s on 2 cores), after a warm-up that compiles the kernels.
3. The same grid as a complete `sweep.run` (workflow optimization, results written) with
   `overfitting: false` and with the default: what the luck block adds to the user's wait.
Writes benchmarks/out/overfitting.json.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time

import numpy as np
from common import FAST, SLOW, machine, synthetic_bars, table, write_json


def kernel_cost(bars: int, reps: int) -> dict:
    import sweep
    from containers.data import Universe, frequency
    from containers.feature_hub import FeatureHub
    from sweep.engine import build_tables, simulate
    from sweep.stats.blocks import BlockSpec

    b = synthetic_bars(bars, seed=1)
    per_day, per_year = frequency(b["timestamp"])
    cols = (np.ascontiguousarray(b[k]) for k in ("open", "high", "low", "close", "volume"))
    u = Universe("B", b["timestamp"], *cols, "bench", per_day, per_year)
    cfg = {
        "data": {"synthetic": {"bars": 100}},
        "strategies": [{"type": "ma_crossover", "parameters": {"fast": FAST.tolist(), "slow": SLOW.tolist()}}],
    }
    plan = sweep.expand(cfg, count_data=False)
    tables = build_tables(plan, FeatureHub(plan.features, u.bars_per_day))
    ids = np.arange(plan.combinations)
    for spec in (None, BlockSpec()):  # warm-up: compile or load from the disk cache
        simulate(plan, u, ids, tables, blocks=spec)
    plain, blocks, n_blocks = [], [], 0
    for _ in range(reps):
        for spec, bucket in ((None, plain), (BlockSpec(), blocks)):
            tm: dict = {}
            res = simulate(plan, u, ids, tables, blocks=spec, timings=tm)
            bucket.append(tm["loop_s"])
            if spec is not None:
                n_blocks = res.block_returns.shape[1]
    p, q = statistics.median(plain), statistics.median(blocks)
    return {
        "combinations": int(plan.combinations),
        "bars": bars,
        "blocks": n_blocks,
        "kernel_s_without": p,
        "kernel_s_with_blocks": q,
        "extra_fraction": q / p - 1.0,
        "times_without": plain,
        "times_with": blocks,
    }


def stats_cost(n: int, t: int, reps: int) -> dict:
    from sweep.config_sections import OverfittingConfig
    from sweep.overfitting import evaluate

    rng = np.random.default_rng(0)
    mat = rng.normal(0.0, 0.01, (n, t))
    mat[: n // 100] += rng.normal(0.0, 0.001, (n // 100, 1))  # some combinations with small edges
    ids = np.arange(n)
    best = int(np.argmax(mat.mean(1) / mat.std(1)))
    cfg = OverfittingConfig(reps=reps)

    def once(m):
        return evaluate(
            [(ids[: len(m)], m)], n_blocks=t, rows=len(m), best_id=best, settings=cfg, seed=0, block_label="1d"
        )

    once(mat[:300])  # compile
    times = []
    for _ in range(3):
        s = time.perf_counter()
        out = once(mat)
        times.append(time.perf_counter() - s)
    return {
        "combinations": n,
        "blocks": t,
        "reps": reps,
        "splits": out["cscv"]["splits"],
        "seconds": statistics.median(times),
        "times": times,
        "pbo": out["pbo"],
        "deflated_sharpe": out["deflated_sharpe"],
        "spa_p": out["spa_p"],
    }


def run_cost(bars: int) -> dict:
    import sweep

    cfg = {
        "name": "of",
        "data": {"synthetic": {"bars": bars, "seed": 1}},
        "workflow": {"type": "optimization"},
        "strategies": [{"type": "ma_crossover", "parameters": {"fast": FAST.tolist(), "slow": SLOW.tolist()}}],
    }
    out = {}
    for label, extra in (("without", {"overfitting": False}), ("with", {})):
        c = {**cfg, **extra}
        sweep.run({**c, "results_storage": "memory"}, progress=False)  # warm-up
        times = []
        for _ in range(3):
            with tempfile.TemporaryDirectory() as tmp:
                s = time.perf_counter()
                sweep.run(c, results_dir=tmp, progress=False, force=True)
                times.append(time.perf_counter() - s)
        out[f"run_s_{label}"] = statistics.median(times)
    out["extra_fraction"] = out["run_s_with"] / out["run_s_without"] - 1.0
    return out


def main() -> int:
    quick = "--quick" in sys.argv
    out = {"machine": machine()}
    k = kernel_cost(200_000 if quick else 1_000_000, 3 if quick else 7)
    out["kernel"] = k
    print(
        table(
            [
                {"what": "kernel without block returns", "seconds": k["kernel_s_without"]},
                {
                    "what": f"kernel with daily block returns ({k['blocks']} blocks)",
                    "seconds": k["kernel_s_with_blocks"],
                },
                {"what": "extra kernel time (target <= 0.15)", "seconds": k["extra_fraction"]},
            ],
            ["what", "seconds"],
            title=f"Kernel-only: MA grid, {k['combinations']} combinations x {k['bars']:,} bars (medians)",
        )
    )
    s = stats_cost(2_000 if quick else 10_000, 260, 1000)
    out["statistics"] = s
    print(
        table(
            [s],
            ["combinations", "blocks", "reps", "splits", "seconds"],
            title="\nDeflated Sharpe + PBO (CSCV) + Reality Check/SPA (target: 10,000 x 260 under 10 s)",
        )
    )
    r = run_cost(200_000 if quick else 1_000_000)
    out["run"] = r
    print(
        table(
            [r],
            ["run_s_without", "run_s_with", "extra_fraction"],
            title="\nComplete sweep.run of the MA grid (optimization, results written): overfitting off vs on",
        )
    )
    print(f"\nwrote {write_json('overfitting', out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
