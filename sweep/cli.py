"""The ``sweep`` command line.

    sweep run CONFIG [--results-dir D] [--resume] [--engine fast|reference] [--threads N]
                     [--backend threads|ray] [--address HOST:PORT]
                                          backtest every combination, write results
    sweep results DIR [--top N] [--sort METRIC] [--phase P]
                                          the best combinations of a run
    sweep expand CONFIG [--json]          what a sweep will be, without running it
    sweep services [--indicators] [--plugins M ...]
                                          registered services and their parameters
    sweep check [NAME ...] [--plugins M ...]
                                          property-test services and indicators; exit 1 on failure

Bad input prints one message (path, value, fix) to stderr and exits 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from services.errors import ConfigError, SweepError, Terminated


def _axes_text(axes) -> str:
    parts = []
    for a in axes:
        if a.is_grid:
            vals = list(a.values)
            shown = vals if len(vals) <= 6 else vals[:3] + ["..."] + vals[-2:]
            parts.append(f"{a.name} {shown} ({a.size})".replace("'...'", "..."))
    return " x ".join(parts) or "(defaults)"


def print_plan(plan, out=None) -> None:
    from .cli_format import format_bytes

    cfg = plan.config
    w = (out or sys.stdout).write
    wf = cfg.workflow
    base = f" (base: {wf.base_pattern})" if wf.type != wf.base_pattern else ""
    w(f"Sweep {cfg.name!r}: workflow {wf.type}{base}\n")
    if not cfg.data.is_sample:  # the sample is announced by a note below
        w(
            f"Data: {cfg.data.describe()}"
            + (f", {plan.n_bars:,} bars" if plan.n_bars and not cfg.data.synthetic else "")
            + "\n"
        )
    for note in plan.notes:
        w(f"Note: {note}\n")
    for warning in plan.warnings:
        w(f"Warning: {warning}\n")
    w("\n")
    settings = plan.settings_combinations
    line = (
        f"Combinations: {plan.combinations:,} = {plan.strategy_combinations:,} strategy"
        f" x {plan.classifier_combinations:,} classifier"
    )
    if settings > 1:
        line += f" x {settings:,} risk/portfolio/execution settings"
    w(line + "\n")
    for title, spaces in (
        ("strategies", plan.strategies),
        ("classifiers", plan.classifiers),
        ("risk validators", plan.risk),
    ):
        if not spaces:
            continue
        w(f"  {title}:\n")
        for s in spaces:
            extra = ""
            if s.entry.constraints:
                extra += "  where " + " and ".join(c.text for c in s.entry.constraints)
            if s.entry.active_regimes:
                extra += f"  active in {', '.join(s.entry.active_regimes)}"
            w(f"    {s.entry.type:<18} {s.n:>9,}  {_axes_text(s.axes)}{extra}\n")
    if not plan.classifiers:
        w("  classifiers: none (one implicit regime)\n")
    for s in (plan.portfolio, plan.execution):
        if s.n > 1:
            w(f"    {s.role:<18} {s.n:>9,}  {_axes_text(s.axes)}\n")
    if plan.classifiers:
        names = {"strategy": "strategies", "classifier": "classifiers"}
        inner = "strategy" if plan.outer == "classifier" else "classifier"
        w(f"  topology: outer loop over {names[plan.outer]} ({plan.sizes[0]:,}),")
        w(f" inner over {names[inner]} ({plan.sizes[1]:,})\n")
    w(f"\nUnique features: {len(plan.features):,} (computed once each; {plan.naive_feature_count:,} without sharing)\n")
    shown = plan.features[:12]
    for f in shown:
        w(f"  {f}\n")
    if len(plan.features) > len(shown):
        w(f"  ... and {len(plan.features) - len(shown):,} more\n")
    w("\nContainers:            naive   stateless\n")
    roles = list(dict.fromkeys([*plan.naive.containers, *plan.stateless.containers]))
    for role in roles:
        w(f"  {role:<16} {plan.naive.containers.get(role, 0):>10,}  {plan.stateless.containers.get(role, 0):>10,}\n")
    w(f"  {'total':<16} {plan.naive.total:>10,}  {plan.stateless.total:>10,}   ({plan.reduction() * 100:.0f}% fewer)\n")
    svc = plan.services()
    if svc:
        w("Services (stateless configurations): " + ", ".join(f"{v:,} {k}" for k, v in svc.items()) + "\n")
    mem = plan.memory_estimate()
    parts = ", ".join(f"{k.replace('_', ' ')} {format_bytes(v)}" for k, v in mem.items() if k != "total" and v)
    w(f"\nMemory estimate: {format_bytes(mem['total'])} ({parts})\n")


def cmd_expand(args) -> int:
    from .expander import expand

    plan = expand(args.config, max_combinations=args.max_combinations, count_data=not args.json)
    if args.json:
        json.dump(plan.to_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_plan(plan)
    return 0


def cmd_services(args) -> int:
    from services.registry import registry

    from .builtins import load as load_builtins
    from .config import load_plugins

    load_builtins()
    load_plugins(args.plugins or (), path=("--plugins",))
    roles = ["strategy", "classifier", "risk"] + (["indicator"] if args.indicators else [])
    titles = {
        "strategy": "Strategies",
        "classifier": "Classifiers",
        "risk": "Risk validators",
        "indicator": "Indicators",
    }
    for role in roles:
        print(f"{titles[role]}:")
        for name, spec in sorted(registry(role).items()):
            origin = "" if spec.builtin else f"  [{spec.module}]"
            first = (spec.doc.splitlines() or [""])[0]
            print(f"  {name}{origin}: {first}")
            if role == "classifier":
                print(f"      regimes: {', '.join(spec.regimes)}")
            if role == "indicator":
                print(f"      inputs: {', '.join(spec.inputs)}; outputs: {', '.join(spec.outputs)}")
            for p in spec.params:
                bounds = p.expected
                print(f"      {p.name:<18} default {p.default!r:<10} {bounds}" + (f"  - {p.doc}" if p.doc else ""))
        print()
    return 0


def cmd_check(args) -> int:
    import time

    from services.registry import ROLES, registry

    from .builtins import load as load_builtins
    from .config import load_plugins
    from .kit.properties import CHECKS, check, find

    load_builtins()
    load_plugins(args.plugins or (), path=("--plugins",))
    if args.names:
        targets = []
        for name in args.names:
            try:
                targets.append(find(name))
            except (LookupError, KeyError) as exc:
                raise ConfigError(
                    ("check",), str(exc).strip("'\""), value=name, fix="see `sweep services --indicators` for names"
                ) from None
    else:
        targets = [spec for role in ROLES for _, spec in sorted(registry(role).items())]
    header = f"{'name':<22} {'kind':<11}" + "".join(f" {c[:12]:>12}" for c in CHECKS)
    print(header)
    print("-" * len(header))
    failed = []
    start = time.perf_counter()
    for spec in targets:
        res = check(spec, examples=args.examples, seed=args.seed)
        row = f"{res.name:<22} {res.kind:<11}" + "".join(f" {res.results[c]:>12}" for c in CHECKS)
        print(row, flush=True)
        if not res.ok:
            failed.append(res)
    print(f"\n{len(targets) - len(failed)} of {len(targets)} passed in {time.perf_counter() - start:.1f}s")
    for res in failed:
        print(f"\nFAIL {res.kind} {res.name!r}:")
        for f in res.failures:
            print(f"  {f}")
    return 1 if failed else 0


def cmd_run(args) -> int:
    import time

    from .runner import run

    start = time.perf_counter()
    res = run(
        args.config,
        results_dir=args.results_dir,
        resume=args.resume,
        force=args.force,
        engine=args.engine,
        threads=args.threads,
        progress=not args.quiet,
        max_combinations=args.max_combinations,
        notices=True,
        lookahead_check=not args.no_lookahead_check,
        replay=args.replay,
        replay_only=args.replay_only,
        backend=args.backend,
        address=args.address,
    )
    took = time.perf_counter() - start
    if args.profile:
        from . import stages

        sys.stderr.write(f"where the time went (sweep run --profile):\n{stages.report(took)}\n")
    print_phases(res, args.top)
    stats = getattr(res, "run_stats", {})
    work = sum(v.get("seconds", 0) for v in stats.values())
    print(f"\nfinished in {took:.1f}s" + (f" ({work:.1f}s in phases)" if work else ""))
    print(f"results: {res.path}" if res.path else "results kept in memory (results_storage: memory)")
    if args.report:
        if res.path is None:
            raise ConfigError(("--report",), "a report needs results on disk", fix="use results_storage: disk")
        from .report import write_report
        from .runner import open_results

        print(f"report: {write_report(open_results(res.path))}")
    return 0


def print_luck(res, phase: str) -> None:
    """The luck sentence(s) and out-of-sample row of a phase, as the run summary shows them."""
    summary = res.summary(phase)
    blocks = summary.get("overfitting", [])
    for b in blocks:
        where = [
            f"window {b['window']}" if len(blocks) > 1 and "window" in b else "",
            b["symbol"] if len({x["symbol"] for x in blocks}) > 1 else "",
        ]
        where = ", ".join(w for w in where if w)
        print(f"{where + ': ' if where else ''}{b['sentence']}")
    rank = summary.get("ranking") or {}
    if rank.get("excluded"):
        print(f"({rank['note']}.)")
    for sym, tail in (summary.get("untested_bars") or {}).items():
        if tail:
            print(f"({sym}: the last {tail:,} bars were never tested - too few for another train + test window.)")
    for row in summary.get("out_of_sample", []):
        sharpe = "n/a" if row.get("sharpe") is None else f"{row['sharpe']:.3g}"
        print(
            f"Out of sample ({row['symbol']}, {row['windows']} window(s), {row['bars']:,} bars; {row['note']}): "
            f"return {row['total_return']:.2%}, Sharpe {sharpe}, max drawdown {row['max_drawdown']:.2%}"
        )


def print_alarms(res, phase: str) -> None:
    """The plausibility alarm of a phase's winners (``sweep.plausibility``), when one went off."""
    for b in res.summary(phase).get("plausibility", []):
        if b.get("alarm"):
            print(f"WARNING ({b['symbol']}, window {b['window']}): {b['message']}.")


def print_scored(m, summary: dict, most: int = 3) -> None:
    """The bars a phase's rows were scored on: first (time and bar) to last, per symbol and window."""
    if not m.height or "first_bar" not in m.columns:
        return
    keys = [c for c in ("symbol", "window") if c in m.columns]
    spans = m.select(*keys, "first_bar", "first_time", "bars_scored").unique(maintain_order=True)
    ends = {(w["symbol"], w["stop_bar"] - 1): w["last"][:16] for w in summary.get("windows", [])}
    for row in spans.head(most).iter_rows(named=True):
        last = row["first_bar"] + row["bars_scored"] - 1
        where = [f"window {row['window']}" if "window" in row else "", row["symbol"] if spans.height > 1 else ""]
        where = ", ".join(w for w in where if w)
        when = ends.get((row.get("symbol"), last))
        print(
            f"{where + ': s' if where else 'S'}cored from {row['first_time']:%Y-%m-%d %H:%M} (bar {row['first_bar']:,})"
            f" to {when + ' ' if when else ''}(bar {last:,}), {row['bars_scored']:,} bars"
        )
    if spans.height > most:
        print(f"(and {spans.height - most} more windows or symbols: first_bar and bars_scored in metrics.parquet)")


def print_phases(res, top: int) -> None:
    """Every phase's table of the best combinations, with its luck statistics."""
    from .cli_format import format_resample, format_table, varying
    from .cli_store import print_signals

    metric = res.objective[0]
    for k, name in enumerate(res.phases):
        print_signals(res.summary(name))
        m = res.table("metrics", name)
        if not m.height:
            continue
        if metric in m.columns:
            head = (
                f"Top {min(top, m.height)} of {m.height:,} by {metric} (phase {name}):" if k == 0 else f"Phase {name}:"
            )
            print(("\n" if k else "") + head)
            print(format_table(res.best(top, phase=name), metric, varying(m)))
            print_scored(m, res.summary(name))
        elif "samples" in m.columns:
            first = m.row(0, named=True)
            where = "the held-out bars" if first.get("resampled_on") == "holdout" else "the same bars (in sample)"
            print(
                f"\nPhase {name}: bootstrap of the top {m.height} of {first.get('selected_in')} - selected in sample, "
                f"resampled on {where}; deflated Sharpe from all combinations tried:"
            )
            print(format_resample(m))
        print_luck(res, name)
        print_alarms(res, name)


def cmd_results(args) -> int:
    from .cli_format import format_table, varying
    from .runner import open_results

    res = open_results(args.dir)
    status = res.manifest.get("status")
    if status != "complete":
        root = res.path.parent.parent
        source = res.manifest.get("source") or "CONFIG"
        raise ConfigError(
            ("results",),
            f"the run in {res.path} is not complete (status {status!r})",
            value=str(args.dir),
            fix=f"finish it with `sweep run {source} --results-dir {root} --resume`",
        )
    phase = args.phase or res.main_phase
    if phase not in res.phases:
        raise ConfigError(
            ("--phase",), f"no phase {phase!r} in {res.path}", value=phase, fix=f"phases: {', '.join(res.phases)}"
        )
    metric = args.sort or res.objective[0]
    m = res.table("metrics", phase)
    if "samples" in m.columns and not args.sort:  # a Monte Carlo resample phase: quantiles, not a ranking
        from .cli_format import format_resample

        print(f"{res.path} - phase {phase}: bootstrap of combinations selected in {m['selected_in'][0]}")
        print(format_resample(m))
        return 0
    if metric not in m.columns:
        raise ConfigError(
            ("--sort",),
            "not a column of metrics.parquet",
            value=metric,
            fix="e.g. sharpe, total_return, max_drawdown, calmar, win_rate, trades",
        )
    print(f"{res.path} - phase {phase}, {m.height:,} rows, top {min(args.top, m.height)} by {metric}:")
    print(format_table(res.best(args.top, by=metric if args.sort else None, phase=phase), metric, varying(m)))
    print_luck(res, phase)
    print_alarms(res, phase)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sweep", description="Functional parameter-sweep backtesting engine.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("expand", help="show what a sweep will run, without running it")
    p.add_argument("config", help="YAML config")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.add_argument("--max-combinations", type=int, default=None, help="raise or lower the size guard")
    p.set_defaults(func=cmd_expand)

    p = sub.add_parser("run", help="backtest every combination and write a results folder")
    p.add_argument("config", help="YAML config")
    p.add_argument("--results-dir", default=None, help="where results go (default: results_dir in the config)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run of this config")
    p.add_argument("--force", action="store_true", help="recompute even if this exact run is already complete")
    p.add_argument("--engine", choices=("fast", "reference"), default=None, help="fast (default) or reference")
    p.add_argument("--threads", type=int, default=None, help="numba threads (default: all cores)")
    p.add_argument(
        "--backend",
        choices=("threads", "ray"),
        default=None,
        help="where shards run: threads in this process (default) or Ray tasks (same results)",
    )
    p.add_argument(
        "--address",
        default=None,
        metavar="HOST:PORT",
        help="the Ray cluster's head (implies --backend ray; default: backend.address, RAY_ADDRESS, else local)",
    )
    p.add_argument("--top", type=int, default=10, help="rows in the summary table")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--max-combinations", type=int, default=None, help="raise or lower the size guard")
    p.add_argument("--profile", action="store_true", help="print where the wall time went, by stage")
    p.add_argument(
        "--no-lookahead-check",
        action="store_true",
        help="skip checking plugins for look-ahead on the run's data (the manifest records it)",
    )
    p.add_argument(
        "--replay",
        metavar="SIGNALS_DIR",
        default=None,
        help="run on the signals stored in this signal store (missing ones are generated first)",
    )
    p.add_argument("--replay-only", action="store_true", help="with --replay: refuse signals that are not stored")
    p.add_argument("--report", action="store_true", help="also write the run's HTML report (report.html)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("results", help="show the best combinations of a results folder")
    p.add_argument("dir", help="a run folder, or a sweep folder (its newest run)")
    p.add_argument("--top", type=int, default=10)
    p.add_argument("--sort", default=None, help="metric to sort by (default: the objective)")
    p.add_argument("--phase", default=None, help="phase to show (default: the first)")
    p.set_defaults(func=cmd_results)

    p = sub.add_parser("services", help="list registered services and their parameters")
    p.add_argument("--indicators", action="store_true", help="also list indicators")
    p.add_argument("--plugins", nargs="*", metavar="MODULE_OR_FILE", help="load these plugins first")
    p.set_defaults(func=cmd_services)

    p = sub.add_parser("check", help="property-test services and indicators (purity, bounds, no look-ahead)")
    p.add_argument("names", nargs="*", help="services/indicators to check (default: all registered)")
    p.add_argument("--plugins", nargs="*", metavar="MODULE_OR_FILE", help="load these plugins first")
    p.add_argument("--examples", type=int, default=25, help="hypothesis examples per property (default 25)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: derandomized, reproducible)")
    p.set_defaults(func=cmd_check)

    from .cli_show import add_command
    from .cli_store import add_commands

    add_commands(sub)
    add_command(sub)
    return parser


def _terminate(signum, frame):
    raise Terminated("terminated (SIGTERM)")


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    import signal
    import threading

    main_thread = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGTERM, _terminate) if main_thread else None  # SIGTERM -> exit 143
    try:
        return int(args.func(args) or 0)
    except SweepError as err:
        sys.stderr.write(f"error: {err}\n")
        return err.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("interrupted: what was finished is kept; `sweep run CONFIG --resume` continues\n")
        return 130
    except Terminated:
        sys.stderr.write("terminated (SIGTERM): what was finished is kept; `sweep run CONFIG --resume` continues\n")
        return 143
    except BrokenPipeError:  # e.g. `sweep expand x.yaml | head`
        return 0
    except OSError as err:  # a file-system fault outside the results writer (named by the OS)
        where = f" {err.filename}" if getattr(err, "filename", None) else ""
        sys.stderr.write(f"error:{where}: {err.strerror or err}\n  Fix: check the path and its permissions\n")
        return 2
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, old)


def entry() -> None:
    """The `sweep` command: exit with main()'s code; an interrupted run leaves without interpreter clean-up.

    After Ctrl-C, CPython may kill itself with SIGINT on the way out (exit -2) when some library saw the
    KeyboardInterrupt first; the run is already marked interrupted and its files are complete, so leave
    with 130 (or 143) at once.
    """
    try:
        code = main()
    except KeyboardInterrupt:  # before main could catch it (arguments, imports)
        sys.stderr.write("interrupted\n")
        code = 130
    except Terminated:
        sys.stderr.write("terminated (SIGTERM)\n")
        code = 143
    sys.stdout.flush()
    sys.stderr.flush()
    if code in (130, 143):
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    entry()
