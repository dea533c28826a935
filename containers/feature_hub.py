"""The feature hub: every unique feature computed once, chunk by chunk.

The hub takes the canonical feature specs of a plan, resolves them into
indicator computations (dependencies included, each once), and lays them out
as rows of one C-contiguous block ``(rows, chunk)``: rows 0-4 are the bar
columns open, high, low, close, volume, then each computation's outputs.
Each computation keeps its own streaming state, so ``compute`` can be called
on consecutive chunks and gives exactly what one pass over all bars gives.

Example:
    >>> hub = FeatureHub(["sma(close,3)", "sma(close,5)"])
    >>> import numpy as np
    >>> bars = np.tile(np.arange(1.0, 11.0), (5, 1))
    >>> block = hub.compute(bars)
    >>> float(block[hub.rows[0], 2]), hub.warmup
    (2.0, 4)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import attrs
import numba
import numpy as np

from services.errors import ConfigError, PluginError
from services.featurespec import BAR_COLUMNS, FeatureNode, parse_feature
from services.limits import STATE_BUDGET_BYTES
from services.params import duration_to_bars
from services.registry import IndicatorSpec, indicator_registry

from . import indicators  # noqa: F401  (registers the built-in indicator kernels the hub computes)

N_BAR_ROWS = len(BAR_COLUMNS)


@attrs.define
class _Computation:
    node: FeatureNode
    spec: IndicatorSpec
    params: np.ndarray
    state: np.ndarray
    input_rows: tuple[int, ...]
    out_start: int
    warmup: int  # bars from the first bar until this computation's outputs are valid

    @property
    def text(self) -> str:
        return str(self.node)


def resolve_params(spec: IndicatorSpec, node: FeatureNode, bars_per_day: float) -> tuple:
    """Parameter values with durations converted to bars (and checked against their bounds in bars)."""
    out = []
    for p, v in zip(spec.params, node.params):
        if p.kind == "duration":
            bars = duration_to_bars(v, bars_per_day)
            if (p.low is not None and bars < p.low) or (p.high is not None and bars > p.high):
                raise ConfigError(
                    "<features>",
                    f"feature {node}: {p.name} {v} is {bars} bars at {bars_per_day:g} bars per day, "
                    f"but {spec.name} needs at least {p.low:g} bars" + (f" and at most {p.high:g}" if p.high else ""),
                    fix="use a longer look-back, or data with more bars per day",
                )
            out.append(float(bars))
        else:
            out.append(float(p.encode(v)))
    return tuple(out)


class FeatureHub:
    """Computes the unique features of a plan with streaming state.

    ``rows[i]`` is the block row holding ``specs[i]``; ``warmup`` is the first
    bar at which every requested feature is valid (scoring starts there).
    """

    def __init__(self, specs: Sequence[str], bars_per_day: float = 390.0, kernel_of=None) -> None:
        self.bars_per_day = float(bars_per_day)
        self._kernel_of = kernel_of  # IndicatorSpec -> kernel to call (verification: bounds-checked plugins)
        self.specs = [str(parse_feature(s)) for s in specs]
        self._comps: list[_Computation] = []
        self.state_bytes = 0
        self._by_text: dict[str, _Computation] = {}
        self._next_row = N_BAR_ROWS
        registry = indicator_registry()
        rows, warm = [], []
        for text in self.specs:
            node = parse_feature(text)
            row, w = self._place(node, registry)
            rows.append(row)
            warm.append(w)
        self.rows = np.array(rows, dtype=np.int64)
        self.feature_warmup = np.array(warm, dtype=np.int64)
        self.warmup = int(max(warm, default=0))
        self.n_rows = self._next_row
        self._levels = _levels(self._comps)
        # per level: the computations that may share threads, and those (parallel kernels) that run alone
        self._runs = [
            (
                [c for c in level if not _uses_threads(self._kernel(c))],
                [c for c in level if _uses_threads(self._kernel(c))],
            )
            for level in self._levels
        ]

    # ----------------------------------------------------------- layout
    def _place(self, node: FeatureNode, registry) -> tuple[int, int]:
        """Row and warm-up of a (possibly output-selected) spec, adding computations as needed."""
        if node.is_column:
            return BAR_COLUMNS.index(node.name), 0
        base = node.base
        comp = self._by_text.get(str(base))
        if comp is None:
            spec = registry[base.name]
            in_rows, in_warm = [], []
            for inp in base.inputs:
                r, w = self._place(inp, registry)
                in_rows.append(r)
                in_warm.append(w)
            params = resolve_params(spec, base, self.bars_per_day)
            try:
                size = int(spec.state_size(*params))
                own_warm = int(spec.warmup(*params))
            except Exception as exc:
                raise PluginError(
                    f"{spec.module}.{spec.name}", f"state_size/warmup failed for {base}: {type(exc).__name__}: {exc}"
                ) from None
            if size < 0 or own_warm < 0:
                raise PluginError(f"{spec.module}.{spec.name}", f"negative state_size or warmup for {base}")
            self.state_bytes += 8 * max(size, 1)
            if self.state_bytes > STATE_BUDGET_BYTES:  # refuse before allocating, naming the culprit
                raise ConfigError(
                    "<features>",
                    f"feature {base} needs {8 * size / 2**20:,.0f} MiB of streaming state, and the features together "
                    f"more than the {STATE_BUDGET_BYTES // 2**20} MiB allowed (a window of {size:,} bars?)",
                    fix="use shorter windows: a window longer than the data cannot be scored anyway",
                )
            comp = _Computation(
                node=base,
                spec=spec,
                params=np.array(params, dtype=np.float64),
                state=np.zeros(max(size, 1), dtype=np.float64),
                input_rows=tuple(in_rows),
                out_start=self._next_row,
                warmup=own_warm + max(in_warm, default=0),
            )
            self._next_row += len(spec.outputs)
            self._comps.append(comp)
            self._by_text[str(base)] = comp
        out_index = comp.spec.outputs.index(node.output) if node.output else 0
        return comp.out_start + out_index, comp.warmup

    @property
    def computations(self) -> list[str]:
        """Canonical text of every computation the hub runs, in run order."""
        return [c.text for c in self._comps]

    def nodes(self) -> list[tuple]:
        """Every computation as (text, IndicatorSpec, resolved params, input rows, first output row)."""
        return [(c.text, c.spec, c.params, c.input_rows, c.out_start) for c in self._comps]

    def row_of(self, spec: str) -> int:
        return int(self.rows[self.specs.index(str(parse_feature(spec)))])

    def reset(self) -> None:
        """Forget all streaming state (start again from the first bar)."""
        for c in self._comps:
            c.state[:] = 0.0

    # ---------------------------------------------------------- compute
    def new_block(self, n: int) -> np.ndarray:
        return np.empty((self.n_rows, n), dtype=np.float64)

    def compute(self, bars: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Advance every computation over the next chunk of bars.

        ``bars`` is (5, n): open, high, low, close, volume.  Returns the block
        (rows, n); pass ``out`` to reuse a buffer of at least n columns.
        Computations whose inputs are ready run side by side on numba's threads
        (each has its own state and rows, so the result does not depend on it).
        """
        bars = np.asarray(bars, dtype=np.float64)
        n = bars.shape[1]
        block = self.new_block(n) if out is None else out[:, :n]
        block[:N_BAR_ROWS] = bars
        threads = numba.get_num_threads() if n >= PARALLEL_MIN_BARS else 1
        for side, alone in self._runs:
            for c in alone:  # a kernel with its own threads runs alone (numba's workqueue layer is not re-entrant)
                self._advance(c, block)
            workers = min(threads, len(side))
            if workers < 2:
                for c in side:
                    self._advance(c, block)
                continue
            groups = [side[k::workers] for k in range(workers)]
            failed = [e for e in _pool(workers).map(lambda g: self._advance_all(g, block), groups) if e is not None]
            if failed:  # the first failing computation in run order, as the serial loop would report it
                raise min(failed, key=lambda e: e[0])[1]
        return block

    def _advance_all(self, comps: list[_Computation], block: np.ndarray):
        """Run ``comps`` in order on a worker thread; returns (run position, error) of a failure, else None."""
        for c in comps:
            try:
                self._advance(c, block)
            except PluginError as exc:
                return self._comps.index(c), exc
        return None

    def _kernel(self, c: _Computation):
        return self._kernel_of(c.spec) if self._kernel_of else c.spec.kernel

    def _advance(self, c: _Computation, block: np.ndarray) -> None:
        rows = c.input_rows
        if len(rows) == 1 or all(b == a + 1 for a, b in zip(rows, rows[1:])):
            x = block[rows[0] : rows[0] + len(rows)]
        else:
            x = np.ascontiguousarray(block[list(rows)])
        dest = block[c.out_start : c.out_start + len(c.spec.outputs)]
        try:
            self._kernel(c)(x, c.params, c.state, dest)
        except Exception as exc:
            raise PluginError(
                f"{c.spec.module}.{c.spec.name}",
                f"the indicator kernel failed on {c.text}: {type(exc).__name__}: {exc}",
                fix="run `sweep check` on it for details",
            ) from None

    def compute_all(self, bars: np.ndarray, chunk: int | None = None) -> np.ndarray:
        """Compute over all bars (optionally in chunks) from a fresh state; returns the full block."""
        self.reset()
        n = bars.shape[1]
        if not chunk or chunk >= n:
            return self.compute(bars)
        out = self.new_block(n)
        for s in range(0, n, chunk):
            e = min(n, s + chunk)
            out[:, s:e] = self.compute(bars[:, s:e])
        return out


PARALLEL_MIN_BARS = 4096  # below this a chunk costs less than handing it to threads
_POOLS: dict[int, ThreadPoolExecutor] = {}
os.register_at_fork(after_in_child=_POOLS.clear)  # a forked child has none of the parent's threads


def _pool(workers: int) -> ThreadPoolExecutor:
    """One long-lived pool per size: starting threads for every chunk would cost more than small chunks take."""
    if workers not in _POOLS:
        _POOLS[workers] = ThreadPoolExecutor(workers, thread_name_prefix="feature-hub")
    return _POOLS[workers]


def _uses_threads(kernel) -> bool:
    """Whether ``kernel`` is a numba function compiled with ``parallel=True``."""
    return bool(getattr(kernel, "targetoptions", {}).get("parallel"))


def _levels(comps: list[_Computation]) -> list[list[_Computation]]:
    """Computations grouped so that each group needs only bar columns and earlier groups' rows."""
    level_of_row: dict[int, int] = {}
    levels: list[list[_Computation]] = []
    for c in comps:  # in run order, so a computation's inputs are placed before it
        k = max((level_of_row.get(r, -1) + 1 for r in c.input_rows), default=0)
        for r in range(c.out_start, c.out_start + len(c.spec.outputs)):
            level_of_row[r] = k
        if k == len(levels):
            levels.append([])
        levels[k].append(c)
    return levels


def chunk_for(n_rows: int, requested: int, budget_bytes: int = 256 * 2**20) -> int:
    """Chunk length that keeps one hub block within ``budget_bytes`` (at least 256 bars)."""
    fit = budget_bytes // max(1, n_rows * 8)
    return int(max(256, min(requested, fit)))
