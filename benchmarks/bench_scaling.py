"""Scaling: time and peak memory as bars grow and as combinations grow; features vs the
combination loop; 1 vs 2 threads.

    python benchmarks/bench_scaling.py            # bars 1e4..1e7, combinations 10..1e5
    python benchmarks/bench_scaling.py --quick    # bars up to 1e6, combinations up to 1e4

Each point is a fresh process (peak memory is that point's own).  Writes benchmarks/out/scaling.json.
"""

from __future__ import annotations

import argparse

from common import machine, run_worker, table, write_json


def grid(n_combos: int) -> dict:
    """An MA grid with about n_combos combinations (fast x slow)."""
    k = max(1, int(round(n_combos**0.5)))
    m = max(1, n_combos // k)
    return {
        "type": "ma_crossover",
        "parameters": {"fast": {"start": 2, "stop": 1 + k}, "slow": {"start": 40, "stop": 39 + m}},
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    out = {"machine": machine()}
    bar_sizes = [10_000, 100_000, 1_000_000] + ([] if args.quick else [10_000_000])
    rows = []
    for n in bar_sizes:
        r = run_worker({"kind": "engine", "bars": n, "reps": 3})
        rows.append(
            {
                "bars": n,
                "combinations": 100,
                "seconds": r["seconds"],
                "M bar-combos/s": n * 100 / r["seconds"] / 1e6,
                "peak MiB": r["peak_mb"],
                "data MiB": n * 6 * 8 / 2**20,
            }
        )
    out["bars"] = rows
    print(
        table(
            rows,
            ["bars", "combinations", "seconds", "M bar-combos/s", "peak MiB", "data MiB"],
            title="Bars grow (MA grid, 100 combinations): time linear, memory = data + constant",
        )
    )
    rows = []
    for c in [10, 100, 1_000, 10_000] + ([] if args.quick else [100_000]):
        cfg = {
            "name": "scale",
            "data": {"synthetic": {"bars": 100_000, "seed": 1}},
            "workflow": {"type": "optimization"},
            "strategies": [grid(c)],
            "results_storage": "memory",
            "top_k": 5,
        }
        r = run_worker({"kind": "engine_run", "config": cfg})
        rows.append(
            {
                "bars": 100_000,
                "combinations": r["rows"],
                "seconds": r["seconds"],
                "M bar-combos/s": r["rows"] * 100_000 / r["seconds"] / 1e6,
                "peak MiB": r["peak_mb"],
                "MiB above baseline": r["peak_mb"] - r["base_mb"],
            }
        )
    out["combinations"] = rows
    print(
        table(
            rows,
            ["bars", "combinations", "seconds", "M bar-combos/s", "peak MiB", "MiB above baseline"],
            title="\nCombinations grow (complete sweep.run, 100,000 bars): memory grows with combinations only",
        )
    )
    rows = []
    for threads in (1, 2):
        r = run_worker({"kind": "split", "bars": 1_000_000, "threads": threads, "reps": 3})
        total = r["features_s"] + r["loop_s"]
        rows.append(
            {
                "threads": threads,
                "features s": r["features_s"],
                "combination loop s": r["loop_s"],
                "features share": r["features_s"] / total,
                "M bar-combos/s": 1e8 / total / 1e6,
            }
        )
    rows.append(
        {
            "threads": "2 vs 1 speed-up",
            "combination loop s": rows[0]["combination loop s"] / rows[1]["combination loop s"],
        }
    )
    out["split_threads"] = rows
    print(
        table(
            rows,
            ["threads", "features s", "combination loop s", "features share", "M bar-combos/s"],
            title="\nWhere the time goes (100 combinations x 1,000,000 bars) and 1 vs 2 threads",
        )
    )
    print(f"\nwrote {write_json('scaling', out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
