"""Render benchmarks/RESULTS.md from the JSON the benchmark scripts wrote to benchmarks/out/.

python benchmarks/report.py            # after the bench_*.py scripts (or run_all.py)
"""

from __future__ import annotations

from pathlib import Path

from bench_power import power_section
from common import HERE, OUT

CMD = {
    "wall": "python benchmarks/bench_wall.py",
    "engine": "python benchmarks/bench_engine.py",
    "peers": "python benchmarks/bench_peers.py",
    "containers": "python benchmarks/bench_containers.py",
    "scaling": "python benchmarks/bench_scaling.py",
    "overfitting": "python benchmarks/bench_overfitting.py",
    "signals": "python benchmarks/bench_signals.py",
    "lanes": "python benchmarks/bench_lanes.py",
    "ray": "python benchmarks/bench_ray.py",
    "power": "python benchmarks/bench_power.py",
}


AGREEMENT = [
    ("data", "data"),
    ("bars", "bars"),
    ("fee", "fee"),
    ("engine_vs_vectorbt_equity_rel", "engine vs vectorbt: final equity (max rel.)"),
    ("engine_vs_vectorbt_trades_equal", "trades equal"),
    ("engine_vs_vectorbt_same_ma_rel", "same MAs: final equity"),
    ("engine_vs_vectorbt_same_ma_trades_equal", "same MAs: trades equal"),
    ("below_one_dollar", "pairs ending below $1"),
    ("engine_vs_vectorbt_solvent_rel", "pairs above $1: final equity"),
    ("engine_vs_vectorbt_solvent_trades_equal", "pairs above $1: trades equal"),
    ("ceiling_vs_vectorbt_equity_rel", "ceiling vs vectorbt"),
    ("backtesting_vs_engine_whole_shares_rel", "backtesting.py vs engine in whole shares"),
    ("backtesting_pairs_compared", "pairs compared"),
    ("backtesting_pairs_drained", "pairs under 10% of capital"),
    ("backtesting_slow200_max_rel", "backtesting.py, slow=200"),
    ("backtrader_vs_vectorbt_rel", "backtrader vs vectorbt"),
]


def _load(name):
    import json

    p = OUT / f"{name}.json"
    return json.loads(p.read_text()) if p.exists() else None


def _f(v, digits=3):
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (int,)) and not isinstance(v, bool):
        return f"{v:,}"
    if isinstance(v, float):
        if v != v:
            return "nan"
        if abs(v) >= 1e6:
            return f"{v / 1e6:,.1f}M"
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        if abs(v) < 1e-3 and v != 0:
            return f"{v:.1e}"
        return f"{v:.{digits}g}"
    return str(v)


def _table(rows, cols, heads=None):
    heads = heads or cols
    out = ["| " + " | ".join(heads) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for r in rows:
        out.append("| " + " | ".join(_f(r.get(c)) for c in cols) + " |")
    return "\n".join(out)


def _machine(m):
    return (
        f"{m['cpu']} ({m['cores']} cores, {m['memory_gib']} GiB), Python {m['python']}, numpy {m['numpy']}, "
        f"numba {m['numba']}; measured {m['date']}"
    )


TARGETS = {"(a)": 0.5, "(b)": 0.33, "(d)": 0.8}  # issue 12: end-to-end throughput / the ceiling's


def _wall(w) -> list[str]:
    """The headline: `sweep run` end to end against the hand-written ceiling measured in the same run."""
    if not w:
        return []
    rows = []
    for r in w["cases"]:
        if "error" in r:
            rows.append({"case": r["case"], "ceiling_s": None})
            continue
        target = TARGETS.get(r["case"][:3])
        rows.append({**r, "target": target, "met": None if target is None else r["ratio_in_process"] >= target})
    out = [
        "## What a user waits for (headline)",
        "",
        f"`{CMD['wall']}` - {_machine(w['machine'])}",
        "",
        "`sweep run` end to end - config, data load, features, kernel, luck statistics, top-k detail, "
        "results written to disk - warm (compiled kernels and synthetic data in their disk caches), as a "
        "process (`python -m sweep run`, interpreter start and imports included) and in-process "
        "(`sweep.run` in a warm interpreter), beside the hand-written fused kernel of benchmarks/ceiling.py "
        "on the same bars and grid (arrays already in memory, nothing written).  Ratio = ceiling seconds / "
        "ours (1 = as fast as the hand-written kernel); the target applies to the in-process ratio.  The "
        "kernel-only column is the engine's `simulate` alone.",
        "",
        _table(
            rows,
            [
                "case",
                "ceiling_s",
                "process_s",
                "ratio_process",
                "in_process_s",
                "ratio_in_process",
                "target",
                "met",
                "kernel_only_s",
                "ratio_kernel_only",
                "peak_mb",
                "final_equity_agree_rel",
            ],
            [
                "case",
                "ceiling (s)",
                "sweep run process (s)",
                "ratio",
                "sweep.run in-process (s)",
                "ratio",
                "target",
                "met",
                "kernel-only (s)",
                "ratio",
                "peak MiB",
                "final equity vs ceiling",
            ],
        ),
        "",
        f"Warm `sweep run examples/quickstart.yaml` as a process: {_f(w['quickstart_process_s'])} s "
        "(target: under 1.5 s).",
        "",
        "Where the in-process time went (`sweep run --profile` prints the same for any run; nested stages - "
        "features (chunks), events - are also inside the kernel and detail figures):",
        "",
    ]
    ok = [r for r in w["cases"] if "error" not in r]
    names = list(dict.fromkeys(k for r in ok for k in r["stages"]))
    out.append(
        _table(
            [{"stage": k, **{r["case"][:3]: r["stages"].get(k) for r in ok}} for k in names],
            ["stage", *[r["case"][:3] for r in ok]],
        )
    )
    bounds = [b for b in (_bound(r) for r in ok) if b]
    if bounds:
        out += ["", "What bounds a missed target, from the stages above (same run):", "", *bounds]
    return [*out, ""]


# what the run does besides the bar loop: stages that nest none of it (the detail pass replays the top-k through
# the loop, so it is left out), and the two the loop's figure nests (taken off it)
_NESTED = ("features (chunks)", "events (bus, tracer, parts)")
_OUTSIDE = (
    "data",
    "features (whole universe)",
    *_NESTED,
    "luck statistics",
    "events and trades (shard files)",
    "write phase files",
)


def _bound(r: dict) -> str | None:
    """One line for a case below its target: its time budget, what the bar loop alone took, what the rest took."""
    target = TARGETS.get(r["case"][:3])
    if target is None or r["ratio_in_process"] >= target:
        return None
    budget = r["ceiling_s"] / target
    loop = r["stages"].get("kernel (bar loop)", 0.0) - sum(r["stages"].get(k, 0.0) for k in _NESTED)
    rest = {k: r["stages"][k] for k in _OUTSIDE if r["stages"].get(k, 0.0) >= 0.005}
    parts = ", ".join(f"{k} {_f(v)}" for k, v in rest.items())
    return (
        f"- {r['case']}: the target allows {_f(budget)} s; the compiled bar loop alone (main pass and top-k "
        f"replay) took {_f(loop)} s, leaving {_f(max(0.0, budget - loop))} s for the rest of the run, "
        f"which took {_f(sum(rest.values()))} s: {parts}."
    )


def _signals(sg) -> list[str]:
    """Stored signals: replay against the full backtest, and the store's size."""
    if not sg:
        return []
    out = [
        "## Stored signals (signal generation and replay)",
        "",
        f"`{CMD['signals']}` - {_machine(sg['machine'])}",
        "",
        "`sweep run` as a process, warm, median of 3; the full backtest and the replay of its stored signals run "
        "the same bar loop with the same settings and give identical tables.  Speed-up = full / replay "
        "(issue 13's targets: at least 5 on the first and the cost/risk rows).",
        "",
        _table(
            sg["cases"],
            ["case", "full_s", "replay_s", "speedup"],
            ["case", "full backtest (s)", "replay (s)", "speed-up"],
        ),
        "",
    ]
    st = sg.get("store")
    if st:
        out += [
            f"Store of 10,000 MA combinations on SPY 1-minute bars: {_f(st['size_mb'])} MB on disk (target: under "
            f"200); first signal_generation run {_f(st['first_s'])} s, a second identical run {_f(st['second_s'])} s "
            "(target: under 2; it computes nothing).",
            "",
        ]
    return out


def _lanes(ln) -> list[str]:
    """Would a combination-vectorised loop pay: scalar vs lanes on a reduced bar loop."""
    if not ln:
        return []
    return [
        "## Combination-vectorised loop (a measurement, not adopted)",
        "",
        f"`{CMD['lanes']}` - {_machine(ln['machine'])}",
        "",
        "A reduced bar loop (fills to a target, mark to market, return moments, drawdown, exposure, MA signal) "
        "over the 100-combination MA grid on 1,000,000 bars: one combination per thread iteration (the engine's "
        "layout) against W combinations in lockstep, branch-free so LLVM packs the lanes.  Bitwise equal; the "
        "gain is 1.3-1.4x at W >= 16 - not enough to justify a second bar loop to keep identical to the first.",
        "",
        _table(
            ln["rows"],
            ["kernel", "seconds", "speedup", "packed_div", "equal"],
            ["kernel", "seconds", "speed-up", "packed divisions in the code", "bitwise equal"],
        ),
        "",
    ]


def _ray(rb) -> list[str]:
    """The Ray backend against threads on the same grid, and the scaling model it implies."""
    if not rb:
        return []
    rows = rb["rows"]
    r2 = next(r for r in rows if r["case"] == "ray, 2 workers")
    big = next((r for r in rows if r["case"] == "ray, 2 workers, 4,000"), None)
    wide = next((r for r in rows if r["case"].endswith("shards of 1,000")), None)
    per_task = wide or big or r2
    per_worker = per_task["combinations"] * rb["bars"] / per_task["task_s_total"] / 1e6
    threads = [r for r in rows if r["case"].startswith("threads")][-1]
    if big and wide:
        extra = (big["task_s_total"] - wide["task_s_total"]) / max(1, big["shards"] - wide["shards"])
        overhead = (
            f"about {_f(extra)} s of per-pass overhead measured here ({big['shards']} tasks of "
            f"{4000 // big['shards']:,} took {_f(big['task_s_total'])} task-seconds, {wide['shards']} of 1,000 "
            f"took {_f(wide['task_s_total'])})"
        )
    else:
        overhead = "a per-pass overhead (run without --quick to measure it)"
    return [
        "## Scale out on Ray (local threads vs local Ray)",
        "",
        f"`{CMD['ray']}` - {_machine(rb['machine'])}",
        "",
        f"MA grids on {rb['bars']:,} synthetic 1-minute bars, `workflow: optimization`, `sweep run` as a process "
        "(warm: kernels cached), median of 2 (1 for the 4,000 grid).  Ratio = threads seconds / Ray seconds "
        "(1.0 = as fast as threads); every run's results are identical (tests/test_ray.py checks it table by "
        "table).",
        "",
        _table(
            rows,
            ["case", "seconds", "ratio_vs_threads", "bar_combos_per_s_M", "ray_start_s", "shards", "task_s_total"],
            ["case", "wall s", "vs threads", "M bar-combos/s", "Ray start s", "tasks", "task seconds (sum)"],
        ),
        "",
        f"What one node costs here: starting a local instance {_f(r2['ray_start_s'])} s, "
        "stopping it (measured by hand) about 1.3 s, "
        f"the bars and feature block broadcast once ({_f(r2['object_store_mb'])} MiB), a worker's set-up (config and "
        f"plan) {_f(r2['worker_setup_s'])} s, its kernel compile {_f(rb['cold_compile_s'])} s cold (an empty numba "
        f"cache: the node's warm-up task) and {_f(r2['warm_compile_s'])} s warm (it loads the node's cache), the "
        f"driver's work per received shard {_f(r2['driver_per_shard_ms'])} ms.  A task runs the kernel at "
        f"{_f(per_worker)} M bar-combos/s per worker (threads: "
        f"{_f(threads['bar_combos_per_s_M'] / 2)} M/s per thread end to end on the {threads['combinations']:,} grid); "
        "on one 2-core machine Ray only adds its fixed costs - it is for grids that outgrow one machine.",
        "",
        "Scaling model for N nodes of c cores (W = N c workers), G combinations, B bars, F feature rows:",
        "",
        "- broadcast once per node: bars 48 B x B and the feature block 8 B x (F + 1) x B (at most 256 MiB; a "
        "bigger block is not broadcast and every task computes its features itself - then per-task time grows "
        "by the feature pass);",
        f"- per shard of S combinations: S x B / r seconds of kernel (r above, per worker), plus {overhead}, "
        "and a result of S x (about 60 metric and bank values + blocks x 1) x 8 B back to the driver;",
        "- wall = start + warm-up + ceil(G / S / W) x (S x B / r + overhead) + the driver's luck statistics and "
        "top-k pass; shards are the memory bound split so a window makes up to 64 tasks (at least 256 "
        "combinations each; `backend.shard_combinations` sets it): choose S so G / S is a few times W;",
        f"- the driver becomes the bottleneck when shards arrive faster than it files them: W / (S x B / r) "
        f"> 1 / d with d = {_f(r2['driver_per_shard_ms'])} ms here (metrics, block returns, the marker); with "
        "traced events d grows with the events per shard (they pass the driver's bus and are written there), "
        "so traced sweeps want fewer, larger shards - or `event_tracing: []` and the top-k detail pass.",
        "",
    ]


def render() -> str:
    parts = [
        "# Benchmark results",
        "",
        "Regenerate everything with `python benchmarks/run_all.py` (about 30 minutes), or one section with the "
        "command shown under it, then `python benchmarks/report.py`.  Every comparison is measured in the same "
        "run; times are medians of several repetitions after a warm-up; each figure comes from its own "
        "process so peak memory is that measurement's own (peak RSS, including the Python interpreter and "
        "imports).  Absolute numbers belong to the machine named under each section.",
        "",
    ]
    parts += _wall(_load("wall"))
    parts += _signals(_load("signals"))
    parts += _lanes(_load("lanes"))
    parts += _ray(_load("ray"))
    eng = _load("engine")
    if eng:
        t, b, s = eng["throughput"], eng["big"], eng["start"]
        parts += [
            f"## {ENGINE_TITLE}",
            "",
            f"`{CMD['engine']}` - {_machine(eng['machine'])}",
            "",
            _table(
                [
                    {
                        "what": "MA grid: 100 combinations x 1,000,000 bars, engine",
                        "value": t["engine_seconds"],
                        "rate": t["engine_bar_combos_per_s"],
                    },
                    {
                        "what": "same, hand-written fused kernel (benchmarks/ceiling.py)",
                        "value": t["ceiling_seconds"],
                        "rate": t["ceiling_bar_combos_per_s"],
                    },
                    {"what": "engine time / ceiling time", "value": t["ratio_engine_time_to_ceiling"]},
                    {
                        "what": "final equity engine vs ceiling (max relative difference)",
                        "value": t["final_equity_agree_rel"],
                    },
                    {
                        "what": "10,000 combinations x 1,000,000 bars, complete run: seconds",
                        "value": b["seconds"],
                        "rate": b["bar_combos_per_s"],
                    },
                    {"what": "same: peak memory (MiB)", "value": b["peak_mb"]},
                    {"what": "quickstart cold start, compiling everything (s)", "value": s["cold_s"]},
                    {"what": "quickstart warm run (s)", "value": s["warm_s"]},
                ],
                ["what", "value", "rate"],
                ["measure", "value", "bar-combinations/s"],
            ),
            "",
        ]
    peers = _load("peers")
    if peers:
        parts += [
            "## Peers on the same MA grid",
            "",
            f"`{CMD['peers']}` - {_machine(peers['machine'])}",
            "",
            "Fast 5..50 step 5 x slow 20..200 step 20 (100 combinations), long-only, all-in, market orders "
            "filled at the next bar's open, with 0 and 0.1% commission.  vectorbt runs "
            "`Portfolio.from_signals` on all combinations at once (signals shifted one bar, filled at the "
            "open); backtesting.py runs `Backtest.optimize`; backtrader `optstrategy`.  The slow ones run a "
            "subset of combinations (and backtrader of bars) and are extrapolated, as the note says; "
            "'full grid s' is the time the 100 combinations take at that rate.",
            "",
            _table(
                peers["rows"],
                ["data", "fee", "library", "combos run", "seconds", "bar-combos/s", "full grid s", "peak MiB", "note"],
            ),
            "",
            "Engine speed-up and memory ratio against each (same run; >1 = the engine is faster / smaller):",
            "",
            _table(peers["ratios"], ["data", "fee", "library", "engine speed-up", "memory ratio"]),
            "",
            "### Do the results agree?",
            "",
            _table(peers["agreement"], [c for c, _ in AGREEMENT], [h for _, h in AGREEMENT]),
            "",
            "- **vectorbt** uses the engine's fill model exactly (shares = cash / (open x (1 + fee)) at the "
            "next open).  On synthetic data final equity agrees to ~1e-13 and closed-trade counts are identical "
            "for every combination.  Two differences remain, and the columns explain them: (1) on real SPY "
            "prices, which move in cents, the fast and slow averages are sometimes equal in exact arithmetic and "
            "each library's rounding of the rolling mean decides `fast > slow`; fed the engine's own moving "
            "averages ('same MAs'), vectorbt agrees to ~1e-14 with identical trade counts.  (2) With 0.1% "
            "commission on 1,000,000 one-minute bars the fastest pairs trade 10,000-30,000 times and their equity "
            "falls to fractions of a cent (1e-23 to 1e-6 of the $100,000 start); vectorbt stops filling orders "
            "that small while the engine keeps trading fractions of a share.  Every pair that ends above $1 "
            "agrees ('pairs above $1').",
            "- **backtesting.py** trades whole shares: against the engine with `fractional_shares: false` it "
            "agrees to ~1e-14 on every pair compared.  Excluded, with their reasons: slow = 200, because "
            "backtesting.py calls `next()` one bar after all indicators are valid, so its first decision is at "
            "bar 200 where the engine's (and vectorbt's here) is at bar 199, when the 200-bar average first "
            "exists; and pairs that commission drains below 10% of their capital: with only a few shares' worth "
            "left, whole-share sizing hits the cash limit, and backtesting.py's strategy then re-issues `buy()` "
            "on every bar while the signal holds, whereas the engine acts on signal changes only (traced on SPY "
            "5/20 at 0.1%: identical trades until about $550 of the $100,000 remain).",
            "- **backtrader** sizes an all-in order (AllInSizer, 99% to leave room for the gap) at the signal "
            "bar's close and fills it at the next open, so position sizes - and final equity - differ by "
            "design; it is reported for speed and memory.",
            "",
        ]
    cont = _load("containers")
    if cont:
        rows = []
        for label, c in cont["sweeps"].items():
            for topo in ("naive", "stateless"):
                rows.append(
                    {
                        "sweep": label,
                        "topology": topo,
                        "containers": c["containers"][topo],
                        "services": sum(c["services"].values()) if topo == "stateless" else 0,
                        "events": c["events_delivered"][topo],
                        "seconds": c["seconds"][topo],
                        "peak": c["peak_mb"][topo],
                    }
                )
            r = c["ratios"]
            rows.append(
                {
                    "sweep": label,
                    "topology": "naive / stateless",
                    "containers": r["containers"],
                    "events": r["events"],
                    "seconds": r["time"],
                    "peak": r["memory"],
                }
            )
        parts += [
            "## Container reduction",
            "",
            f"`{CMD['containers']}` - {_machine(cont['machine'])}",
            "",
            "The same sweep on the naive topology (the reference engine: one container object per strategy, "
            "classifier, risk validator and portfolio, a bar event at a time) and on the stateless one (shared "
            "data, feature hub and execution, a portfolio bank, services as configurations).  Both give the "
            "same metrics (checked).",
            "",
            _table(
                rows,
                ["sweep", "topology", "containers", "services", "events", "seconds", "peak"],
                ["sweep", "topology", "containers", "service configurations", "events delivered", "wall s", "peak MiB"],
            ),
            "",
        ]
    sc = _load("scaling")
    if sc:
        parts += [
            "## Scaling",
            "",
            f"`{CMD['scaling']}` - {_machine(sc['machine'])}",
            "",
            "As bars grow (100 combinations): time is linear; memory is the data plus a constant.",
            "",
            _table(sc["bars"], ["bars", "combinations", "seconds", "M bar-combos/s", "peak MiB", "data MiB"]),
            "",
            "As combinations grow (complete runs on 100,000 bars): memory grows with the combinations only "
            "(a portfolio is a row of state and a metrics row), never with combinations x bars.",
            "",
            _table(
                sc["combinations"],
                ["bars", "combinations", "seconds", "M bar-combos/s", "peak MiB", "MiB above baseline"],
            ),
            "",
            "Where the time goes (100 combinations x 1,000,000 bars), and 1 vs 2 threads:",
            "",
            _table(
                sc["split_threads"], ["threads", "features s", "combination loop s", "features share", "M bar-combos/s"]
            ),
            "",
        ]
    of = _load("overfitting")
    if of:
        k, st, r = of["kernel"], of["statistics"], of["run"]
        parts += [
            "## Honest optimisation (luck statistics)",
            "",
            f"`{CMD['overfitting']}` - {_machine(of['machine'])}",
            "",
            _table(
                [
                    {
                        "measure": f"kernel-only, MA grid {k['combinations']} x {k['bars']:,} bars, no blocks (s)",
                        "value": k["kernel_s_without"],
                    },
                    {
                        "measure": f"same, daily block returns accumulated in the pass ({k['blocks']:,} blocks) (s)",
                        "value": k["kernel_s_with_blocks"],
                    },
                    {"measure": "extra kernel time (target <= 0.15)", "value": k["extra_fraction"]},
                    {
                        "measure": f"deflated Sharpe + PBO ({st['splits']:,} splits) + Reality Check/SPA "
                        f"({st['reps']:,} replicates), {st['combinations']:,} combinations x {st['blocks']} blocks (s, "
                        "target < 10)",
                        "value": st["seconds"],
                    },
                    {
                        "measure": "complete sweep.run of the MA grid, optimization, overfitting off (s)",
                        "value": r["run_s_without"],
                    },
                    {"measure": "same, overfitting on (s)", "value": r["run_s_with"]},
                    {"measure": "extra wall time of the luck block", "value": r["extra_fraction"]},
                ],
                ["measure", "value"],
            ),
            "",
        ]
    parts += power_section(_load("power"), _table, _machine, CMD["power"])
    return "\n".join(parts) + "\n"


def _sections(text: str) -> dict[str, str]:
    """'## title' -> the section's text (title line included), in order."""
    out, title = {}, None
    for line in text.splitlines(keepends=True):
        if line.startswith("## "):
            title = line[3:].strip()
            out[title] = ""
        if title is not None:
            out[title] += line
    return out


ENGINE_TITLE = "Engine kernel (kernel-only; not what a user waits for - see the headline above)"
RENAMED = {"Engine (headline)": ENGINE_TITLE}  # titles of older renderings
ORDER = (
    "What a user waits for",
    "Engine kernel",
    "Combination-vectorised",
    "Stored signals",
    "Peers",
    "Container",
    "Scaling",
    "Scale out on Ray",
    "Honest optimisation",
    "Power of the luck verdict",
)


def _rank(title: str) -> int:
    return next((k for k, p in enumerate(ORDER) if title.startswith(p)), len(ORDER))


def merge(old: str, new: str) -> str:
    """The new rendering, keeping sections of the old file whose benchmark JSON is not here (not re-run)."""
    fresh = _sections(new)
    kept = {}
    for title, text in _sections(old).items():
        t = RENAMED.get(title, title)
        kept[t] = text.replace(f"## {title}\n", f"## {t}\n", 1)
    head = new.split("\n## ", 1)[0].rstrip("\n") + "\n\n"
    titles = sorted(dict.fromkeys([*fresh, *kept]), key=_rank)
    return head + "\n".join((fresh.get(t) or kept[t]).rstrip("\n") + "\n" for t in titles)


def main() -> int:
    path = HERE / "RESULTS.md"
    old = path.read_text() if path.exists() else ""
    Path(path).write_text(merge(old, render()))
    print(f"wrote {path} (sections without a fresh JSON in benchmarks/out/ kept as they were)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
