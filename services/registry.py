"""Registry and plugin API for stateless services and indicators.

Services are pure numba functions registered with a decorator that records
their parameters, the features they need (as a function of the parameters)
and, for classifiers, their regime names::

    from numba import njit
    from services import strategy, Int, Float

    @strategy(params=[Int("n", 20, low=2), Float("band", 1.0, low=0)],
              features=["zscore(close,{n})"])
    @njit(cache=True, nogil=True)
    def fade(f, p, regime):
        z = f[0]
        return -1.0 if z > p[1] else (1.0 if z < -p[1] else 0.0)

Calling conventions (all arrays float64, C-contiguous):

- strategy ``f(features, params, regime) -> float`` in [-1, 1]
- classifier ``f(features, params) -> int`` in [0, len(regimes))
- risk validator ``f(qty, price, state, limits) -> float`` approved quantity
- indicator kernel ``k(inputs[n_in, n], params, state, out[n_out, n])``
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs

from services.errors import PluginError, did_you_mean

from .catalog import _REGISTRY, ROLE_TITLES, ROLES, indicator_registry, registry, unregister  # noqa: F401
from .compiled import is_compiled, python_of
from .fingerprint import seal
from .params import Param


def _is_numba(func: Any) -> bool:
    return is_compiled(func)


def _params_tuple(params: Sequence[Param] | None, owner: str) -> tuple[Param, ...]:
    params = tuple(params or ())
    seen = set()
    for p in params:
        if not isinstance(p, Param):
            raise PluginError(owner, f"parameter {p!r} is not declared with Int/Float/Bool/Choice/Duration")
        if p.name in seen:
            raise PluginError(owner, f"parameter {p.name!r} is declared twice")
        seen.add(p.name)
    return params


@attrs.frozen(eq=False)
class ServiceSpec:
    """A registered strategy, classifier or risk validator."""

    role: str
    name: str
    func: Any
    params: tuple[Param, ...]
    features: Any = ()  # tuple of templates, or callable(values: dict) -> list[str]
    regimes: tuple[str, ...] = ()
    doc: str = ""
    module: str = ""
    builtin: bool = False

    @property
    def title(self) -> str:
        return f"{ROLE_TITLES[self.role]} {self.name!r}"

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def feature_texts(self, values: dict[str, Any]) -> list[str]:
        """Feature spec texts for one parameter set (templates filled in, not yet canonical)."""
        full = {**self.defaults(), **values}
        if callable(self.features):
            texts = self.features(dict(full))
        else:
            texts = [t.format(**full) for t in self.features]
        return [str(t) for t in texts]

    def feature_specs(self, values: dict[str, Any]) -> list[str]:
        """Canonical feature specs this service needs for one parameter set."""
        from .featurespec import parse_feature

        return [str(parse_feature(t)) for t in self.feature_texts(values)]

    @property
    def reads_regime(self) -> bool:
        """Whether a strategy's code reads its regime argument (else a classifier cannot change its signal)."""
        import dis

        code = python_of(self.func).__code__
        if self.role != "strategy" or code.co_argcount < 3:
            return False
        name = code.co_varnames[2]
        for ins in dis.get_instructions(code):
            names = ins.argval if isinstance(ins.argval, tuple) else (ins.argval,)  # LOAD_FAST_LOAD_FAST: a pair
            if ins.opname.startswith("LOAD_FAST") and name in names:
                return True
        return False

    def encode(self, values: dict[str, Any]):
        import numpy as np

        full = {**self.defaults(), **values}
        return np.array([p.encode(full[p.name]) for p in self.params], dtype=np.float64)


@attrs.frozen(eq=False)
class IndicatorSpec:
    """A streaming indicator kernel and what it needs.

    ``state_size(*params) -> int`` and ``warmup(*params) -> int`` take the
    resolved parameter values (durations already converted to bars).  The
    kernel must skip NaN inputs (output NaN, state unchanged) so indicators
    compose, and must give the same output chunk by chunk as in one pass.
    """

    name: str
    kernel: Any
    inputs: tuple[str, ...]
    params: tuple[Param, ...]
    outputs: tuple[str, ...]
    state_size: Callable[..., int]
    warmup: Callable[..., int]
    doc: str = ""
    module: str = ""
    builtin: bool = False
    reference: Callable | None = None

    role = "indicator"

    @property
    def title(self) -> str:
        return f"indicator {self.name!r}"


def _code_of(spec: Any):
    fn = getattr(spec, "func", None) or spec.kernel
    code = python_of(fn).__code__
    return fn.__name__, code.co_code, code.co_consts


def _register(role: str, spec: Any, replace: bool) -> None:
    table = _REGISTRY[role]
    old = table.get(spec.name)
    # the same function imported again (re-import, or the same file under another module name) re-registers
    if old is not None and not replace and _code_of(old) != _code_of(spec):
        raise PluginError(
            f"{spec.module}.{spec.name}",
            f"a {ROLE_TITLES[role]} named {spec.name!r} is already registered by {old.module}",
            fix="pass name='...' to the decorator to register it under another name",
        )
    table[spec.name] = spec
    seal(getattr(spec, "func", None) or spec.kernel)  # numba's disk cache keyed by all the code it reaches


def _service_decorator(role: str, name, params, features, regimes, doc, replace):
    def wrap(func):
        owner = getattr(func, "__name__", repr(func))
        if not _is_numba(func):
            raise PluginError(
                f"{getattr(func, '__module__', '?')}.{owner}",
                f"the {ROLE_TITLES[role]} is not numba-compiled",
                fix="decorate it with @njit(cache=True, nogil=True) below the registry decorator",
            )
        py = python_of(func)
        nargs = len(inspect.signature(py).parameters)
        want = {"strategy": 3, "classifier": 2, "risk": 4}[role]
        if nargs != want:
            sig = {
                "strategy": "(features, params, regime)",
                "classifier": "(features, params)",
                "risk": "(qty, price, state, limits)",
            }[role]
            raise PluginError(
                f"{py.__module__}.{owner}",
                f"a {ROLE_TITLES[role]} takes {want} arguments {sig}, this one takes {nargs}",
            )
        module = py.__module__
        reg_name = name or owner
        feats = features if callable(features) else tuple(features or ())
        if role == "classifier" and len(regimes or ()) < 1:
            raise PluginError(
                f"{module}.{owner}", "a classifier must declare its regime names", fix="pass regimes=[...]"
            )
        spec = ServiceSpec(
            role=role,
            name=reg_name,
            func=func,
            params=_params_tuple(params, f"{module}.{owner}"),
            features=feats,
            regimes=tuple(regimes or ()),
            doc=inspect.cleandoc(doc or py.__doc__ or ""),
            module=module,
            builtin=module.startswith(("services.", "containers.")),
        )
        _register(role, spec, replace)
        return func

    return wrap


def strategy(
    name: str | None = None, *, params: Sequence[Param] = (), features=(), doc: str | None = None, replace: bool = False
):
    """Register a numba strategy ``f(features, params, regime) -> signal in [-1, 1]``.

    ``features`` is a list of spec templates filled with the parameters
    (``"sma(close,{fast})"``) or a callable ``values -> list of specs``.
    """
    return _service_decorator("strategy", name, params, features, (), doc, replace)


def classifier(
    name: str | None = None,
    *,
    params: Sequence[Param] = (),
    features=(),
    regimes: Sequence[str] = (),
    doc: str | None = None,
    replace: bool = False,
):
    """Register a numba classifier ``f(features, params) -> regime index``; name its regimes."""
    return _service_decorator("classifier", name, params, features, regimes, doc, replace)


def risk_validator(
    name: str | None = None, *, params: Sequence[Param] = (), doc: str | None = None, replace: bool = False
):
    """Register a numba risk validator ``f(qty, price, state, limits) -> approved qty``."""
    return _service_decorator("risk", name, params, (), (), doc, replace)


def indicator(
    name: str | None = None,
    *,
    inputs: Sequence[str] = ("x",),
    params: Sequence[Param] = (),
    outputs: Sequence[str] = ("value",),
    state_size: Callable[..., int],
    warmup: Callable[..., int],
    doc: str | None = None,
    reference: Callable | None = None,
    replace: bool = False,
):
    """Register a streaming indicator kernel ``k(inputs, params, state, out)``.

    Example (a running maximum: state holds the maximum so far; NaN inputs are skipped):
        >>> import math
        >>> from numba import njit
        >>> from services.params import Int
        >>> @indicator(params=[Int("n", 1, low=1)], state_size=lambda n: 1, warmup=lambda n: 0)
        ... @njit
        ... def running_max(x, p, s, out):
        ...     for t in range(x.shape[1]):
        ...         if not math.isnan(x[0, t]) and (t == 0 and s[0] == 0.0 or x[0, t] > s[0]):
        ...             s[0] = x[0, t]
        ...         out[0, t] = s[0]
        >>> indicator_registry()["running_max"].outputs
        ('value',)
        >>> unregister("indicator", "running_max")
    """

    def wrap(kernel):
        owner = getattr(kernel, "__name__", repr(kernel))
        module = getattr(python_of(kernel), "__module__", "?")
        if not _is_numba(kernel):
            raise PluginError(
                f"{module}.{owner}",
                "the indicator kernel is not numba-compiled",
                fix="decorate it with @njit(cache=True, nogil=True) below @indicator",
            )
        nargs = len(inspect.signature(python_of(kernel)).parameters)
        if nargs != 4:
            raise PluginError(
                f"{module}.{owner}",
                f"an indicator kernel takes 4 arguments (inputs, params, state, out), this one takes {nargs}",
            )
        spec = IndicatorSpec(
            name=(name or owner).lower(),
            kernel=kernel,
            inputs=tuple(inputs),
            params=_params_tuple(params, f"{module}.{owner}"),
            outputs=tuple(o.lower() for o in outputs),
            state_size=state_size,
            warmup=warmup,
            doc=inspect.cleandoc(doc or python_of(kernel).__doc__ or ""),
            module=module,
            builtin=module.startswith(("services.", "containers.")),
            reference=reference,
        )
        if not spec.outputs:
            raise PluginError(f"{module}.{owner}", "an indicator needs at least one output")
        _register("indicator", spec, replace)
        return kernel

    return wrap


# ---------------------------------------------------------------- lookups


def load_plugin(ref: str, base_dir: str | Path | None = None):
    """Import a plugin module by dotted name or by path to a ``.py`` file.

    Relative file paths are tried against ``base_dir`` (the config's folder)
    and the current directory; module names are also searched there.
    """
    ref = str(ref).strip()
    candidates = []
    if ref.endswith(".py") or "/" in ref or "\\" in ref:
        p = Path(ref)
        if not p.is_absolute():
            candidates = [Path(base_dir) / p] if base_dir else []
            candidates.append(Path.cwd() / p)
        else:
            candidates = [p]
        for c in candidates:
            if c.is_file():
                return _import_file(c)
        raise FileNotFoundError(f"plugin file {ref!r} not found (looked in {', '.join(str(c) for c in candidates)})")
    for d in (base_dir, Path.cwd()):
        if d is not None and str(d) not in sys.path:
            sys.path.insert(0, str(d))
    return importlib.import_module(ref)


def _import_file(path: Path):
    """Import a plugin file under its plain module name (its stem), as ``import stem`` would.

    One name per file matters: numba's disk cache and the fused kernel refer
    to functions by module name.  Only when that name is taken by another
    module is ``sweep_plugin_<stem>`` used instead.
    """
    path = path.resolve()
    name = path.stem
    existing = sys.modules.get(name)
    if existing is not None:
        if Path(getattr(existing, "__file__", "") or "").resolve() == path:
            return existing
        name = f"sweep_plugin_{path.stem}"
        existing = sys.modules.get(name)
        if existing is not None and Path(getattr(existing, "__file__", "") or "").resolve() == path:
            return existing
    # the plugin's folder goes on sys.path so `import stem` (and numba's cache) find it again
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def resolve(role: str, type_name: str, base_dir: str | Path | None = None) -> Any:
    """Find a registered service by name or by ``package.module:function`` reference.

    Raises LookupError with the list of registered names when nothing matches.
    """
    table = registry(role)
    if ":" in type_name:
        mod_name, _, attr = type_name.partition(":")
        module = load_plugin(mod_name, base_dir)
        obj = getattr(module, attr, None)
        if obj is None:
            raise LookupError(f"module {mod_name!r} has no attribute {attr!r}")
        for spec in table.values():
            if getattr(spec, "func", getattr(spec, "kernel", None)) is obj:
                return spec
        other = [
            r
            for r in ROLES
            if any(getattr(s, "func", getattr(s, "kernel", None)) is obj for s in _REGISTRY[r].values())
        ]
        if other:
            raise LookupError(f"{type_name} is registered as a {ROLE_TITLES[other[0]]}, not a {ROLE_TITLES[role]}")
        raise LookupError(
            f"{type_name} is not a registered {ROLE_TITLES[role]}; decorate it with "
            f"@{'risk_validator' if role == 'risk' else role}(...) from services"
        )
    spec = table.get(type_name)
    if spec is None:
        raise LookupError(
            f"unknown {ROLE_TITLES[role]} type {type_name!r}{did_you_mean(type_name, table)}; "
            f"registered: {', '.join(sorted(table)) or 'none'}"
        )
    return spec
