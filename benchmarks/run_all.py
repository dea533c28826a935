"""Run every benchmark, then regenerate RESULTS.md: ``python benchmarks/run_all.py [--quick]``."""

from __future__ import annotations

import subprocess
import sys

from common import HERE


def main() -> int:
    quick = ["--quick"] if "--quick" in sys.argv else []
    for script, extra in (
        ("bench_wall.py", quick),
        ("bench_engine.py", []),
        ("bench_signals.py", quick),
        ("bench_lanes.py", []),
        ("bench_ray.py", quick),
        ("bench_containers.py", []),
        ("bench_scaling.py", quick),
        ("bench_peers.py", quick),
        ("bench_overfitting.py", quick),
        ("bench_power.py", quick),
    ):
        print(f"\n=== {script} ===", flush=True)
        subprocess.run([sys.executable, str(HERE / script), *extra], check=True)
    subprocess.run([sys.executable, str(HERE / "report.py")], check=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
