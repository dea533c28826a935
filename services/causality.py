"""Causality by streaming equivalence: the look-ahead test of the property kit and of `sweep run`.

An indicator is causal exactly when computing it in one pass over the bars
equals computing it fed one bar at a time with its state carried (and any
other chunking).  ``find_leak`` compares them on the whole series: one pass,
one bar at a time (over every bar, or - beyond ``ONE_BAR_BARS`` - over
windows spread to the end, each after its prefix in one piece), chunks of
every length on both sides of every power of two up to the series' length
(``power_chunkings``: a kernel that takes another path for long or short
inputs is fed both), and random chunkings; on a difference it finds
the first bar that differs and how far ahead its value reached: the smallest
k such that a one-pass run over the bars up to t + k gives the full run's
value at t (a centred window of 5 bars each side reaches 5 bars; a
normalisation by the whole series' maximum reaches the bar of that maximum).
A difference already present with k = 0 is a state bug (the indicator
forgets state between chunks), not a look-ahead.

Leaks that depend on the price level, the bar count or a pattern only show
on series that trigger them, so ``long_series`` draws 5,000-bar series
around price levels 1, 100, 300 and 5,000 with trends, gaps, flat stretches
and repeated patterns, and ``with_history`` puts the same series after
65,536 bars of other history (a peek that starts late, or on long inputs,
shows there); `sweep run` also checks every bar of the run's own data.

Plugins are run through a bounds-checked copy (``bounds_checked``): a kernel
that reads past the bars it was given, or past its declared parameters or
state, raises instead of reading memory that is not its own, and
``out_of_bounds_index`` names the index it read.
"""

from __future__ import annotations

import math

import attrs
import numpy as np
from numba import njit

from .compiled import jit_disabled, python_of
from .limits import HISTORY_BARS, ONE_BAR_BARS, ONE_BAR_COMPILED, ONE_BAR_WINDOWS

PRICE_LEVELS = (1.0, 100.0, 300.0, 5000.0)
SERIES_BARS = 5_000
LINEAR_REACH = 16  # reaches up to this are found bar by bar, longer ones by doubling and bisection
_CHECKED: dict[int, object] = {}


class PropertyFailure(AssertionError):
    """A property of a service or indicator does not hold; the message says which and where."""


@attrs.frozen
class Leak:
    """A failure of streaming equivalence: ``kind`` look-ahead, state, out-of-bounds or crash."""

    kind: str
    bar: int
    reach: int | None = None
    detail: str = ""

    def describe(self, what: str, when: str = "") -> str:
        at = f"bar {self.bar:,}" + (f" ({when})" if when else "")
        if self.kind == "look-ahead":
            far = f"{self.reach:,} bar(s) into the future" if self.reach else "into the future"
            return (
                f"{what} looks ahead: its value at {at} differs when it is fed one bar at a time; "
                f"computing it there needs the bars up to {self.bar + (self.reach or 0):,}: it reached {far}"
            )
        if self.kind == "state":
            return (
                f"{what} depends on how the bars are chunked: its value at {at} differs when fed one bar at a "
                "time although it needs no later bar (streaming state is not carried between calls)"
            )
        if self.kind == "out-of-bounds":
            return f"{what} reads past the bars it was given at {at} ({self.detail}): a look-ahead at a chunk's end"
        return f"{what} raised at {at}: {self.detail}"


# ------------------------------------------------------------------ series


def long_series(seed: int = 0, n: int = SERIES_BARS) -> list[tuple[str, np.ndarray]]:
    """(label, OHLCV (5, n)) series around each price level: noise, trends, gaps, flats and repeated motifs."""
    out = []
    for k, level in enumerate(PRICE_LEVELS):
        rng = np.random.default_rng([seed, k, 0x5EED])
        r = np.empty(n)
        t = 0
        motif = rng.normal(0.0, 0.004, 25)
        while t < n:
            m = int(rng.integers(40, 400))
            kind = rng.choice(["noise", "trend", "flat", "motif", "gap"], p=[0.35, 0.25, 0.12, 0.2, 0.08])
            seg = rng.normal(0.0, rng.choice([0.001, 0.004, 0.01]), m)
            if kind == "trend":
                seg += rng.choice([-1.0, 1.0]) * rng.uniform(0.0005, 0.003)
            elif kind == "flat":
                seg[:] = 0.0
            elif kind == "motif":  # the same pattern again and again
                seg = np.resize(motif, m)
            elif kind == "gap":
                seg[0] = rng.choice([-1.0, 1.0]) * rng.uniform(0.02, 0.08)
            r[t : t + m] = seg[: n - t]
            t += m
        path = np.cumsum(r)
        close = level * np.exp(path - (path.max() + path.min()) / 2.0)  # hovers around the level, crossing it
        open_ = np.r_[close[0], close[:-1]] * np.exp(np.where(r == 0.0, 0.0, rng.normal(0.0, 0.0005, n)))
        flat = r == 0.0
        open_[flat] = close[flat]
        wig = np.where(flat, 0.0, np.abs(rng.normal(0.0, 0.002, (2, n))))
        high = np.maximum(open_, close) * (1.0 + wig[0])
        low = np.minimum(open_, close) * (1.0 - np.minimum(wig[1], 0.5))
        volume = np.where(flat, 0.0, rng.integers(1, 10_000, n)).astype(np.float64)
        out.append((f"level {level:g}", np.vstack([open_, high, low, close, volume])))
    return out


def with_history(data: np.ndarray, seed: int = 0, bars: int = HISTORY_BARS) -> np.ndarray:
    """``data`` (OHLCV, (5, n)) after ``bars`` bars of another generated history at its price level, joined."""
    level = float(np.median(data[3]))
    k = int(np.argmin([abs(math.log(level / lv)) for lv in PRICE_LEVELS]))
    hist = long_series(seed + 7919, bars)[k][1].copy()
    hist[:4] *= data[0, 0] / hist[3, -1]  # the history's last close is the series' first open
    return np.ascontiguousarray(np.hstack([hist, data]))


# ------------------------------------------------------------------ running a kernel


def bounds_checked(fn):
    """A copy of a numba function compiled with bounds checks (cached per function)."""
    if jit_disabled():  # plain Python checks its bounds already
        return fn
    key = id(fn)
    if key not in _CHECKED:
        _CHECKED[key] = njit(boundscheck=True, nogil=True)(python_of(fn))
    return _CHECKED[key]


def run_chunked(kernel, params, state_size: int, x: np.ndarray, n_out: int, bounds) -> np.ndarray:
    """Outputs of an indicator kernel over ``x`` (inputs x bars) fed in the pieces ``bounds`` (state carried)."""
    state = np.zeros(max(1, state_size))
    out = np.full((n_out, x.shape[1]), np.nan)
    for a, b in zip(bounds, bounds[1:]):
        if b <= a:
            continue
        piece = np.empty((n_out, b - a))
        kernel(np.ascontiguousarray(x[:, a:b]), params, state, piece)
        out[:, a:b] = piece
    return out


def run_one_bar(kernel, params, state_size: int, x: np.ndarray, n_out: int, start: int = 0, stop=None) -> np.ndarray:
    """The kernel fed bars ``start..stop`` one at a time (after bars ``0..start`` in one piece); NaN elsewhere.

    An exception says at which bar.
    """
    state = np.zeros(max(1, state_size))
    n = x.shape[1]
    stop = n if stop is None else stop
    out = np.full((n_out, n), np.nan)
    if start > 0:
        try:
            kernel(np.ascontiguousarray(x[:, :start]), params, state, np.empty((n_out, start)))
        except Exception as exc:
            raise _BarError(start - 1, exc) from None
    if stop - start >= ONE_BAR_COMPILED and not jit_disabled():
        saved = state.copy()
        try:  # the same calls from a compiled loop: about 100x faster than from Python
            _feed_one_bar(kernel, np.ascontiguousarray(x), params, state, out, start, stop)
            return out
        except Exception:  # found again from Python below, which says at which bar
            state[:] = saved
    cols = np.ascontiguousarray(x[:, start:stop].T)[:, :, None]  # cols[t]: bar start + t's inputs, (n_in, 1)
    outs = np.empty((stop - start, n_out, 1))  # outs[t]: its outputs - contiguous views, nothing copied per bar
    for t in range(stop - start):
        try:
            kernel(cols[t], params, state, outs[t])
        except Exception as exc:
            raise _BarError(start + t, exc) from None
    out[:, start:stop] = outs[:, :, 0].T
    return out


@njit(nogil=True)
def _feed_one_bar(kernel, x, params, state, out, start, stop):
    """``kernel`` fed bars ``start..stop`` of ``x`` one at a time, state carried, outputs into ``out``."""
    col = np.empty((x.shape[0], 1))
    piece = np.empty((out.shape[0], 1))
    for t in range(start, stop):
        for r in range(x.shape[0]):
            col[r, 0] = x[r, t]
        kernel(col, params, state, piece)
        for r in range(out.shape[0]):
            out[r, t] = piece[r, 0]


def one_bar_windows(n: int, seed: int = 0, limit: int = ONE_BAR_BARS) -> list[tuple[int, int]]:
    """Where a series is fed one bar at a time: all of it up to ``limit`` bars, else windows that include the end."""
    if n <= limit:
        return [(0, n)]
    w = limit // ONE_BAR_WINDOWS
    rng = np.random.default_rng([seed, n, 0x0BA5])
    middle = np.sort(rng.choice(np.arange(1, n // w - 1), size=ONE_BAR_WINDOWS - 2, replace=False)) * w
    return [(0, w), *((int(a), int(a) + w) for a in middle), (n - w, n)]


def power_chunkings(n: int) -> list[list[int]]:
    """Chunk bounds over ``n`` bars whose pieces are, between them, 2**k - 1, 2**k and 2**k + 1 bars long for
    every power of two up to ``n`` (about 3 to 6 passes over the bars), so a kernel that takes another path
    for inputs of some length is fed one."""
    todo = sorted({m for k in range(max(1, n).bit_length()) for m in (2**k - 1, 2**k, 2**k + 1) if 1 <= m <= n})
    out = []
    while todo:  # the longest piece left opens a chunking; the shortest that still fit follow it
        bounds = [0, todo.pop()]
        while todo and bounds[-1] + todo[0] <= n:
            bounds.append(bounds[-1] + todo.pop(0))
        if bounds[-1] < n:
            bounds.append(n)
        out.append(bounds)
    return out


class _BarError(Exception):
    def __init__(self, bar: int, exc: Exception) -> None:
        super().__init__(f"{type(exc).__name__}: {exc}")
        self.bar, self.exc = bar, exc


def first_difference(a: np.ndarray, b: np.ndarray) -> int:
    """First bar (last axis) where ``a`` and ``b`` differ (NaN equals NaN), or -1."""
    neq = ~((a == b) | (np.isnan(a) & np.isnan(b)))
    if neq.ndim > 1:
        neq = neq.any(axis=0)
    idx = np.flatnonzero(neq)
    return int(idx[0]) if idx.size else -1


def _same_at(kernel, params, size, x, n_out, full, t, k) -> bool:
    """Does a one-pass run over bars 0..t+k give the full run's value at bar t?"""
    stop = min(x.shape[1], t + k + 1)
    part = run_chunked(kernel, params, size, x[:, :stop], n_out, [0, stop])
    return first_difference(part[:, t : t + 1], full[:, t : t + 1]) < 0


def reach_at(kernel, params, size: int, x: np.ndarray, n_out: int, full: np.ndarray, t: int) -> int:
    """Smallest k >= 0 with ``_same_at``; the bars left after t when none is found."""
    left = x.shape[1] - 1 - t
    for k in range(min(LINEAR_REACH, left) + 1):
        if _same_at(kernel, params, size, x, n_out, full, t, k):
            return k
    lo, hi = LINEAR_REACH, LINEAR_REACH * 2
    while hi < left and not _same_at(kernel, params, size, x, n_out, full, t, hi):
        lo, hi = hi, hi * 2
    hi = min(hi, left)
    while hi - lo > 1:  # first k in (lo, hi] that matches
        mid = (lo + hi) // 2
        if _same_at(kernel, params, size, x, n_out, full, t, mid):
            hi = mid
        else:
            lo = mid
    return hi


def find_leak(kernel, params, state_size: int, x: np.ndarray, n_out: int, seed: int = 0, chunkings: int = 2):
    """Compare one pass with one bar at a time, power-of-two and random chunkings over all of ``x``; a Leak or None."""
    params = np.ascontiguousarray(params, dtype=np.float64)
    n = x.shape[1]
    try:
        full = run_chunked(kernel, params, state_size, x, n_out, [0, n])
    except Exception as exc:
        kind = "out-of-bounds" if isinstance(exc, IndexError) else "crash"
        return Leak(kind, n - 1, None, _why(exc) + f", in one pass over {n:,} bars")
    t = -1
    for a, b in one_bar_windows(n, seed):
        try:
            single = run_one_bar(kernel, params, state_size, x, n_out, a, b)
        except _BarError as err:
            kind = "out-of-bounds" if isinstance(err.exc, IndexError) else "crash"
            return Leak(kind, err.bar, None, _why(err.exc) + ", fed one bar at a time")
        t = first_difference(full[:, a:b], single[:, a:b])
        if t >= 0:
            t += a
            break
    if t < 0:
        rng = np.random.default_rng([seed, n])
        bounds = power_chunkings(n)
        for _ in range(chunkings):
            cuts = np.sort(rng.choice(np.arange(1, n), size=min(n - 1, int(rng.integers(2, 40))), replace=False))
            bounds.append([0, *cuts.tolist(), n])
        for b in bounds:
            try:
                other = run_chunked(kernel, params, state_size, x, n_out, b)
            except Exception as exc:
                kind = "out-of-bounds" if isinstance(exc, IndexError) else "crash"
                return Leak(kind, n - 1, None, _why(exc) + f", in chunks of {np.diff(b).min():,} bars and more")
            t = first_difference(full, other)
            if t >= 0:
                break
    if t < 0:
        return None
    k = reach_at(kernel, params, state_size, x, n_out, full, t)
    return Leak("look-ahead", t, k) if k > 0 else Leak("state", t, 0)


def _why(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# ------------------------------------------------------------------ out-of-bounds reads by services


def out_of_bounds_index(call, args: list, names: list[str], declared: list[int], extra: int = 16) -> str | None:
    """Which declared array ``call`` reads past, and at which index, found by probing spare slots.

    ``args`` are the arrays the function takes (features and parameters,
    say); each is padded with ``extra`` slots and each slot changed on its
    own: the first slot whose value changes the result is the index read.
    """
    for j, (arr, name, size) in enumerate(zip(args, names, declared)):
        if name is None:  # not an array argument
            continue
        base = [np.ascontiguousarray(a) if isinstance(a, np.ndarray) else a for a in args]
        padded = np.concatenate([np.asarray(arr, dtype=np.float64), np.zeros(extra)])
        ref = _value(call, base, j, padded)
        for slot in range(size, size + extra):
            for probe_value in _PROBES:
                probe = padded.copy()
                probe[slot] = probe_value
                if not _equal(_value(call, base, j, probe), ref):
                    if not size:
                        return f"reads {name}[{slot}] but declares none"
                    return f"reads {name}[{slot}] but declares {size} ({name}[0]..{name}[{size - 1}])"
    return None


_PROBES = (-1e12, 1e12, 1.0, -1.0, float("nan"))


def _value(call, base, j, arr):
    args = list(base)
    args[j] = arr
    try:
        return call(*args)
    except Exception as exc:  # a different path: still a difference
        return repr(exc)


def _equal(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b
