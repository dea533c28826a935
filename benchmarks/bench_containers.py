"""Container reduction: the same sweeps on the naive topology (the reference engine: one container
object per strategy, classifier, risk and portfolio, events per bar) and on the stateless one.

    python benchmarks/bench_containers.py

Reports containers, service configurations, events delivered, wall time and peak memory of
each, the ratios, and checks both give the same metrics.  Writes benchmarks/out/containers.json.
"""

from __future__ import annotations

import numpy as np
from common import ROOT, machine, run_worker, table, write_json

import sweep

SWEEPS = {
    "seed example (24 combinations)": {
        **__import__("yaml").safe_load((ROOT / "examples" / "seed.yaml").read_text()),
        "name": "seed",
        "data": {"synthetic": {"bars": 20_000, "timeframe": "5m", "seed": 1}},
        "results_storage": "memory",
        "workflow": "backtest",
    },
    "large grid (300 combinations)": {
        "name": "large",
        "data": {"synthetic": {"bars": 10_000, "timeframe": "5m", "seed": 2}},
        "workflow": "backtest",
        "results_storage": "memory",
        "strategies": [
            {
                "type": "ma_crossover",
                "parameters": {
                    "fast": {"start": 5, "stop": 50, "step": 5},
                    "slow": {"start": 60, "stop": 240, "step": 20},
                },
            }
        ],
        "classifiers": [{"type": "trend", "parameters": {"period": [20, 40, 80]}}],
        "risk": [{"type": "stop_loss", "parameters": {"pct": 0.02}}],
    },
}


def main() -> int:
    rows, out = [], {"machine": machine(), "sweeps": {}}
    for label, cfg in SWEEPS.items():
        plan = sweep.expand(cfg, count_data=False)
        fast = run_worker({"kind": "engine_run", "config": cfg, "engine": "fast"})
        ref = run_worker({"kind": "engine_run", "config": cfg, "engine": "reference"})
        same = np.allclose(fast["final_equity"], ref["final_equity"], rtol=1e-9) and fast["trades"] == ref["trades"]
        svc = plan.services()
        for name, r, containers in (
            ("naive (reference engine)", ref, plan.naive.total),
            ("stateless (fused kernel)", fast, plan.stateless.total),
        ):
            rows.append(
                {
                    "sweep": label,
                    "topology": name,
                    "containers": containers,
                    "service configs": sum(svc.values()) if "stateless" in name else 0,
                    "events delivered": r["events_delivered"],
                    "seconds": r["seconds"],
                    "peak MiB": r["peak_mb"],
                }
            )
        out["sweeps"][label] = {
            "combinations": plan.combinations,
            "containers": plan.containers(),
            "reduction": plan.reduction(),
            "services": svc,
            "reference_containers_measured": ref["containers"],
            "events_delivered": {"naive": ref["events_delivered"], "stateless": fast["events_delivered"]},
            "seconds": {"naive": ref["seconds"], "stateless": fast["seconds"]},
            "peak_mb": {"naive": ref["peak_mb"], "stateless": fast["peak_mb"]},
            "ratios": {
                "containers": plan.naive.total / plan.stateless.total,
                "events": ref["events_delivered"] / max(1, fast["events_delivered"]),
                "time": ref["seconds"] / fast["seconds"],
                "memory": ref["peak_mb"] / fast["peak_mb"],
            },
            "same_results": bool(same),
        }
        print(
            table(
                [r for r in rows if r["sweep"] == label],
                ["topology", "containers", "service configs", "events delivered", "seconds", "peak MiB"],
                title=f"\n{label}: {plan.combinations} combinations, same results: {same}",
            )
        )
        rat = out["sweeps"][label]["ratios"]
        print(
            "naive / stateless: "
            + ", ".join(f"{k} {v:,.1f}x" for k, v in rat.items())
            + f"; containers {plan.reduction():.0%} fewer"
        )
    print(f"\nwrote {write_json('containers', out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
