"""Peers on the same work: the MA-crossover grid (fast 5..50 step 5 x slow 20..200 step 20 = 100
combinations, long-only, all-in, market orders at the next bar's open), with 0 and 0.1% commission.

    python benchmarks/bench_peers.py            # synthetic 1e4, 1e5, 1e6 bars and SPY 1-minute
    python benchmarks/bench_peers.py --quick    # 1e4 and 1e5 bars only

Every library runs in its own process (clean peak memory), timed as the median
of several repetitions after a warm-up.  backtesting.py and backtrader are too
slow for the full grid on large data: they run a subset of combinations (and
of bars) and their rate is extrapolated, which the table says.  Final equity
and closed-trade counts are checked against vectorbt, whose fill model
(shares = cash / (open x (1 + fee)) at the next open) is the engine's.
Writes benchmarks/out/peers.json.
"""

from __future__ import annotations

import argparse
import importlib.util

import numpy as np
from common import INITIAL, machine, run_worker, table, write_json
from worker import PAIRS

FEES = (0.0, 0.001)


def plan_runs(size: int, lib: str) -> dict | None:
    """Combinations (and bars) each library runs at a data size; None = skip."""
    if lib in ("engine", "ceiling", "vectorbt"):
        return {"combos": None, "reps": 5 if lib != "vectorbt" else 3}
    if lib == "backtesting":
        return {"combos": None if size <= 20_000 else (10 if size <= 200_000 else 2), "reps": 1}
    if lib == "backtrader":
        return {"combos": 10 if size <= 20_000 else 2, "reps": 1, "max_bars": 200_000}
    return None


def _rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    ok = np.isfinite(a) & np.isfinite(b)
    return float(np.max(np.abs(a[ok] - b[ok]) / np.abs(b[ok]))) if ok.any() else float("nan")


KEPT = ("final_equity", "trades", "combos", "final_equity_engine_ma", "trades_engine_ma")


def agreement(entry: dict) -> dict:
    """Agreement of final equity and closed-trade counts, from one data size's per-combination results."""
    check = {"data": entry["data"], "bars": entry["bars"], "fee": entry["fee"]}
    vb = entry.get("vectorbt")

    def arr(lib, key):
        return np.asarray(entry[lib][key], dtype=float)

    for lib in ("engine", "ceiling"):
        if lib not in entry or not vb:
            continue
        ea, eb, ta, tb = (
            arr(lib, "final_equity"),
            arr("vectorbt", "final_equity"),
            arr(lib, "trades"),
            arr("vectorbt", "trades"),
        )
        check[f"{lib}_vs_vectorbt_equity_rel"] = _rel(ea, eb)
        check[f"{lib}_vs_vectorbt_trades_equal"] = bool((ta == tb).all())
        # commission can drain a fast pair to fractions of a cent; vectorbt stops filling there
        solvent = np.minimum(ea, eb) > 1.0
        check["below_one_dollar"] = int((~solvent).sum())
        check[f"{lib}_vs_vectorbt_solvent_rel"] = _rel(ea[solvent], eb[solvent])
        check[f"{lib}_vs_vectorbt_solvent_trades_equal"] = bool((ta[solvent] == tb[solvent]).all())
        if "final_equity_engine_ma" in vb:
            check[f"{lib}_vs_vectorbt_same_ma_rel"] = _rel(ea, arr("vectorbt", "final_equity_engine_ma"))
            check[f"{lib}_vs_vectorbt_same_ma_trades_equal"] = bool((ta == arr("vectorbt", "trades_engine_ma")).all())
    if "backtesting" in entry and "engine_int" in entry:
        # backtesting.py calls next() one bar after every indicator is valid: with slow = 200 its first
        # decision is at bar 200, the engine's at bar 199; every other pair starts at the same bar.
        k = int(entry["backtesting"].get("combos") or np.isfinite(arr("backtesting", "final_equity")).sum())
        bt, en = arr("backtesting", "final_equity")[:k], arr("engine_int", "final_equity")[:k]
        slow200 = np.array([PAIRS[i][1] == 200 for i in range(k)])
        # Once commission has eaten an account down to a few shares' worth, whole-share sizing hits the cash
        # limit; backtesting.py's strategy then re-issues buy() every bar while the signal holds, the engine
        # acts on signal changes only.  Compare the pairs that keep at least 10% of their capital.
        kept = np.minimum(bt, en) > 0.1 * INITIAL
        same = ~slow200 & kept
        check["backtesting_vs_engine_whole_shares_rel"] = _rel(bt[same], en[same])
        check["backtesting_pairs_compared"] = int(same.sum())
        check["backtesting_pairs_drained"] = int((~kept).sum())
        check["backtesting_slow200_max_rel"] = _rel(bt[slow200], en[slow200])
    if "backtrader" in entry and vb:
        k = int(entry["backtrader"].get("combos") or np.isfinite(arr("backtrader", "final_equity")).sum())
        check["backtrader_vs_vectorbt_rel"] = _rel(
            arr("backtrader", "final_equity")[:k], arr("vectorbt", "final_equity")[:k]
        )
    return check


def recheck() -> int:
    """Recompute the agreement table from the saved per-combination results (no new measurements)."""
    import json

    from common import OUT

    data = json.loads((OUT / "peers.json").read_text())
    fresh = [agreement(e) for e in data["results"]]
    data["agreement"] = [{**old, **new} for old, new in zip(data["agreement"], fresh)]
    print(f"wrote {write_json('peers', data)}")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1e4 and 1e5 bars only")
    ap.add_argument("--libs", nargs="*", default=["engine", "ceiling", "vectorbt", "backtesting", "backtrader"])
    ap.add_argument("--no-spy", action="store_true", help="skip the real SPY data")
    ap.add_argument("--recheck", action="store_true", help="recompute agreement from benchmarks/out/peers.json")
    args = ap.parse_args(argv)
    if args.recheck:
        return recheck()
    libs = [lib for lib in args.libs if lib in ("engine", "ceiling") or importlib.util.find_spec(lib)]
    missing = sorted(set(args.libs) - set(libs))
    datasets = [("synthetic", 10_000), ("synthetic", 100_000)] + ([] if args.quick else [("synthetic", 1_000_000)])
    if not args.no_spy:
        datasets.append(("spy1m", 0))
    rows, checks, per_combo = [], [], []
    for source, bars in datasets:
        for fee in FEES:
            res = {}
            for lib in libs:
                p = plan_runs(bars or 102_236, lib)
                task = {
                    "kind": lib,
                    "source": source,
                    "bars": bars,
                    "fee": fee,
                    "reps": p["reps"],
                    "combos": p["combos"],
                    "with_engine_ma": lib == "vectorbt",
                }
                if lib == "backtrader" and (bars or 102_236) > p["max_bars"]:
                    continue  # extrapolated below from the largest size it ran
                r = run_worker(task)
                if "error" in r:
                    print(f"{lib} on {source} {bars}: failed: {r['error'][-1]}")
                    continue
                res[lib] = r
            if "backtesting" in res:  # compare with the engine in whole shares, the backtesting.py model
                res["engine_int"] = run_worker(
                    {"kind": "engine", "source": source, "bars": bars, "fee": fee, "reps": 1, "integer": True}
                )
            n_bars = next(iter(res.values()))["bars"] if res else bars
            for lib, r in res.items():
                if lib == "engine_int":
                    continue
                rate = r["bars"] * r["combos"] / r["seconds"]
                rows.append(
                    {
                        "data": source if source != "synthetic" else f"synthetic {n_bars:,.0f}",
                        "bars": r["bars"],
                        "fee": fee,
                        "library": lib,
                        "combos run": r["combos"],
                        "seconds": r["seconds"],
                        "bar-combos/s": rate,
                        "full grid s": r["bars"] * 100 / rate,
                        "peak MiB": r["peak_mb"],
                        "work MiB": r["peak_mb"] - r["base_mb"],
                        "note": "extrapolated from a subset" if r["combos"] < 100 else "",
                    }
                )
            if "backtrader" not in res and "backtrader" in libs and rows:
                small = [x for x in rows if x["library"] == "backtrader" and x["fee"] == fee]
                if small:
                    rate = small[-1]["bar-combos/s"]
                    rows.append(
                        {
                            "data": rows[-1]["data"],
                            "bars": n_bars,
                            "fee": fee,
                            "library": "backtrader",
                            "combos run": 0,
                            "seconds": None,
                            "bar-combos/s": rate,
                            "full grid s": n_bars * 100 / rate,
                            "peak MiB": None,
                            "work MiB": None,
                            "note": f"extrapolated from {small[-1]['bars']:,} bars",
                        }
                    )
            entry = {
                "data": source,
                "bars": n_bars,
                "fee": fee,
                **{lib: {k: r[k] for k in KEPT if k in r} for lib, r in res.items()},
            }
            per_combo.append(entry)
            check = agreement(entry)
            checks.append(check)
            print(
                table(
                    [r for r in rows if r["fee"] == fee and r["bars"] == n_bars],
                    [
                        "data",
                        "fee",
                        "library",
                        "combos run",
                        "seconds",
                        "bar-combos/s",
                        "full grid s",
                        "peak MiB",
                        "note",
                    ],
                    title=f"\n{source} {n_bars:,} bars, commission {fee:.1%}",
                )
            )
            print("agreement:", {k: v for k, v in check.items() if k not in ("data", "bars", "fee")})
    ratios = []
    for r in rows:
        eng = next(
            (x for x in rows if x["library"] == "engine" and x["data"] == r["data"] and x["fee"] == r["fee"]), None
        )
        if eng and r["library"] != "engine":
            ratios.append(
                {
                    "data": r["data"],
                    "fee": r["fee"],
                    "library": r["library"],
                    "engine speed-up": eng["bar-combos/s"] / r["bar-combos/s"],
                    "memory ratio": (r["peak MiB"] / eng["peak MiB"]) if r["peak MiB"] else None,
                }
            )
    print(
        table(
            ratios,
            ["data", "fee", "library", "engine speed-up", "memory ratio"],
            title="\nEngine vs each (same run): >1 means the engine is faster / uses less memory",
        )
    )
    if missing:
        print(f"\nnot installed, skipped: {', '.join(missing)}  (pip install -e '.[bench]')")
    path = write_json(
        "peers",
        {
            "machine": machine(),
            "rows": rows,
            "agreement": checks,
            "ratios": ratios,
            "skipped": missing,
            "results": per_combo,
        },
    )
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
