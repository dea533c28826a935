"""Stored signals: what replaying them saves over a full backtest, what the store costs on disk.

    python benchmarks/bench_signals.py [--quick]

Every figure is `sweep run` as a process (warm: one untimed run first; results written), median of
3, with both sides of a ratio measured in this run:

1. The 100-combination MA grid on 1,000,000 synthetic bars: full backtest vs replay of its stored
   signals, with the same tracing (all fills and trades written) and with none (metrics only).
2. A cost/risk sweep on SPY 1-minute bars: 100 MA combinations x 5 commissions x 4 trailing stops
   (2,000 combinations), full backtest grid vs replay, metrics only.
3. An expensive classifier (the causal HMM, 2 x 10 MA pairs) on SPY 1-minute bars: backtest vs replay.
4. The store of 10,000 MA combinations on SPY 1-minute bars: size on disk; time of a first and of a
   second identical signal_generation run (the second computes nothing).
Writes benchmarks/out/signals.json.  (3) and (4) need ../shared/data; --quick skips (3).
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from common import ROOT, SHARED_DATA, machine, table, write_json

MA = {
    "type": "ma_crossover",
    "parameters": {"fast": {"start": 5, "stop": 50, "step": 5}, "slow": {"start": 20, "stop": 200, "step": 20}},
}


def run(cfg: dict, tmp: Path, reps: int = 3, warm: bool = True) -> list[float]:
    path = tmp / f"{cfg['name']}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    args = [sys.executable, "-m", "sweep", "run", str(path), "--results-dir", str(tmp / "res"), "--quiet", "--force"]
    times = []
    for k in range(reps + (1 if warm else 0)):
        t = time.perf_counter()
        proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
        if proc.returncode:
            raise SystemExit(f"{cfg['name']} failed:\n{proc.stderr[-2000:]}")
        if k or not warm:
            times.append(time.perf_counter() - t)
    return times


def pair(name: str, base: dict, workflow_a: str, workflow_b: str, tmp: Path, store: Path, extra: dict | None = None):
    """Backtest-like run vs the replay of the same grid, both warm; the store is filled first."""
    common = {**base, "signals_dir": str(store), **(extra or {})}
    tag = "".join(ch if ch.isalnum() else "_" for ch in name)[:60]
    run({**common, "name": f"{tag}_gen", "workflow": "signal_generation"}, tmp, reps=1, warm=False)
    a = run({**common, "name": f"{tag}_full", "workflow": workflow_a}, tmp)
    b = run({**common, "name": f"{tag}_replay", "workflow": workflow_b}, tmp)
    fa, fb = statistics.median(a), statistics.median(b)
    return {"case": name, "full_s": fa, "replay_s": fb, "speedup": fa / fb, "full_times": a, "replay_times": b}


def main() -> int:
    quick = "--quick" in sys.argv
    out: dict = {"machine": machine(), "cases": []}
    spy = SHARED_DATA / "SPY_1m.parquet"
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        synth = {"data": {"synthetic": {"bars": 1_000_000, "seed": 1}}, "strategies": [MA]}
        print("1. MA grid, 1,000,000 bars", flush=True)
        out["cases"].append(pair("MA 100 x 1M, all trades traced", synth, "backtest", "signal_replay", tmp, tmp / "s1"))
        quiet = {"event_tracing": [], "retention_policy": "minimal"}
        out["cases"].append(
            pair("MA 100 x 1M, metrics only", synth, "backtest", "signal_replay", tmp, tmp / "s1", quiet)
        )
        if spy.exists():
            print("2. cost/risk sweep, SPY 1m", flush=True)
            costs = {
                "data": {"path": str(spy)},
                "strategies": [MA],
                "risk": [{"type": "trailing_stop", "parameters": {"pct": [0.005, 0.01, 0.02, 0.05]}}],
                "execution": {"commission": {"rate": [0.0, 0.0001, 0.0002, 0.0005, 0.001]}},
            }
            out["cases"].append(
                pair(
                    "cost/risk 100 x 5 x 4 on SPY 1m, metrics only",
                    costs,
                    "backtest",
                    "signal_replay",
                    tmp,
                    tmp / "s2",
                    quiet,
                )
            )
            if not quick:
                print("3. HMM classifier, SPY 1m", flush=True)
                hmm = {
                    "data": {"path": str(spy)},
                    "strategies": [
                        {"type": "ma_crossover", "parameters": {"fast": [5, 10], "slow": [20, 40, 60, 80, 100]}}
                    ],
                    "classifiers": [{"type": "hmm", "parameters": {"model_type": ["hmm"], "lookback_days": [10, 20]}}],
                }
                out["cases"].append(
                    pair(
                        "HMM-gated 10 x 2 on SPY 1m, metrics only",
                        hmm,
                        "backtest",
                        "signal_replay",
                        tmp,
                        tmp / "s3",
                        quiet,
                    )
                )
            print("4. store of 10,000 MA combinations, SPY 1m", flush=True)
            big = {
                "name": "store10k",
                "data": {"path": str(spy)},
                "workflow": "signal_generation",
                "signals_dir": str(tmp / "s4"),
                "strategies": [
                    {
                        "type": "ma_crossover",
                        "parameters": {"fast": {"start": 1, "stop": 100}, "slow": {"start": 101, "stop": 200}},
                    }
                ],
            }
            run({**big, "name": "warm10k", "signals_dir": str(tmp / "s4warm")}, tmp, reps=1, warm=False)  # compile
            shutil.rmtree(tmp / "s4warm", ignore_errors=True)
            first = run(big, tmp, reps=1, warm=False)[0]
            size = sum(p.stat().st_size for p in (tmp / "s4").rglob("*") if p.is_file())
            second = statistics.median(run(big, tmp, reps=3, warm=False))
            out["store"] = {
                "pairs": 10_000,
                "bars": "SPY 1m",
                "size_mb": size / 2**20,
                "first_s": first,
                "second_s": second,
            }
        else:
            print(f"(2)-(4) skipped: {spy} not found")
    print(
        table(
            out["cases"],
            ["case", "full_s", "replay_s", "speedup"],
            title="\nfull backtest vs replay of stored signals (process, warm)",
        )
    )
    if "store" in out:
        s = out["store"]
        print(
            f"\nstore of 10,000 MA pairs on SPY 1m: {s['size_mb']:.1f} MB on disk; first generation "
            f"{s['first_s']:.1f} s, second identical run {s['second_s']:.2f} s"
        )
    print(f"\nwrote {write_json('signals', out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
