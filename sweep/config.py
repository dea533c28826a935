"""Sweep configuration: YAML -> validated, frozen ``SweepConfig``.

A researcher writes parameter values as scalars, lists or ranges; lists and
ranges are detected as grids (see ``sweep.grid``).  Every mistake raises one
``ConfigError`` naming the YAML path and line, the value and the fix.

Example:
    >>> cfg = load_config({"strategies": [{"type": "ma_crossover",
    ...     "parameters": {"fast": [5, 10], "slow": {"start": 20, "stop": 40, "step": 10}}}]})
    >>> [a.values for a in cfg.strategies[0].axes]
    [(5, 10), (20, 30, 40), ('sma',)]
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any

import attrs

from containers.settings import EXECUTION_PARAMS, PORTFOLIO_PARAMS, SHORTHANDS
from patterns import PatternError, load_patterns
from services.errors import ConfigError, PluginError, check_keys, did_you_mean
from services.limits import DEFAULT_MAX_COMBINATIONS, MAX_NAME_CHARS
from services.params import Param
from services.registry import ServiceSpec, load_plugin, resolve

from .builtins import load as load_builtins
from .config_backend import BackendConfig, parse_backend
from .config_data import DataConfig, parse_data, parse_score_from
from .config_sections import (
    TRACING_KEYS,
    Objective,
    OverfittingConfig,
    Tracing,
    WorkflowConfig,
    _parse_choice,
    _parse_min_trades,
    _parse_objective,
    _parse_overfitting,
    _parse_overrides,
    _parse_tracing,
    _parse_workflow,
)
from .constraints import Constraint, ConstraintSyntaxError
from .grid import Axis, parse_axis
from .kit.verify import verify_service
from .yamlio import LineMap, load_yaml

TOP_KEYS = (
    "name",
    "description",
    "data",
    "plugins",
    "patterns",
    "strategies",
    "classifiers",
    "risk",
    "portfolio",
    "execution",
    "workflow",
    "objective",
    "backend",
    "results_dir",
    "results_storage",
    "event_tracing",
    "retention_policy",
    "sliding_window_size",
    "phase_overrides",
    "max_combinations",
    "engine",
    "threads",
    "chunk_size",
    "top_k",
    "keep",
    "seed",
    "overfitting",
    "min_trades",
    "signals_dir",
    "score_from",
)
ENTRY_KEYS = {
    "strategy": ("type", "name", "parameters", "constraints", "active_regimes"),
    "classifier": ("type", "name", "parameters", "constraints"),
    "risk": ("type", "name", "parameters", "constraints"),
}
SECTION = {"strategy": "strategies", "classifier": "classifiers", "risk": "risk"}
NAME_CHARS = MAX_NAME_CHARS
NAME = re.compile(rf"^[A-Za-z0-9_-][A-Za-z0-9._-]{{0,{NAME_CHARS - 1}}}$")


@attrs.frozen
class ServiceEntry:
    """One entry of ``strategies``/``classifiers``/``risk``: a service type and its axes."""

    role: str
    index: int
    type: str
    spec: ServiceSpec = attrs.field(eq=False, repr=False)
    axes: tuple[Axis, ...]
    constraints: tuple[Constraint, ...] = ()
    active_regimes: tuple[str, ...] | None = None
    label: str = ""

    @property
    def path(self) -> tuple:
        return (SECTION[self.role], self.index)

    @property
    def raw_size(self) -> int:
        return math.prod(a.size for a in self.axes)


@attrs.frozen
class SettingsGrid:
    """Portfolio or execution settings, each a one-value axis or a grid."""

    role: str
    axes: tuple[Axis, ...]

    @property
    def size(self) -> int:
        return math.prod(a.size for a in self.axes)

    def value(self, name: str):
        for a in self.axes:
            if a.name == name:
                return a.values[0] if a.size == 1 else list(a.values)
        raise KeyError(name)


@attrs.frozen
class SweepConfig:
    """A validated sweep. Build it with :func:`load_config`."""

    name: str
    data: DataConfig
    strategies: tuple[ServiceEntry, ...]
    classifiers: tuple[ServiceEntry, ...]
    risk: tuple[ServiceEntry, ...]
    portfolio: SettingsGrid
    execution: SettingsGrid
    workflow: WorkflowConfig
    objective: Objective
    tracing: Tracing
    phase_overrides: dict = attrs.field(factory=dict)
    plugins: tuple[str, ...] = ()
    results_dir: str = "results"
    signals_dir: str | None = None  # the signal store (default: <results_dir>/.signals)
    max_combinations: int = attrs.field(default=DEFAULT_MAX_COMBINATIONS, validator=attrs.validators.ge(1))
    engine: str = attrs.field(default="fast", validator=attrs.validators.in_(("fast", "reference")))
    threads: int | None = None
    chunk_size: int = attrs.field(default=65_536, validator=attrs.validators.ge(16))
    top_k: int = attrs.field(default=10, validator=attrs.validators.ge(0))
    keep: tuple[str, ...] = ()
    seed: int = 0
    overfitting: OverfittingConfig = OverfittingConfig()
    backend: BackendConfig = BackendConfig()  # where shards run: not part of the config hash (same results)
    min_trades: int = 10
    score_from: str | int | None = None  # first bar every combination is scored on: a timestamp or a bar number
    source: str | None = None
    base_dir: str = "."
    pattern_dirs: tuple[str, ...] = ()
    normalized: dict = attrs.field(factory=dict, eq=False, repr=False)
    lines: LineMap | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def config_hash(self) -> str:
        """Stable hash of the normalised config (independent of YAML key order)."""
        text = json.dumps(self.normalized, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


# ------------------------------------------------------------------ helpers


def _expect_list(raw, path, what: str) -> list:
    if raw is None:
        return []
    if isinstance(raw, dict) and "type" in raw:
        raise ConfigError(
            path, f"expected a list of {what}", value=raw, fix=f"put a dash before the entry: `- type: {raw['type']}`"
        )
    if not isinstance(raw, list):
        raise ConfigError(path, f"expected a list of {what}", value=raw, fix=f"write {path[-1]}: [ - type: ... ]")
    return raw


def _param_kinds(params) -> dict:
    return {p.name: (("choice", p.choices) if p.kind == "choice" else p.kind) for p in params}


def _parse_constraints(raw, params, path) -> tuple[Constraint, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list):
        raise ConfigError(path, "expected a list of conditions", value=raw, fix='write constraints: ["fast < slow"]')
    kinds = _param_kinds(params)
    out = []
    for i, text in enumerate(raw):
        try:
            out.append(Constraint.parse(text, kinds))
        except ConstraintSyntaxError as exc:
            raise ConfigError(
                path + (i,), str(exc), fix="write a condition over this entry's parameters, e.g. fast < slow"
            ) from None
    return tuple(out)


def _resolve_spec(role: str, type_name: Any, path, base_dir: Path) -> ServiceSpec:
    if not isinstance(type_name, str) or not type_name.strip():
        raise ConfigError(
            path, f"expected the name of a registered {role}", value=type_name, fix="see `sweep services` for the list"
        )
    try:
        spec = resolve(role, type_name.strip(), base_dir)
        verify_service(spec)
        return spec
    except LookupError as exc:
        raise ConfigError(
            path, str(exc).strip("'\""), fix="use a listed name, or `package.module:function` for your own"
        ) from None
    except PluginError as exc:
        raise ConfigError(
            path,
            f"{exc.name}: {exc.problem}",
            value=type_name,
            fix=exc.fix or f"fix the function, then run `sweep check {type_name}`",
        ) from None
    except (ImportError, FileNotFoundError) as exc:
        raise ConfigError(
            path,
            f"cannot import {type_name.partition(':')[0]!r}: {exc}",
            value=type_name,
            fix="check the module name and that its folder is the config's folder or the current directory",
        ) from None
    except Exception as exc:  # a user module that raises while importing
        raise ConfigError(
            path,
            f"importing {type_name!r} raised {type(exc).__name__}: {exc}",
            value=type_name,
            fix="fix the error in that module",
        ) from None


def _parse_entry(role: str, index: int, raw: Any, base_dir: Path, max_values: int) -> ServiceEntry:
    path = (SECTION[role], index)
    if isinstance(raw, str):
        raw = {"type": raw}
    if not isinstance(raw, dict):
        raise ConfigError(
            path, "expected a mapping with `type:` and `parameters:`", value=raw, fix="write - type: momentum"
        )
    check_keys(raw, ENTRY_KEYS[role], path, where=f"in a {role} entry")
    if "type" not in raw:
        raise ConfigError(path, "missing `type:`", fix=f"name a registered {role} (see `sweep services`)")
    spec = _resolve_spec(role, raw["type"], path + ("type",), base_dir)
    params_raw = raw.get("parameters") or {}
    if not isinstance(params_raw, dict):
        raise ConfigError(
            path + ("parameters",),
            "expected a mapping of parameter -> value, list or range",
            value=params_raw,
            fix="write parameters: {fast: [5, 10]}",
        )
    known = spec.param_names
    for key in params_raw:
        if key not in known:
            raise ConfigError(
                path + ("parameters", key),
                f"{spec.title} has no parameter {key!r}{did_you_mean(key, known)}",
                fix=f"its parameters are: {', '.join(known) or 'none'}",
            )
    axes = []
    for p in spec.params:
        if p.name in params_raw:
            axes.append(parse_axis(p, params_raw[p.name], path + ("parameters", p.name), max_values=max_values))
        else:
            axes.append(Axis(p.name, p, (p.default,), path + ("parameters", p.name)))
    constraints = _parse_constraints(raw.get("constraints"), spec.params, path + ("constraints",))
    active = None
    if "active_regimes" in raw:
        ar = raw["active_regimes"]
        if isinstance(ar, str):
            ar = [ar]
        if not isinstance(ar, list) or not ar or not all(isinstance(x, str) for x in ar):
            raise ConfigError(
                path + ("active_regimes",),
                "expected a list of regime names",
                value=ar,
                fix="write active_regimes: [bull] (names from the classifier, see `sweep services`)",
            )
        active = tuple(dict.fromkeys(ar))
    label = raw.get("name", spec.name)
    if not isinstance(label, str):
        raise ConfigError(path + ("name",), "expected a text label", value=label)
    return ServiceEntry(role, index, spec.name, spec, tuple(axes), constraints, active, label)


def _parse_settings(role: str, raw: Any, declared: tuple[Param, ...], max_values: int) -> SettingsGrid:
    path = (role,)
    raw = raw or {}
    if not isinstance(raw, dict):
        raise ConfigError(path, "expected a mapping", value=raw, fix=f"write {role}: {{{declared[0].name}: ...}}")
    flat: dict[str, tuple[Any, tuple]] = {}
    groups = {p.name.split(".")[0] for p in declared if "." in p.name}
    names = [p.name for p in declared]
    top_names = sorted({n.split(".")[0] for n in names})
    for key, value in raw.items():
        if key in groups and isinstance(value, dict):
            subs = [n.split(".", 1)[1] for n in names if n.startswith(key + ".")]
            for sub, v in value.items():
                if sub not in subs:
                    raise ConfigError(
                        path + (key, sub),
                        f"unknown key {sub!r}{did_you_mean(sub, subs)}",
                        fix=f"{key} takes: {', '.join(subs)}",
                    )
                flat[f"{key}.{sub}"] = (v, path + (key, sub))
        elif key in SHORTHANDS and role == "execution":
            flat[SHORTHANDS[key]] = (value, path + (key,))
        elif key in names:
            flat[key] = (value, path + (key,))
        else:
            raise ConfigError(
                path + (key,),
                f"unknown key {key!r}{did_you_mean(key, top_names)}",
                fix=f"{role} takes: {', '.join(top_names)}",
            )
    axes = []
    for p in declared:
        if p.name in flat:
            value, vpath = flat[p.name]
            axes.append(parse_axis(p, value, vpath, max_values=max_values))
        else:
            axes.append(Axis(p.name, p, (p.default,), path + tuple(p.name.split("."))))
    return SettingsGrid(role, tuple(axes))


def _scalar(raw, path, kind, default, low=None):
    if raw is None:
        return default
    ok = isinstance(raw, int) and not isinstance(raw, bool) if kind == "int" else isinstance(raw, str) and raw.strip()
    if not ok or (low is not None and raw < low):
        want = f"a whole number >= {low}" if kind == "int" else "a non-empty text"
        raise ConfigError(path, f"expected {want}", value=raw, fix=f"use {want}")
    return raw


def _normalize(cfg: SweepConfig) -> dict:
    def entry(e: ServiceEntry) -> dict:
        d = {"type": e.type, "parameters": {a.name: list(a.values) for a in e.axes}}
        if e.constraints:
            d["constraints"] = sorted(c.text for c in e.constraints)
        if e.active_regimes:
            d["active_regimes"] = sorted(e.active_regimes)
        return d

    data = attrs.asdict(cfg.data)
    return {
        "name": cfg.name,
        "data": data,
        "strategies": [entry(e) for e in cfg.strategies],
        "classifiers": [entry(e) for e in cfg.classifiers],
        "risk": [entry(e) for e in cfg.risk],
        "portfolio": {a.name: list(a.values) for a in cfg.portfolio.axes},
        "execution": {a.name: list(a.values) for a in cfg.execution.axes},
        "workflow": attrs.asdict(cfg.workflow),
        "objective": attrs.asdict(cfg.objective),
        "tracing": attrs.asdict(cfg.tracing),
        "phase_overrides": {k: attrs.asdict(v) for k, v in cfg.phase_overrides.items()},
        "plugins": list(cfg.plugins),
        "seed": cfg.seed,
        "overfitting": {**attrs.asdict(cfg.overfitting), "block": cfg.overfitting.block.label},
        "min_trades": cfg.min_trades,
        **({"score_from": cfg.score_from} if cfg.score_from is not None else {}),  # absent: hashes as before
    }


def load_plugins(refs, base_dir=None, path: tuple = ("plugins",)) -> None:
    """Import plugin modules (names or .py files); any failure is a ConfigError at ``path[i]``."""
    for i, ref in enumerate(refs):
        try:
            load_plugin(str(ref), base_dir)
        except PluginError as exc:
            raise ConfigError(
                (*path, i), f"plugin problem: {exc.name}: {exc.problem}", value=ref, fix=exc.fix
            ) from None
        except (ImportError, FileNotFoundError) as exc:
            raise ConfigError(
                (*path, i),
                f"cannot import plugin: {exc}",
                value=ref,
                fix="give a module importable from the config's folder, or a path to a .py file",
            ) from None
        except Exception as exc:
            raise ConfigError(
                (*path, i),
                f"importing the plugin raised {type(exc).__name__}: {exc}",
                value=ref,
                fix="fix the error in that module",
            ) from None


def load_config(source: str | Path | dict | SweepConfig, *, max_combinations: int | None = None) -> SweepConfig:
    """Load and validate a sweep config from a YAML path or a dict.

    Raises ConfigError with the YAML path, line, value and fix on any mistake.

    Example:
        >>> cfg = load_config("examples/seed.yaml")
        >>> cfg.name, [e.type for e in cfg.strategies]
        ('seed', ['momentum'])
    """
    if isinstance(source, SweepConfig):
        return source
    load_builtins()
    if isinstance(source, dict):
        raw, lines, src, base_dir = source, LineMap(None), None, Path.cwd()
    else:
        raw, lines = load_yaml(source)
        src, base_dir = str(source), Path(source).resolve().parent
    try:
        return _build(raw, lines, src, base_dir, max_combinations)
    except ConfigError as err:
        parts = getattr(err, "path_parts", None)
        raise lines.locate(err, parts) from None


def _build(raw: Any, lines: LineMap, src, base_dir: Path, max_override: int | None) -> SweepConfig:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(
            "<config>",
            "the config must be a mapping of sections",
            value=raw,
            fix="start with e.g. `strategies:` at the left margin",
        )
    check_keys(raw, TOP_KEYS, (), where="at the top level")
    max_comb = _scalar(raw.get("max_combinations"), ("max_combinations",), "int", DEFAULT_MAX_COMBINATIONS, 1)
    if max_override is not None:
        max_comb = max_override
    plugins = raw.get("plugins") or []
    if isinstance(plugins, str):
        plugins = [plugins]
    if not isinstance(plugins, list):
        raise ConfigError(
            ("plugins",), "expected a list of modules or .py files", value=plugins, fix="write plugins: [my_strategies]"
        )
    load_plugins(plugins, base_dir)
    extra_patterns = raw.get("patterns") or []
    if not isinstance(extra_patterns, list):
        extra_patterns = [extra_patterns]
    pattern_dirs = tuple(str(base_dir / str(p)) for p in extra_patterns)
    try:
        patterns = load_patterns(pattern_dirs)
    except (PatternError, OSError) as exc:
        raise ConfigError(
            ("patterns",), str(exc), fix="follow the shape of the files in the patterns/ package"
        ) from None
    workflow, wf_pattern, mode = _parse_workflow(raw.get("workflow"), patterns)

    entries: dict[str, list[ServiceEntry]] = {}
    for role in ("strategy", "classifier", "risk"):
        items = _expect_list(raw.get(SECTION[role]), (SECTION[role],), f"{role} entries")
        entries[role] = [_parse_entry(role, i, item, base_dir, max_comb) for i, item in enumerate(items)]
        if SECTION[role] in raw and not items:
            raise ConfigError((SECTION[role],), "empty list", fix=f"list at least one {role}, or remove the section")
    needs_strategy = mode.role("strategy") is not None
    if needs_strategy and not entries["strategy"]:
        raise ConfigError(
            ("strategies",),
            "no strategies given",
            fix="add e.g.\nstrategies:\n  - type: ma_crossover\n    parameters: {fast: [5, 10], slow: [20, 50]}",
        )
    regimes = {r for e in entries["classifier"] for r in e.spec.regimes}
    for e in entries["strategy"]:
        for j, name in enumerate(e.active_regimes or ()):
            if not entries["classifier"]:
                raise ConfigError(
                    e.path + ("active_regimes",),
                    "active_regimes needs a classifier to name regimes",
                    fix="add a `classifiers:` section or remove active_regimes",
                )
            if name not in regimes:
                raise ConfigError(
                    e.path + ("active_regimes", j),
                    f"no configured classifier has this regime{did_you_mean(name, regimes)}",
                    value=name,
                    fix=f"regimes available: {', '.join(sorted(regimes))}",
                )

    portfolio = _parse_settings("portfolio", raw.get("portfolio"), PORTFOLIO_PARAMS, max_comb)
    execution = _parse_settings("execution", raw.get("execution"), EXECUTION_PARAMS, max_comb)
    defaults = dict((wf_pattern or mode).defaults)
    tracing = _parse_tracing(raw, defaults)
    phases = [p["name"] for p in (wf_pattern.phases if wf_pattern else mode.phases)]
    overrides = _parse_overrides(raw.get("phase_overrides"), phases, {k: raw[k] for k in TRACING_KEYS if k in raw})
    name = raw.get("name")
    if name is None:  # from the file name: made safe as a folder name
        name = re.sub(r"[^A-Za-z0-9._-]", "_", Path(src).stem).lstrip(".")[:NAME_CHARS] if src else "sweep"
    name = _scalar(name, ("name",), "str", "sweep")
    if not NAME.match(name):
        raise ConfigError(
            ("name",),
            f"a run name becomes a folder under results_dir: use letters, digits, '.', '_' or '-' (at most "
            f"{NAME_CHARS} characters, not starting with '.'); no '/', '..', spaces or control characters",
            value=name,
            fix=f"e.g. name: {re.sub(r'[^A-Za-z0-9._-]', '_', name).strip('._')[:NAME_CHARS] or 'my_sweep'}",
        )
    keep = raw.get("keep") or []
    if not isinstance(keep, list):
        keep = [keep]
    threads = raw.get("threads")
    if threads is not None:
        threads = _scalar(threads, ("threads",), "int", None, 1)
    cfg = SweepConfig(
        name=name,
        data=parse_data(raw.get("data"), base_dir),
        strategies=tuple(entries["strategy"]),
        classifiers=tuple(entries["classifier"]),
        risk=tuple(entries["risk"]),
        portfolio=portfolio,
        execution=execution,
        workflow=workflow,
        objective=_parse_objective(raw.get("objective")),
        tracing=tracing,
        phase_overrides=overrides,
        plugins=tuple(str(p) for p in plugins),
        results_dir=_scalar(raw.get("results_dir"), ("results_dir",), "str", "results"),
        signals_dir=_scalar(raw.get("signals_dir"), ("signals_dir",), "str", None),
        max_combinations=max_comb,
        engine=_parse_choice(raw.get("engine"), ("engine",), ("fast", "reference"), "fast"),
        threads=threads,
        chunk_size=_scalar(raw.get("chunk_size"), ("chunk_size",), "int", 65_536, 16),
        top_k=_scalar(raw.get("top_k"), ("top_k",), "int", 10, 0),
        keep=tuple(str(k) for k in keep),
        seed=_scalar(raw.get("seed"), ("seed",), "int", 0, 0),
        overfitting=_parse_overfitting(raw.get("overfitting")),
        backend=parse_backend(raw.get("backend")),
        min_trades=_parse_min_trades(raw.get("min_trades")),
        score_from=parse_score_from(raw.get("score_from")),
        source=src,
        base_dir=str(base_dir),
        pattern_dirs=pattern_dirs,
        lines=lines,
    )
    return attrs.evolve(cfg, normalized=_normalize(cfg))
