"""Config sections other than services: workflow, objective and tracing keys."""

from __future__ import annotations

from typing import Any

import attrs

from containers.metrics import METRICS, OBJECTIVE_DEFAULT
from services.errors import ConfigError, check_keys, did_you_mean
from services.limits import MAX_PARTITIONS, MAX_REPS, MIN_REPS

from .stats.blocks import BlockSpec, BlockSpecError, parse_block

EVENT_TYPES = ("FILL", "POSITION_OPEN", "POSITION_CLOSE", "PORTFOLIO_UPDATE", "SIGNAL")
RETENTION = ("trade_complete", "sliding_window", "minimal")
STORAGE = ("disk", "memory")
TRACING_KEYS = ("results_storage", "event_tracing", "retention_policy", "sliding_window_size")


@attrs.frozen
class Tracing:
    results_storage: str
    event_tracing: tuple[str, ...]
    retention_policy: str
    sliding_window_size: int


@attrs.frozen
class WorkflowConfig:
    type: str
    base_pattern: str
    options: dict = attrs.field(factory=dict)


@attrs.frozen
class Objective:
    metric: str = OBJECTIVE_DEFAULT
    direction: str = attrs.field(default="max", validator=attrs.validators.in_(("max", "min")))


OVERFITTING_KEYS = ("enabled", "block", "partitions", "reps", "bootstrap_block", "seed")
DEFAULT_MIN_TRADES = 10


@attrs.frozen
class OverfittingConfig:
    """How a phase that ranks combinations measures luck (see sweep.overfitting)."""

    enabled: bool = True
    block: BlockSpec = BlockSpec()
    partitions: int = 16  # S of CSCV
    reps: int = 1000  # bootstrap replicates of the Reality Check / SPA
    bootstrap_block: float | None = None  # mean block length of the stationary bootstrap; None: sqrt(blocks)
    seed: int | None = None  # None: the config's seed


def _whole(raw, path, low, high, what, fix):
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < low or raw > high:
        raise ConfigError(path, f"expected {what}", value=raw, fix=fix)
    return raw


def _parse_overfitting(raw) -> OverfittingConfig:
    path = ("overfitting",)
    if raw is None or raw is True:
        return OverfittingConfig()
    if raw is False:
        return OverfittingConfig(enabled=False)
    if not isinstance(raw, dict):
        raise ConfigError(
            path, "expected a mapping (or false)", value=raw, fix="write overfitting: {block: 1d, partitions: 16}"
        )
    check_keys(raw, OVERFITTING_KEYS, path, where="in overfitting")
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ConfigError(path + ("enabled",), "expected true or false", value=enabled, fix="write enabled: false")
    try:
        block = parse_block(raw.get("block"))
    except BlockSpecError as exc:
        raise ConfigError(path + ("block",), str(exc), value=raw.get("block"), fix="e.g. block: 1d") from None
    s = raw.get("partitions", 16)
    _whole(s, path + ("partitions",), 2, MAX_PARTITIONS, f"an even whole number from 2 to {MAX_PARTITIONS}", "e.g. 16")
    if s % 2:
        raise ConfigError(
            path + ("partitions",),
            "CSCV splits the partitions in halves: expected an even number",
            value=s,
            fix=f"use {s - 1} or {s + 1}",
        )
    reps = raw.get("reps", 1000)
    _whole(
        reps,
        path + ("reps",),
        MIN_REPS,
        MAX_REPS,
        f"a whole number of bootstrap replicates from {MIN_REPS} to {MAX_REPS:,}",
        f"use at least {MIN_REPS} (1000 is the default; fewer make the p-values too coarse to read)",
    )
    bb = raw.get("bootstrap_block")
    if bb is not None and (isinstance(bb, bool) or not isinstance(bb, (int, float)) or not bb >= 1):
        raise ConfigError(
            path + ("bootstrap_block",),
            "expected a mean block length >= 1 (in blocks)",
            value=bb,
            fix="e.g. bootstrap_block: 5, or leave it out for sqrt(number of blocks)",
        )
    seed = raw.get("seed")
    if seed is not None:
        _whole(seed, path + ("seed",), 0, 2**63 - 1, "a whole number >= 0", "e.g. seed: 1")
    return OverfittingConfig(True, block, s, reps, None if bb is None else float(bb), seed)


def _parse_min_trades(raw) -> int:
    if raw is None:
        return DEFAULT_MIN_TRADES
    return _whole(
        raw,
        ("min_trades",),
        0,
        10**9,
        "a whole number >= 0",
        f"e.g. min_trades: {DEFAULT_MIN_TRADES} (0 ranks every combination whatever its trade count)",
    )


def _parse_choice(raw, path, options, default):
    if raw is None:
        return default
    if raw not in options:
        raise ConfigError(
            path,
            f"expected one of {', '.join(options)}{did_you_mean(str(raw), options)}",
            value=raw,
            fix=f"use one of: {', '.join(options)}",
        )
    return raw


def _parse_tracing(raw: dict, defaults: dict, path=()) -> Tracing:
    storage = _parse_choice(
        raw.get("results_storage"), path + ("results_storage",), STORAGE, defaults.get("results_storage", "disk")
    )
    ev = raw.get("event_tracing", defaults.get("event_tracing", []))
    epath = path + ("event_tracing",)
    if ev is True:
        ev = list(EVENT_TYPES)
    elif ev is False or ev is None:
        ev = []
    elif isinstance(ev, str):
        ev = [ev]
    if not isinstance(ev, list):
        raise ConfigError(
            epath,
            "expected a list of event types, true or false",
            value=ev,
            fix=f"event types: {', '.join(EVENT_TYPES)}",
        )
    events = []
    for i, e in enumerate(ev):
        name = str(e).upper()
        if name not in EVENT_TYPES:
            raise ConfigError(
                epath + (i,),
                f"unknown event type{did_you_mean(name, EVENT_TYPES)}",
                value=e,
                fix=f"use some of: {', '.join(EVENT_TYPES)}",
            )
        events.append(name)
    retention = _parse_choice(
        raw.get("retention_policy"),
        path + ("retention_policy",),
        RETENTION,
        defaults.get("retention_policy", "trade_complete"),
    )
    size = raw.get("sliding_window_size", defaults.get("sliding_window_size", 1000))
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ConfigError(path + ("sliding_window_size",), "expected a whole number >= 1", value=size, fix="e.g. 1000")
    return Tracing(storage, tuple(dict.fromkeys(events)), retention, size)


def _parse_workflow(raw: Any, patterns: dict) -> tuple[WorkflowConfig, Any, Any]:
    """Return (WorkflowConfig, workflow pattern or None, mode pattern)."""
    path = ("workflow",)
    names = sorted(n for n in patterns)
    if raw is None:
        raw = {"type": "backtest"}
    if isinstance(raw, str):
        raw = {"type": raw}
    if not isinstance(raw, dict):
        raise ConfigError(
            path, "expected a workflow name or a mapping with `type:`", value=raw, fix="write workflow: backtest"
        )
    wtype = raw.get("type")
    if wtype not in patterns:
        raise ConfigError(
            path + ("type",),
            f"unknown workflow{did_you_mean(str(wtype), names)}",
            value=wtype,
            fix=f"use one of: {', '.join(names)}",
        )
    pattern = patterns[wtype]
    if pattern.kind == "mode":
        mode, wf = pattern, None
        allowed = ("type",)
    else:
        wf = pattern
        base = raw.get("base_pattern", pattern.base_pattern or "backtest")
        modes = sorted(n for n, p in patterns.items() if p.kind == "mode")
        if base not in patterns or patterns[base].kind != "mode":
            raise ConfigError(
                path + ("base_pattern",),
                f"unknown base pattern{did_you_mean(str(base), modes)}",
                value=base,
                fix=f"use one of: {', '.join(modes)}",
            )
        mode = patterns[base]
        allowed = ("type", "base_pattern", *pattern.options)
    check_keys(raw, allowed, path, where=f"for workflow {wtype!r}")
    options = {}
    if wf is not None:
        for oname, o in wf.options.items():
            value = raw.get(oname, o.get("default"))
            opath = path + (oname,)
            kind = o["kind"]
            if kind == "bool":
                ok = isinstance(value, bool)
            elif kind == "choice":
                ok = value in o.get("choices", ())
            elif kind == "int":
                ok = isinstance(value, int) and not isinstance(value, bool)
            else:
                ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            if ok and kind in ("int", "float"):
                ok = ("low" not in o or value >= o["low"]) and ("high" not in o or value <= o["high"])
            if not ok:
                bounds = "".join(f" {k} {o[k]}" for k in ("low", "high") if k in o)
                raise ConfigError(
                    opath,
                    f"expected {kind}{bounds}" + (f" ({o['doc']})" if o.get("doc") else ""),
                    value=value,
                    fix=f"default is {o.get('default')!r}",
                )
            options[oname] = value
    if pattern.name == "walk_forward" and 0 < options["step"] < options["test"]:
        raise ConfigError(
            path + ("step",),
            f"step {options['step']} is shorter than the test window ({options['test']} bars): test windows would "
            "overlap and the stitched out-of-sample equity would count the same bars more than once",
            value=options["step"],
            fix=f"use step >= test (step: {options['test']}, or leave step out), or a shorter test window",
        )
    return WorkflowConfig(pattern.name, mode.name, options), wf, mode


def _parse_objective(raw: Any) -> Objective:
    path = ("objective",)
    if raw is None:
        return Objective()
    if isinstance(raw, str):
        raw = {"metric": raw}
    if not isinstance(raw, dict):
        raise ConfigError(
            path, "expected a metric name or {metric, direction}", value=raw, fix="write objective: sharpe"
        )
    check_keys(raw, ("metric", "direction"), path)
    metric = raw.get("metric", OBJECTIVE_DEFAULT)
    aliases = {
        "sharpe_ratio": "sharpe",
        "sortino_ratio": "sortino",
        "return": "total_return",
        "drawdown": "max_drawdown",
    }
    metric = aliases.get(metric, metric)
    if metric not in METRICS:
        raise ConfigError(
            path + ("metric",),
            f"unknown metric{did_you_mean(str(metric), METRICS)}",
            value=raw.get("metric"),
            fix=f"use one of: {', '.join(METRICS)}",
        )
    direction = _parse_choice(raw.get("direction"), path + ("direction",), ("max", "min"), METRICS[metric][0])
    return Objective(metric, direction)


def _parse_overrides(raw: Any, phases: list[str], base: dict) -> dict:
    path = ("phase_overrides",)
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(
            path,
            "expected a mapping phase -> settings",
            value=raw,
            fix="write phase_overrides: {test: {event_tracing: true}}",
        )
    out = {}
    for phase, over in raw.items():
        if phase not in phases:
            raise ConfigError(
                path + (phase,),
                f"unknown phase{did_you_mean(phase, phases)}",
                value=phase,
                fix=f"this workflow's phases: {', '.join(phases)}",
            )
        if not isinstance(over, dict):
            raise ConfigError(path + (phase,), "expected a mapping of settings", value=over)
        check_keys(over, TRACING_KEYS, path + (phase,), where="in a phase override")
        out[phase] = _parse_tracing({**base, **over}, {}, path + (phase,))
    return out
