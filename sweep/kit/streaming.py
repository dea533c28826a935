"""The kit's streaming-equivalence checks for an indicator or a service on long generated series.

``check_indicator`` runs an indicator's kernel on each series of
``causality.long_series`` (price levels 1 to 5,000, trends, gaps, flats,
motifs) - and on one of them after 65,536 bars of other history
(``causality.with_history``: bar counts past 30,000 and inputs longer than
2**15 and 2**16) - in one pass, one bar at a time, in chunks of every length
around every power of two and in random chunks.
``check_service`` does the same for every indicator behind a strategy's or
classifier's features (a service built on a leaking indicator is reported
through that indicator), then calls the service at every bar - through a
bounds-checked copy for plugins, so a read past its declared features or
parameters is named.  Both raise ``PropertyFailure``.
"""

from __future__ import annotations

import numpy as np

from services.causality import (
    Leak,
    PropertyFailure,
    bounds_checked,
    find_leak,
    long_series,
    out_of_bounds_index,
    with_history,
)
from services.limits import HISTORY_BARS
from services.registry import IndicatorSpec, ServiceSpec

INPUT_ROWS = {"open": 0, "high": 1, "low": 2, "close": 3, "volume": 4}


def kernel_for(spec: IndicatorSpec):
    """The kernel to verify: plugins through a bounds-checked copy (built-ins are trusted and tested)."""
    return spec.kernel if spec.builtin else bounds_checked(spec.kernel)


def indicator_leak(spec: IndicatorSpec, params: np.ndarray, x: np.ndarray, seed: int = 0) -> Leak | None:
    """Streaming equivalence of one indicator computation on inputs ``x`` (inputs x bars)."""
    size = int(spec.state_size(*params))
    return find_leak(kernel_for(spec), params, size, np.ascontiguousarray(x), len(spec.outputs), seed)


def kit_series(seed: int = 0, history: bool = True) -> list[tuple[str, np.ndarray]]:
    """(where, OHLCV) of the series a streaming check uses: ``long_series``, and one of them after a long
    history when ``history``."""
    out = []
    for k, (label, data) in enumerate(long_series(seed)):
        where = f"series around price {label[6:]}"
        out.append((where, data))
        if history and k == seed % 4:
            out.append((f"{where} after {HISTORY_BARS:,} bars of other history", with_history(data, seed)))
    return out


def check_indicator(spec: IndicatorSpec, params: np.ndarray, seed: int = 0, history: bool = True) -> None:
    rows = [INPUT_ROWS.get(i, 3) for i in spec.inputs]
    for where, data in kit_series(seed, history):
        leak = indicator_leak(spec, params, data[rows], seed)
        if leak is not None:
            raise PropertyFailure(leak.describe(f"{spec.title}{_with(params)}", where))


def _with(params: np.ndarray) -> str:
    return f" with parameters {[float(v) for v in params]}" if len(params) else ""


def hub_leak(hub, block: np.ndarray, seed: int = 0):
    """The first leaking computation of a feature hub over a one-pass ``block``: (text, spec, Leak) or None."""
    for text, spec, params, in_rows, _ in hub.nodes():
        leak = indicator_leak(spec, params, block[list(in_rows)], seed)
        if leak is not None:
            return text, spec, leak
    return None


def check_service(spec: ServiceSpec, values: dict, bars_per_day: float, seed: int = 0, history: bool = True) -> None:
    from containers.feature_hub import FeatureHub

    specs = spec.feature_specs(values)
    p = spec.encode(values)
    call = spec.func if spec.builtin else bounds_checked(spec.func)
    for where, data in kit_series(seed, history):
        feats = np.zeros((0, data.shape[1]))
        if specs:
            hub = FeatureHub(specs, bars_per_day, kernel_of=kernel_for)
            try:
                block = hub.compute_all(data)
            except Exception as exc:  # a plugin indicator that fails in one pass (bounds-checked)
                raise PropertyFailure(f"{spec.title}: {exc}") from None
            found = hub_leak(hub, block, seed)
            if found is not None:
                text, ind, leak = found
                raise PropertyFailure(
                    f"{spec.title} looks ahead through indicator {ind.name!r} (feature {text}): "
                    + leak.describe(f"indicator {ind.name!r}", where)
                )
            feats = np.ascontiguousarray(block[hub.rows])
        service_bar_error(spec, call, feats, p, where)


def service_bar_error(
    spec: ServiceSpec, call, feats: np.ndarray, p: np.ndarray, where: str = "", offset: int = 0
) -> None:
    """Call a strategy or classifier at every bar; raise PropertyFailure naming a crash or an out-of-bounds read.

    ``offset`` is the bar number of the first column of ``feats`` (for the message).
    """
    cols = np.ascontiguousarray(feats.T)
    for t in range(cols.shape[0]):
        f = cols[t]
        try:
            out = call(f, p, np.int64(0)) if spec.role == "strategy" else call(f, p)
        except Exception as exc:
            raise PropertyFailure(service_crash(spec, exc, f, p, t + offset, where, feats)) from None
        if isinstance(out, (bool, np.bool_)):
            raise PropertyFailure(
                f"{spec.title} returned a bool ({out}) at bar {t + offset}: return a number (a signal in [-1, 1], "
                "or a regime)"
            )


def _valid_row(f: np.ndarray, feats: np.ndarray | None) -> np.ndarray:
    """Features of the first bar where all of them are valid (probing after warm-up finds more reads)."""
    if feats is None or not feats.size:
        return f
    ok = np.flatnonzero(np.isfinite(feats).all(axis=0))
    return np.ascontiguousarray(feats[:, ok[0]]) if ok.size else f


def service_crash(
    spec: ServiceSpec, exc: Exception, f: np.ndarray, p: np.ndarray, t: int, where: str = "", feats=None
) -> str:
    """The message for a service that raised at bar ``t``: the index it read when it read out of bounds."""
    at = f"bar {t:,}" + (f" ({where})" if where else "")
    if isinstance(exc, IndexError):
        f = _valid_row(f, feats)
        if spec.role == "strategy":
            detail = out_of_bounds_index(spec.func, [f, p, np.int64(0)], ["f", "p", None], [f.size, p.size, 0])
        else:
            detail = out_of_bounds_index(spec.func, [f, p], ["f", "p"], [f.size, p.size])
        what = detail or "reads past its declared features or parameters"
        return f"{spec.title} {what} at {at} (features f: {f.size}, parameters p: {p.size})"
    return f"{spec.title} raised {type(exc).__name__} at {at}: {exc}"
