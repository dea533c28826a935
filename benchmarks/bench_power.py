"""How often does the luck verdict find a real edge?  The power of "unlikely to be luck alone".

    python benchmarks/bench_power.py [--quick] [--seeds N] [--sharpes 0,1,2,...]

Each run is what a user does - `sweep.run` of a config, results written to disk, phase_summary.json
read back - on generated data with a planted edge of known strength:

- a year of 5-minute bars (252 sessions x 78 = 19,656 bars), a zero-drift random walk: every bar's
  return is normal, sd 0.2 / sqrt(19,656) (20 % a year), and each bar opens at the previous close;
- each bar's volume is a hint about the next bar's direction (2000 up, 1000 down), right with
  probability p; trading it long/short (`planted_edge`) earns |r| with probability p and -|r|
  otherwise, a per-bar Sharpe ratio of (2p - 1) c / sqrt(1 - (2p - 1)^2 c^2) with c = sqrt(2 / pi),
  so p is set for an annualised Sharpe S (checked empirically below on 100 years of bars);
- 500 trials: the planted edge and 499 coin flips (`coin_flip` of examples/noise.py, long or short, no edge), default
  settings (`workflow: optimization`, objective Sharpe, daily blocks, 1,000 bootstrap replicates).

For each S, over seeds (the same random walk and hint draws at every S of a seed, so the columns are
paired), the share of runs whose verdict is "unlikely to be luck alone", "mixed evidence" and
"consistent with luck", against doing nothing (deflated Sharpe, PBO, SPA) and against buy-and-hold
(deflated Sharpe of excess returns, SPA), with the median deflated Sharpe and SPA p, how often the
planted edge ranked first, and its mean realised Sharpe.  Writes benchmarks/out/power.json.
40 seeds per S: about 12 minutes on 2 cores (`--quick`: 8 seeds, about 3).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
from common import HERE, machine, table, write_json

BARS = 252 * 78  # a year of 5-minute bars
PER_YEAR = float(BARS)  # bars a year, as the engine infers it from these timestamps
SIGMA = 0.2 / math.sqrt(PER_YEAR)
TRIALS = 500
SHARPES = (0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0)
C = math.sqrt(2.0 / math.pi)  # E|z| of a standard normal
VERDICTS = {"unlikely to be luck alone": "unlikely", "mixed evidence": "mixed", "consistent with luck": "consistent"}


def hint_accuracy(sharpe: float) -> float:
    """P(hint right) for which trading the hint has annualised Sharpe ``sharpe`` (inverse of ``bar_sharpe``)."""
    k = sharpe / math.sqrt(PER_YEAR)
    return 0.5 + 0.5 * k / (C * math.sqrt(1.0 + k * k))


def bar_sharpe(p: float) -> float:
    """Per-bar Sharpe ratio of earning |r| with probability p and -|r| otherwise, r normal with mean 0."""
    m = (2.0 * p - 1.0) * C
    return m / math.sqrt(1.0 - m * m)


def generate(seed: int, p: float, n: int = BARS) -> dict[str, np.ndarray]:
    """Bars whose volume at t hints the direction of bar t + 1, right with probability ``p``."""
    from containers.synthetic import session_timestamps

    rng = np.random.default_rng(seed)
    r = SIGMA * rng.standard_normal(n)  # r[t]: bar t's return, close t-1 -> close t
    right = rng.random(n) < p  # the same draws at every p: runs of one seed are paired across S
    close = 100.0 * np.cumprod(1.0 + r)
    up_next = np.r_[r[1:] > 0.0, False]
    opens = np.r_[100.0, close[:-1]]
    return {
        "timestamp": session_timestamps(n, "2024-01-02", "5m"),
        "open": opens,
        "high": np.maximum(opens, close),
        "low": np.minimum(opens, close),
        "close": close,
        "volume": np.where(right == up_next, 2000.0, 1000.0),
        "returns": r,
    }


def empirical_sharpe(sharpe: float, years: int = 100) -> float:
    """Annualised Sharpe of trading the hint on ``years`` of generated bars (no engine): the analytic check."""
    b = generate(10_000 + int(sharpe * 10), hint_accuracy(sharpe), BARS * years)
    pos = np.where(b["volume"] > 1500.0, 1.0, -1.0)[:-1]
    gain = pos * b["returns"][1:]
    return float(gain.mean() / gain.std(ddof=1) * math.sqrt(PER_YEAR))


def one_run(sharpe: float, seed: int, work: Path) -> dict:
    """`sweep.run` on one generated year; the verdicts read back from phase_summary.json."""
    import sweep

    b = generate(seed, hint_accuracy(sharpe))
    data = work / f"PWR_{seed}_{sharpe:g}.parquet"
    cols = {k: v for k, v in b.items() if k != "returns"}
    cols["timestamp"] = pl.Series(cols["timestamp"]).cast(pl.Datetime("ns", "UTC"))
    pl.DataFrame(cols).write_parquet(data)
    cfg = {
        "name": "power",
        "plugins": [str(HERE / "power_strategies.py"), str(HERE.parent / "examples" / "noise.py")],
        "data": {"path": str(data)},
        "strategies": [
            {"type": "planted_edge"},
            {"type": "coin_flip", "parameters": {"seed": {"start": 1, "stop": TRIALS - 1}, "bucket": 0.0005}},
        ],
        "portfolio": {"allow_short": True},
        "workflow": "optimization",
    }
    out = work / "results"
    res = sweep.run(cfg, results_dir=out, progress=False)
    block = json.loads((Path(res.path) / "optimize" / "phase_summary.json").read_text())["overfitting"][0]
    m = pl.read_parquet(Path(res.path) / "optimize" / "metrics.parquet")
    planted = m.filter(pl.col("strategy") == "planted_edge").row(0, named=True)
    hold = block["vs_buy_and_hold"]
    shutil.rmtree(out, ignore_errors=True)
    data.unlink()
    return {
        "sharpe": sharpe,
        "seed": seed,
        "planted_sharpe": planted["sharpe"],
        "planted_first": block["best"]["combo_id"] == planted["combo_id"],
        "flat": {k: block[k] for k in ("verdict", "deflated_sharpe", "pbo", "spa_p")},
        "buy_and_hold": {k: hold[k] for k in ("verdict", "deflated_sharpe", "spa_p")},
    }


def _median(xs: list) -> float | None:
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def summarise(runs: list[dict], sharpe: float) -> dict:
    mine = [r for r in runs if r["sharpe"] == sharpe]
    row = {
        "sharpe": sharpe,
        "hint_accuracy": hint_accuracy(sharpe),
        "analytic_sharpe": bar_sharpe(hint_accuracy(sharpe)) * math.sqrt(PER_YEAR),
        "empirical_sharpe_100y": empirical_sharpe(sharpe),
        "runs": len(mine),
        "planted_sharpe_mean": statistics.fmean(r["planted_sharpe"] for r in mine),
        "planted_sharpe_sd": statistics.stdev(r["planted_sharpe"] for r in mine) if len(mine) > 1 else None,
        "planted_first": sum(r["planted_first"] for r in mine) / len(mine),
    }
    for bench in ("flat", "buy_and_hold"):
        verdicts = [r[bench]["verdict"] for r in mine]
        for full, short in VERDICTS.items():
            row[f"{bench}_{short}"] = verdicts.count(full) / len(mine)
        row[f"{bench}_median_dsr"] = _median([r[bench]["deflated_sharpe"] for r in mine])
        row[f"{bench}_median_spa_p"] = _median([r[bench]["spa_p"] for r in mine])
    return row


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.1f}".rstrip("0").rstrip(".") + "%"


def power_section(pw, table_md, machine_md, cmd: str) -> list[str]:
    """RESULTS.md's section (``benchmarks/report.py`` passes its table and machine formatters)."""
    if not pw:
        return []
    rows = []
    for r in pw["rows"]:
        row = {"sharpe": r["sharpe"], "first": _pct(r["planted_first"])}
        for b in ("flat", "buy_and_hold"):
            for v in ("unlikely", "mixed", "consistent"):
                row[f"{b}_{v}"] = _pct(r[f"{b}_{v}"])
            row[f"{b}_dsr"], row[f"{b}_spa"] = r[f"{b}_median_dsr"], r[f"{b}_median_spa_p"]
        rows.append(row)
    cols = ["sharpe", "first"] + [
        f"{b}_{v}" for b in ("flat", "buy_and_hold") for v in ("unlikely", "mixed", "consistent", "dsr", "spa")
    ]
    heads = ["true Sharpe", "edge ranked first"] + [
        f"{v} ({b})"
        for b in ("vs nothing", "vs buy-and-hold")
        for v in ("unlikely", "mixed", "consistent", "median DSR", "median SPA p")
    ]
    return [
        "## Power of the luck verdict (planted edges of known Sharpe)",
        "",
        f"`{cmd}` - {machine_md(pw['machine'])}",
        "",
        f"{pw['seeds']} runs per true Sharpe ratio (annualised), each a `sweep.run` with default settings and its "
        f"results read back from disk: {pw['bars']:,} five-minute bars (a year) of a zero-drift random walk, "
        f"{pw['trials']} trials - one strategy trading a hint planted in the data that calls the next bar's "
        f"direction right often enough for that Sharpe ratio, and {pw['trials'] - 1} coin flips.  The shares are "
        'of runs whose verdict was "unlikely to be luck alone", "mixed evidence" or "consistent with '
        'luck", against doing nothing (deflated Sharpe, PBO, SPA) and against buy-and-hold of the same bars '
        '(deflated Sharpe of excess returns, SPA).  "Consistent with luck" is not "no edge".',
        "",
        table_md(rows, cols, heads),
        "",
        "The planted edge's strength, checked: the hint's accuracy, the Sharpe ratio of trading it on 100 years "
        "of generated bars (no engine), and the engine's realised Sharpe of the planted strategy (mean and sd "
        "over the runs).",
        "",
        table_md(
            pw["rows"],
            ["sharpe", "hint_accuracy", "empirical_sharpe_100y", "planted_sharpe_mean", "planted_sharpe_sd"],
            ["true Sharpe", "hint right", "trading the hint, 100 years", "engine, mean", "engine, sd"],
        ),
        "",
        f"({pw['seconds'] / 60:.0f} minutes.)",
        "",
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="8 seeds per Sharpe ratio instead of 40")
    ap.add_argument("--seeds", type=int, default=None)
    ap.add_argument("--sharpes", default=",".join(f"{s:g}" for s in SHARPES))
    args = ap.parse_args()
    seeds = args.seeds or (8 if args.quick else 40)
    sharpes = [float(s) for s in args.sharpes.split(",")]
    t0 = time.perf_counter()
    runs = []
    with tempfile.TemporaryDirectory(prefix="sweep-power-") as tmp:
        one_run(sharpes[0], 0, Path(tmp))  # warm-up: compile the kernels (not counted)
        for seed in range(seeds):
            for s in sharpes:
                runs.append(one_run(s, seed, Path(tmp)))
            print(f"seed {seed + 1}/{seeds} done ({time.perf_counter() - t0:.0f} s)", flush=True)
    rows = [summarise(runs, s) for s in sharpes]
    cols = ["sharpe", "hint_accuracy", "empirical_sharpe_100y", "planted_sharpe_mean", "planted_first"]
    for bench in ("flat", "buy_and_hold"):
        cols += [f"{bench}_unlikely", f"{bench}_mixed", f"{bench}_consistent"]
        cols += [f"{bench}_median_dsr", f"{bench}_median_spa_p"]
    print(table(rows, cols[:5] + [c for c in cols if c.startswith("flat")], "against doing nothing:"))
    print(table(rows, cols[:1] + [c for c in cols if c.startswith("buy_and_hold")], "against buy-and-hold:"))
    path = write_json(
        "power",
        {
            "machine": machine(),
            "bars": BARS,
            "bars_per_year": PER_YEAR,
            "trials": TRIALS,
            "seeds": seeds,
            "quick": bool(args.quick),
            "seconds": time.perf_counter() - t0,
            "rows": rows,
            "runs": runs,
        },
    )
    print(f"wrote {path} in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
