"""Config-time smoke run of a service: compiled, callable on tiny data, right return type.

``verify_service(spec)`` feeds the service its declared features, computed by
the feature hub on a few hundred synthetic bars, and calls it at several bars
(warm-up NaNs included).  Any problem becomes a PluginError naming the
function, so a broken plugin is reported when the config is loaded, not in
the middle of a run.
"""

from __future__ import annotations

import math

import numpy as np

from services.errors import PluginError
from services.registry import ServiceSpec
from services.state import (
    AVG_PRICE,
    EQUITY,
    HIGH_SINCE_ENTRY,
    INITIAL_CAPITAL,
    LOW_SINCE_ENTRY,
    N_STATE,
    PEAK_EQUITY,
    POSITION,
)

from ..builtins import load as load_builtins

SMOKE_BARS = 400
SMOKE_BARS_PER_DAY = 10.0
_VERIFIED: set[int] = set()


def tiny_bars(n: int = SMOKE_BARS, seed: int = 0) -> np.ndarray:
    """Deterministic valid OHLCV bars, shape (5, n)."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    open_ = np.r_[100.0, close[:-1]] * np.exp(rng.normal(0.0, 0.002, n))
    high = np.maximum(open_, close) * (1.0 + np.abs(rng.normal(0.0, 0.004, n)))
    low = np.minimum(open_, close) * (1.0 - np.abs(rng.normal(0.0, 0.004, n)))
    vol = rng.integers(100, 10_000, n).astype(np.float64)
    return np.vstack([open_, high, low, close, vol])


def _who(spec: ServiceSpec) -> str:
    return f"{spec.module}.{getattr(spec.func, '__name__', spec.name)}"


def service_features(spec: ServiceSpec, values: dict, bars: np.ndarray, bars_per_day: float):
    """(feature matrix (k, n), warm-up) of a service's declared features over ``bars``."""
    from containers.feature_hub import FeatureHub

    try:
        specs = spec.feature_specs(values)
    except Exception as exc:
        raise PluginError(
            _who(spec),
            f"declares a feature that cannot be used: {exc}",
            fix="features are specs like 'sma(close,{n})'; see `sweep services --indicators`",
        ) from None
    if not specs:
        return np.zeros((0, bars.shape[1])), 0
    hub = FeatureHub(specs, bars_per_day)
    block = hub.compute_all(bars)
    return np.ascontiguousarray(block[hub.rows]), hub.warmup


def call_service(spec: ServiceSpec, f: np.ndarray, p: np.ndarray, regime: int = 0):
    """Call a strategy or classifier once; raise PluginError naming it on any failure."""
    try:
        if spec.role == "strategy":
            return spec.func(f, p, np.int64(regime))
        return spec.func(f, p)
    except Exception as exc:
        raise PluginError(_who(spec), f"raised {type(exc).__name__} when called: {exc}") from None


def sample_state(position: float = 10.0, price: float = 100.0) -> np.ndarray:
    s = np.zeros(N_STATE)
    s[POSITION] = position
    s[AVG_PRICE] = price
    s[EQUITY] = 100_000.0
    s[PEAK_EQUITY] = 110_000.0
    s[HIGH_SINCE_ENTRY] = price * 1.1
    s[LOW_SINCE_ENTRY] = price * 0.9
    s[INITIAL_CAPITAL] = 100_000.0
    return s


def _check_return(spec: ServiceSpec, out) -> None:
    if spec.role == "classifier":
        if isinstance(out, (bool, np.bool_)) or not isinstance(out, (int, np.integer)):
            raise PluginError(
                _who(spec),
                f"a classifier must return an integer regime, it returned {type(out).__name__} {out!r}",
                fix="return an int such as 0 or 1 (the index into its regime names)",
            )
        if not 0 <= int(out) < len(spec.regimes):
            raise PluginError(
                _who(spec),
                f"returned regime {out}, outside 0..{len(spec.regimes) - 1} ({', '.join(spec.regimes)})",
            )
        return
    if isinstance(out, (bool, np.bool_)) or not isinstance(out, (int, float, np.integer, np.floating)):
        raise PluginError(
            _who(spec), f"must return a number, it returned {type(out).__name__} {out!r}", fix="return a float"
        )
    if spec.role == "strategy" and not math.isnan(out) and abs(out) > 1.0 + 1e-12:
        raise PluginError(_who(spec), f"returned signal {out}, outside [-1, 1]", fix="scale the signal into [-1, 1]")


def verify_service(spec: ServiceSpec) -> None:
    """Smoke-run a service once (cached per process); raise PluginError naming it on failure."""
    if id(spec) in _VERIFIED:
        return
    load_builtins()
    p = spec.encode({})
    if spec.role == "risk":
        fn = spec.func
        if not spec.builtin:  # bounds-checked: a read past the state row or the limits is named
            from services.causality import out_of_bounds_index

            from .streaming import bounds_checked

            fn = bounds_checked(spec.func)
        for pos in (0.0, 10.0, -10.0):
            state = sample_state(pos)
            try:
                out = fn(5.0, 100.0, state, p)
            except IndexError:
                where = out_of_bounds_index(
                    spec.func,
                    [5.0, 100.0, state, p],
                    [None, None, "state", "limits"],
                    [state.size, 0, state.size, p.size],
                )
                raise PluginError(
                    _who(spec), where or "reads past its state row or limits", fix="read only declared entries"
                ) from None
            except Exception as exc:
                raise PluginError(_who(spec), f"raised {type(exc).__name__} when called: {exc}") from None
            _check_return(spec, out)
            if not math.isfinite(out):
                raise PluginError(_who(spec), f"returned a non-finite quantity {out!r}")
    else:
        bars = tiny_bars()
        feats, warm = service_features(spec, spec.defaults(), bars, SMOKE_BARS_PER_DAY)
        n = bars.shape[1]
        for t in sorted({0, min(warm, n - 1), n - 1}):
            out = call_service(spec, np.ascontiguousarray(feats[:, t]), p, 0)
            _check_return(spec, out)
        if not spec.builtin:  # every bar through a bounds-checked copy: a read past f or p is named
            from services.causality import PropertyFailure

            from .streaming import bounds_checked, service_bar_error

            try:
                service_bar_error(spec, bounds_checked(spec.func), feats, p)
            except PropertyFailure as exc:
                fix = "read only the features and parameters it declares, and return a number"
                raise PluginError(_who(spec), str(exc), fix=fix) from None
    _VERIFIED.add(id(spec))
