"""`sweep run` guards itself: every plugin indicator and service a config uses is checked on the run's data.

Before anything is computed or written, each plugin indicator computation
(``services.causality.find_leak``: one pass = one bar at a time = chunks of
every length around every power of two = random chunks) runs on every bar of
each symbol's own data (one bar at a time over all of them up to
``ONE_BAR_BARS``, else over windows that include the end), and each plugin
strategy or classifier is called at every bar of the first and the last
``GUARD_SERVICE_BARS`` bars through a bounds-checked copy (a sample of its
parameter sets).  Built-ins are checked by the test suite instead.  A leak
fixed when the module is imported (an array of future prices, say) passes
any streaming test: the plausibility alarm (``sweep.plausibility``) is the
net for it.  A leak or a crash stops the run with one
message (``LookaheadError``, exit 2) naming the plugin, the feature, the
config entries that use it, the first bar that differs and how far ahead it
reached.  ``--no-lookahead-check`` skips this; the manifest records which.
"""

from __future__ import annotations

import time

import numpy as np

from containers.feature_hub import FeatureHub
from services.causality import PropertyFailure
from services.compiled import python_of
from services.errors import PluginError, SweepError, format_path
from services.featurespec import parse_feature
from services.limits import GUARD_SERVICE_BARS, GUARD_SERVICE_SAMPLES

from .kit.streaming import bounds_checked, indicator_leak, kernel_for, service_bar_error


class LookaheadError(SweepError, ValueError):
    """A plugin that looks ahead (or crashes, or reads out of bounds) on the run's own data."""


def _bases(text: str) -> set[str]:
    """Canonical texts of every indicator computation a feature depends on."""
    out: set[str] = set()

    def walk(node):
        if node.is_column:
            return
        out.add(str(node.base))
        for i in node.inputs:
            walk(i)

    walk(parse_feature(text))
    return out


def _users(plan, node_text: str) -> list[str]:
    """Config entries (YAML paths and types) whose features need this computation."""
    users = []
    for spaces in (plan.strategies, plan.classifiers):
        for sp in spaces:
            rows = sp.feature_index
            used = {plan.features[int(k)] for k in np.unique(rows[rows >= 0])} if rows is not None else set()
            if any(node_text in _bases(f) for f in used):
                users.append(f"{format_path(sp.entry.path)} ({sp.entry.type})")
    return users


def _plugin_services(plan):
    return [sp for sp in (*plan.strategies, *plan.classifiers) if not sp.entry.spec.builtin]


def _fix(name: str, plugins) -> str:
    flag = f" --plugins {' '.join(plugins)}" if plugins else ""
    return (
        f"compute it from bars up to t only (carry the past in its state); test it with `sweep check {name}{flag}`; "
        "`--no-lookahead-check` runs anyway and the manifest records it"
    )


def check_run(plan, universes) -> dict:
    """Run the guard; return what was checked (for the manifest) or raise LookaheadError."""
    start = time.perf_counter()
    cfg = plan.config
    services = _plugin_services(plan)
    checked_ind: set[str] = set()
    report = {"status": "passed", "indicators": [], "services": [f"{s.entry.type}" for s in services]}
    for u in universes:
        plugins = {n[0] for n in FeatureHub(plan.features, u.bars_per_day).nodes() if not n[1].builtin}
        if not plugins and not services:
            break
        # only what the plugins need: features built on a plugin indicator, and the plugin services' features
        wanted = {f for f in plan.features if _bases(f) & plugins}
        wanted |= {f for sp in services for f in _service_features(plan, sp)}
        hub_all = FeatureHub(sorted(wanted), u.bars_per_day, kernel_of=kernel_for)
        plugin_nodes = [n for n in hub_all.nodes() if not n[1].builtin]
        m = u.n
        try:
            block = hub_all.compute_all(u.ohlcv(0, m))
        except PluginError as exc:  # bounds-checked: a plugin that reads past its bars, or raises, in one pass
            what = (
                "reads past the bars it was given (a look-ahead at the end of a chunk)"
                if "IndexError" in exc.problem
                else "fails"
            )
            raise LookaheadError(
                f"plugin indicator {exc.name} {what} on {u.symbol}'s {m:,} bars: {exc.problem}.\n"
                f"  Fix: {_fix(exc.name.rsplit('.', 1)[-1], cfg.plugins)}"
            ) from None
        for text, spec, params, in_rows, _ in plugin_nodes:
            checked_ind.add(text)
            leak = indicator_leak(spec, params, block[list(in_rows)])
            if leak is not None:
                when = f"{_time(u, leak.bar)}, {u.symbol}"
                users = _users(plan, text)
                used = f", used by {', '.join(users)}" if users else ""
                what = f"plugin indicator {spec.module}.{python_of(spec.kernel).__name__} (feature {text}{used})"
                raise LookaheadError(leak.describe(what, when) + f".\n  Fix: {_fix(spec.name, cfg.plugins)}")
        for sp in services:
            spec = sp.entry.spec
            call = bounds_checked(spec.func)
            rows = np.unique(np.linspace(0, sp.n - 1, min(sp.n, GUARD_SERVICE_SAMPLES)).astype(np.int64))
            ends = sorted({(0, min(m, GUARD_SERVICE_BARS)), (max(0, m - GUARD_SERVICE_BARS), m)})
            for r in rows:
                fi = sp.feature_index[r] if sp.feature_index is not None else np.zeros(0, np.int64)
                feats = block[[hub_all.row_of(plan.features[k]) for k in fi if k >= 0]]
                try:
                    for a, b in ends:
                        part = np.ascontiguousarray(feats[:, a:b])
                        service_bar_error(spec, call, part, np.ascontiguousarray(sp.codes[r]), f"{u.symbol}", a)
                except PropertyFailure as exc:
                    raise LookaheadError(
                        f"{format_path(sp.entry.path)}: {exc} with parameters {sp.values(int(r))}.\n"
                        f"  Fix: fix the function, then run `sweep check {spec.name}`"
                        + (f" --plugins {' '.join(cfg.plugins)}" if cfg.plugins else "")
                    ) from None
    report["indicators"] = sorted(checked_ind)
    report["bars"] = int(max((u.n for u in universes), default=0))
    report["symbols"] = len(universes)
    report["seconds"] = round(time.perf_counter() - start, 3)
    return report


def _service_features(plan, sp) -> list[str]:
    rows = sp.feature_index
    return [plan.features[int(k)] for k in np.unique(rows[rows >= 0])] if rows is not None and rows.size else []


def _time(u, bar: int) -> str:
    return str(u.timestamps[min(bar, u.n - 1)].astype("datetime64[ns]").astype("datetime64[s]")).replace("T", " ")
