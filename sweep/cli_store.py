"""`sweep signals DIR` (what a signal store holds) and `sweep trace DIR` (what a run traced)."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from .cli_format import format_bytes
from .signal_phase import DEFAULT_FOLDER
from .signal_store import MARKER, open_store


def _t(stamp: str) -> str:
    return str(stamp).replace("T", " ").split(".")[0]


def print_signals(summary: dict) -> None:
    """The run summary's line for a signal generation phase."""
    for s in summary.get("signals") or []:
        print(
            f"signals ({s['symbol']}): {s['pairs']:,} pair{'s' if s['pairs'] != 1 else ''} - {s['generated']:,} "
            f"generated, {s['reused']:,} reused "
            f"from the store; {s['changes']:,} changes stored in {s['store']} (context {s['context']}, "
            f"{format_bytes(s['size_bytes'])})"
        )


def store_summary(root: Path) -> dict:
    """What a store holds, per context: data, pairs, code versions, changes, size on disk, orphan parts."""
    store = open_store(root, create=False)
    out = {"store": str(root), "contexts": []}
    for ctx in store.contexts():
        ix = ctx.index()
        roles = {}
        for role in ("strategy", "classifier"):
            if role in ix.columns:
                counts = ix.group_by(role).len().sort(role)
                roles[role] = {r[role]: int(r["len"]) for r in counts.iter_rows(named=True) if r[role]}
        out["contexts"].append(
            {
                "context": ctx.key,
                **ctx.info,
                "pairs": int(ix.unique(["pair", "code_version"]).height) if ix.height else 0,
                "code_versions": sorted(set(ix["code_version"].to_list())) if ix.height else [],
                "changes": int(ix["changes"].sum()) if ix.height else 0,
                "parts": int(ix["part"].n_unique()) if ix.height else 0,
                "services": roles,
                "size_bytes": ctx.size_bytes(),
                "orphan_parts": [p.name for p in ctx.orphans()],
            }
        )
    out["size_bytes"] = sum(c["size_bytes"] for c in out["contexts"])
    return out


def _store_root(path: str) -> Path:
    p = Path(path)
    if not (p / MARKER).is_file() and (p / DEFAULT_FOLDER / MARKER).is_file():
        return p / DEFAULT_FOLDER  # a results folder: its default store
    return p


def cmd_signals(args) -> int:
    info = store_summary(_store_root(args.dir))
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    n = len(info["contexts"])
    pairs = sum(c["pairs"] for c in info["contexts"])
    plural = "s" if n != 1 else ""
    print(f"signal store {info['store']}: {n} context{plural}, {pairs:,} pairs, {format_bytes(info['size_bytes'])}")
    for c in info["contexts"]:
        print(
            f"\ncontext {c['context']}: {c['symbol']} ({c['source']}), {c['bars']:,} bars {_t(c['first'])} .. "
            f"{_t(c['last'])}, "
            f"{c['bars_per_day']:g} bars/day, data {c['fingerprint']}"
        )
        versions = ", ".join(c["code_versions"][:4]) + (" ..." if len(c["code_versions"]) > 4 else "")
        print(
            f"  {c['pairs']:,} pairs, {c['changes']:,} changes, {c['parts']} parts, {format_bytes(c['size_bytes'])}; "
            f"code versions: {len(c['code_versions'])} ({versions})"
        )
        for role, counts in c["services"].items():
            print(f"  {role}: " + ", ".join(f"{k} ({v:,})" for k, v in counts.items()))
        if c["orphan_parts"]:
            print(
                f"  {len(c['orphan_parts'])} orphan part(s) a killed run left (never read; safe to delete): "
                + ", ".join(c["orphan_parts"][:3])
            )
    return 0


def trace_summary(run_dir) -> dict:
    """What a run traced, per phase: events by type, trades per combination, signal changes."""
    from .results import open_results

    res = open_results(run_dir)
    out = {"run": str(res.path), "status": res.manifest.get("status"), "phases": []}
    for name in res.phases:
        d = res.path / name
        ph: dict = {"phase": name}
        ev = d / "events.parquet"
        if ev.is_file():
            counts = pl.scan_parquet(ev).group_by("event").len().collect().sort("event")
            ph["events"] = {r["event"]: int(r["len"]) for r in counts.iter_rows(named=True)}
        tr = d / "trades.parquet"
        if tr.is_file():
            t = pl.scan_parquet(tr)
            per = t.group_by("combo_id").len().collect()
            status = t.group_by("status").len().collect()
            ph["trades"] = {
                "total": int(per["len"].sum()),
                "by_status": {r["status"]: int(r["len"]) for r in status.iter_rows(named=True)},
                "combinations": per.height,
                "per_combination": {
                    "min": int(per["len"].min()),
                    "median": float(per["len"].median()),
                    "max": int(per["len"].max()),
                },
                "most": [
                    {"combo_id": int(r["combo_id"]), "trades": int(r["len"])}
                    for r in per.sort(["len", "combo_id"], descending=[True, False]).head(5).iter_rows(named=True)
                ],
            }
        sg = d / "signals.parquet"
        if sg.is_file():
            s = pl.read_parquet(sg)
            ph["signal_changes"] = {
                "pairs": s.height,
                "total": int(s["changes"].sum()),
                "per_pair": {
                    "min": int(s["changes"].min()),
                    "median": float(s["changes"].median()),
                    "max": int(s["changes"].max()),
                },
            }
        out["phases"].append(ph)
    return out


def cmd_trace(args) -> int:
    info = trace_summary(args.dir)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"run {info['run']} ({info['status']})")
    for ph in info["phases"]:
        print(f"\nphase {ph['phase']}:")
        if "events" in ph:
            total = sum(ph["events"].values())
            print(f"  events: {total:,} (" + ", ".join(f"{k} {v:,}" for k, v in ph["events"].items()) + ")")
        else:
            print("  events: none traced")
        if "trades" in ph:
            t = ph["trades"]
            st = ", ".join(f"{v:,} {k}" for k, v in sorted(t["by_status"].items()))
            pc = t["per_combination"]
            print(
                f"  trades: {t['total']:,} ({st}) over {t['combinations']:,} combinations; per combination "
                f"min {pc['min']:,}, median {pc['median']:,.0f}, max {pc['max']:,}"
            )
            print("  most trades: " + ", ".join(f"combo {m['combo_id']} ({m['trades']:,})" for m in t["most"]))
        if "signal_changes" in ph:
            s = ph["signal_changes"]
            pp = s["per_pair"]
            print(
                f"  signal changes: {s['total']:,} over {s['pairs']:,} pairs; per pair min {pp['min']:,}, "
                f"median {pp['median']:,.0f}, max {pp['max']:,}"
            )
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("signals", help="list what a signal store holds (data, pairs, code versions, size)")
    p.add_argument("dir", help="a signal store (signals_dir), or a results folder (its .signals store)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_signals)
    p = sub.add_parser("trace", help="summarise what a run traced: events by type, trades, signal changes")
    p.add_argument("dir", help="a run folder, or a sweep folder (its newest run)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_trace)
