"""The fast engine's driver: stream bars in chunks through the feature hub and the fused kernel.

``simulate`` runs a set of combinations of a plan over one universe (symbol)
and a scoring range of bars, and returns their metrics (and, on request,
events and equity curves).  Memory depends on the number of combinations and
the chunk length, never on their product: the hub block is (rows, chunk), the
portfolio bank (fields, combinations), event buffers are bounded per chunk.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import attrs
import numba
import numpy as np

from containers.data import Universe, to_bound
from containers.feature_hub import FeatureHub, chunk_for
from containers.kernel import load_kernel
from containers.kernelio import Bars, Books, Combos, Records, Tables
from containers.portfolio import EVENTS_PER_BAR, N_EV, P_INITIAL, drain_events, finalize, finalize_regimes, new_bank
from services import limits
from services.compiled import python_of
from services.errors import ConfigError, DataError, PluginError

from . import stages
from .expander import Plan, entry_rows
from .interrupts import STOP
from .stats.blocks import BlockLayout, BlockSpec, layout


@attrs.frozen(eq=False)
class KernelTables:
    """A plan's generated kernel and its service tables (``containers.kernelio.Tables``), built once per plan."""

    kernel: object
    tables: Tables
    regime_names: tuple  # per classifier entry

    @property
    def n_regimes(self) -> int:
        return self.tables.n_regimes

    @property
    def P(self) -> np.ndarray:  # noqa: N802 - the portfolio settings rows
        return self.tables.portfolio


def _unique_specs(spaces):
    specs, kinds = [], []
    for sp in spaces:
        spec = sp.entry.spec
        if spec not in specs:
            specs.append(spec)
        kinds += [specs.index(spec)] * sp.n
    return specs, np.array(kinds, dtype=np.int64)


def _stack_codes(spaces) -> np.ndarray:
    """Parameter codes of a role's entries, one row per (offset + index), padded to the widest entry."""
    width = max([sp.codes.shape[1] for sp in spaces] + [1])
    codes = np.zeros((max(1, sum(sp.n for sp in spaces)), width))
    for sp in spaces:
        codes[sp.offset : sp.offset + sp.n, : sp.codes.shape[1]] = sp.codes
    return codes


def _stack(spaces, hub_rows: np.ndarray, nan_row: int):
    """(codes, hub rows of each row's features (missing -> the NaN row), features per row)."""
    k = max([sp.feature_index.shape[1] for sp in spaces if sp.feature_index is not None] + [1])
    rows = np.full((max(1, sum(sp.n for sp in spaces)), k), nan_row, dtype=np.int64)
    for sp in spaces:
        if sp.feature_index is not None and sp.feature_index.size:
            fi = sp.feature_index
            rows[sp.offset : sp.offset + sp.n, : fi.shape[1]] = np.where(fi >= 0, hub_rows[np.maximum(fi, 0)], nan_row)
    return _stack_codes(spaces), rows, k


def build_tables(plan: Plan, hub: FeatureHub, loop: str = "barloop") -> KernelTables:
    """Service tables and the generated kernel for ``plan``; ``hub`` lays out the feature rows.

    ``loop="signalloop"``: the kernel is the signal loop of signal generation (same services).
    """
    nan_row = hub.n_rows  # the engine appends one all-NaN row to every block
    s_specs, s_kind = _unique_specs(plan.strategies)
    s_codes, s_rows, ks = _stack(plan.strategies, hub.rows, nan_row)
    if plan.classifiers:
        c_specs, c_kind = _unique_specs(plan.classifiers)
        c_codes, c_rows, kc = _stack(plan.classifiers, hub.rows, nan_row)
        c_entry = entry_rows(plan.classifiers)
        n_regimes = max(len(sp.entry.spec.regimes) for sp in plan.classifiers)
        names = tuple(sp.entry.spec.regimes for sp in plan.classifiers)
    else:
        c_specs, c_kind = [], np.zeros(1, dtype=np.int64)
        c_codes, c_rows, kc = np.zeros((1, 1)), np.full((1, 1), nan_row, dtype=np.int64), 0
        c_entry, n_regimes, names = np.zeros(1, dtype=np.int64), 1, (("all",),)
    n_ce = max(1, len(plan.classifiers))
    mask = np.full((max(1, plan.strategy_combinations), n_ce), -1, dtype=np.int64)
    for sp in plan.strategies:
        active = sp.entry.active_regimes
        if active is None:
            continue
        for e, csp in enumerate(plan.classifiers):
            bits = sum(1 << k for k, name in enumerate(csp.entry.spec.regimes) if name in active)
            mask[sp.offset : sp.offset + sp.n, e] = bits
    validators = validators_of(plan) if loop == "barloop" else []
    kernel = load_kernel(s_specs, c_specs, validators, ks, kc if plan.classifiers else 0, loop)
    tables = Tables(
        s_kind,
        np.ascontiguousarray(s_codes),
        s_rows,
        mask,
        c_kind,
        np.ascontiguousarray(c_codes),
        c_rows,
        c_entry,
        int(n_regimes),
        *settings_tables(plan),
    )
    return KernelTables(kernel, tables, names)


def validators_of(plan: Plan) -> list:
    """The specs of the plan's risk validators, in chain order."""
    return [sp.entry.spec for sp in plan.risk]


def settings_tables(plan: Plan) -> tuple:
    """(validator parameter rows, first row of each validator, portfolio rows, execution rows) of ``Tables``."""
    r_codes = _stack_codes(plan.risk)
    r_off = np.array([sp.offset for sp in plan.risk] or [0], dtype=np.int64)
    return (
        np.ascontiguousarray(r_codes),
        r_off,
        np.ascontiguousarray(plan.portfolio.codes),
        np.ascontiguousarray(plan.execution.codes),
    )


@attrs.define
class SimResult:
    """Output of one simulate call: metrics per combination and optional detail."""

    ids: np.ndarray
    metrics: dict
    regimes: dict | None
    events: list  # list of (ids, event array (m, N_EV)) batches
    equity: np.ndarray | None  # (n_combos, n_scored_bars) when recorded
    t_first: int
    t_last: int
    bank: np.ndarray
    containers: dict | None = None  # reference engine: containers by role
    events_delivered: int = 0  # reference engine: bus deliveries
    block_returns: np.ndarray | None = None  # (n_combos, n_blocks) when blocks were asked for
    blocks: BlockLayout | None = None


def _when(universe: Universe, t: int) -> str:
    return str(np.datetime64(int(universe.timestamps[t]), "ns").astype("datetime64[s]")).replace("T", " ")


def score_from_bar(universe: Universe, score_from: str | int) -> int:
    """The bar ``score_from`` names: a bar number as it is, a timestamp its first bar at or after it."""
    if isinstance(score_from, int):
        return score_from
    return int(np.searchsorted(universe.timestamps, to_bound(score_from), side="left"))


def scoring_range(
    hub: FeatureHub, universe: Universe, start: int = 0, stop: int | None = None, score_from: str | int | None = None
) -> tuple[int, int]:
    """First and last scored bar: after the longest warm-up and ``score_from``, inside [start, stop).

    ``score_from`` (the config's) must lie at or after the warm-up and leave at least 2 bars to score
    before ``stop``, else ConfigError: a window that starts later is unaffected by it.
    """
    stop = universe.n if stop is None else min(stop, universe.n)
    t_first = max(hub.warmup, start)
    t_last = stop - 1
    longest = hub.specs[int(np.argmax(hub.feature_warmup))] if hub.specs else "none"
    if score_from is not None:
        b = score_from_bar(universe, score_from)
        where = f"{universe.symbol}: bar {b}" + (f", {_when(universe, b)}" if b < universe.n else "")
        if b > universe.n - 2:
            end = f"the last bar is {universe.n - 1}, {_when(universe, -1)}"
            raise ConfigError(
                ("score_from",),
                (
                    f"too close to the end of the data ({where}; {end})"
                    if b < universe.n
                    else f"past the end of the data ({universe.symbol}: {end})"
                )
                + ": at least 2 bars must remain to score",
                value=score_from,
                fix=f"use a score_from up to {_when(universe, universe.n - 2)} (bar {universe.n - 2}), or more data",
            )
        if b < hub.warmup:
            raise ConfigError(
                ("score_from",),
                f"inside the warm-up ({where}): {longest} needs {hub.warmup} bars of warm-up, so the first bar "
                f"every combination of the grid can be scored on is bar {hub.warmup} ({_when(universe, hub.warmup)})",
                value=score_from,
                fix=f"use score_from: {_when(universe, hub.warmup)} (or bar {hub.warmup}) or later, "
                "or shorten that feature's window",
            )
        if b > t_last - 1:
            raise ConfigError(
                ("score_from",),
                f"after the end of a window ({where}; the window has bars {start} to {t_last}, "
                f"{_when(universe, start)} to {_when(universe, t_last)}): nothing of it would be scored",
                value=score_from,
                fix=f"use a score_from up to {_when(universe, t_last - 1)} (bar {t_last - 1}), or end that window "
                "later (train/test split, walk-forward train/test/step, Monte Carlo holdout)",
            )
        t_first = max(t_first, b)
    if t_last - t_first < 1:
        raise DataError(
            f"{universe.source} ({universe.symbol})",
            f"{stop - start} bars to score but the longest warm-up needs {hub.warmup} ({longest}); "
            "at least 2 bars must remain after it",
            fix="use more data (wider start/end, a finer timeframe) or shorter windows",
        )
    return t_first, t_last


def simulate(
    plan: Plan,
    universe: Universe,
    ids: np.ndarray,
    tables: KernelTables | None = None,
    *,
    start: int = 0,
    stop: int | None = None,
    record_events: bool = False,
    record_equity: bool = False,
    on_events: Callable | None = None,
    progress: Callable[[int], None] | None = None,
    chunk_size: int | None = None,
    threads: int | None = None,
    features: np.ndarray | None = None,
    timings: dict | None = None,
    blocks: BlockSpec | None = None,
    source=None,
) -> SimResult:
    """Backtest combinations ``ids`` of ``plan`` on ``universe`` in one streaming pass.

    Bars before ``start`` only warm features up; scoring runs from
    max(warm-up, start, the config's ``score_from``) to ``stop`` - 1.  ``on_events(ids, array)`` receives
    event batches as the kernel emits them (else they are collected).
    ``features`` is the hub's whole block for this universe (a
    ``FeatureBlock``); when given, the kernel runs on its chunks instead of computing them.
    ``timings``, if given, receives the seconds spent in the feature hub
    (``features_s``) and in the combination loop (``loop_s``).  ``blocks``
    asks for every combination's return per block (a day, say) of the
    scored bars, accumulated in the same pass (``SimResult.block_returns``).
    ``source`` (a ``sweep.replay.SignalSource``) replays stored signals instead: the same bar loop,
    its block holding each signal pair's signal and regime rows; no feature is computed.
    """
    ids = np.asarray(ids, dtype=np.int64)
    hub = FeatureHub(plan.features, universe.bars_per_day)  # (its warm-up decides the first scored bar)
    if source is None:
        tables = tables or build_tables(plan, hub)
    t_first, t_last = scoring_range(hub, universe, start, stop, plan.config.score_from)
    if threads:
        numba.set_num_threads(min(int(threads), numba.config.NUMBA_NUM_THREADS))
    d = plan.decompose(ids)
    cs = np.ascontiguousarray(d["strategy"].astype(np.int64))
    cc = np.ascontiguousarray(d["classifier"].astype(np.int64))
    if source is not None:  # each combination reads its signal pair's rows of the block
        source = source.bind(cs, cc)
        cs = cc = source.index
        tables = source.tables
    cp = np.ascontiguousarray(d["portfolio"].astype(np.int64))
    ce = np.ascontiguousarray(d["execution"].astype(np.int64))
    cr = (
        np.ascontiguousarray(plan.risk_indices(d["risk"]).astype(np.int64))
        if plan.risk
        else np.zeros((len(ids), 1), np.int64)
    )
    n = len(ids)
    bank, reg = new_bank(n, tables.P[cp, P_INITIAL], tables.n_regimes)
    combos = Combos(cs, cc, cr, cp, ce)
    if source is not None:
        chunk = min(source.chunk, t_last + 1)
    elif features is not None:  # the whole block is there, chunk by chunk: run on its parts as they are
        chunk = features.chunk
    else:
        chunk = min(
            chunk_for(hub.n_rows + 1, chunk_size or plan.config.chunk_size, limits.HUB_BUDGET_BYTES), t_last + 1
        )
    per_combo = limits.EVENT_BUDGET_BYTES // max(1, n * N_EV * 8)
    cap = int(np.clip(per_combo, 4 * EVENTS_PER_BAR, limits.EVENTS_PER_COMBO_MAX)) if record_events else 1
    ev = np.zeros((n if record_events else 1, cap, N_EV))
    ev_n = np.zeros((n if record_events else 1, 8), dtype=np.int64)[:, 0]  # a cache line per counter (threads)
    n_scored = t_last - t_first + 1
    equity = np.empty((n, n_scored)) if record_equity else None
    block = np.empty((hub.n_rows + 1, chunk if features is None and source is None else 1))
    block[hub.n_rows] = np.nan
    start_col = np.zeros(n, dtype=np.int64)
    done = np.zeros(n, dtype=np.int64)
    books = Books(bank, reg, start_col, done)
    lay = layout(universe.timestamps, t_first, t_last, blocks, universe.bars_per_day) if blocks else None
    bret = np.zeros((n, lay.n)) if lay is not None else np.zeros((1, 1))
    rec_blk = lay is not None
    blk_all = lay.of_bar if lay is not None else np.zeros(t_last + 1, dtype=np.int64)
    collected: list = []
    prev_range = 0.0
    for t0 in range(0, t_last + 1, chunk):
        t1 = min(t_last + 1, t0 + chunk)
        ncol = t1 - t0
        tick = time.perf_counter()
        if source is not None:
            B = source.block(universe, t0, t1)
        elif features is not None:
            B = features.parts[t0 // chunk]  # wider than ncol in the last chunk: the kernel stops at t_last
        else:
            B = block[:, :ncol] if ncol == chunk else np.ascontiguousarray(block[:, :ncol])
            if ncol != chunk:
                B[hub.n_rows] = np.nan
            hub.compute(universe.ohlcv(t0, t1), out=B)
        tock = time.perf_counter()
        if t1 - 1 >= t_first:
            eq_chunk = np.empty((n, ncol)) if record_equity else np.empty((1, 1))
            start_col[:] = 0
            while True:
                try:
                    tables.kernel(
                        Bars(B, t0, prev_range, t_first, t_last),
                        tables.tables,
                        combos,
                        books,
                        Records(
                            ev, ev_n, cap, record_events, eq_chunk, record_equity, blk_all[t0:t1], bret, rec_blk, STOP
                        ),
                    )
                except Exception as exc:  # a service raised inside the compiled loop (a plugin, at some bar)
                    raise _service_failure(plan, B, hub, t0, t1, exc) from None
                if record_events and ev_n.any():
                    batch = _drain(ids, ev, ev_n)
                    (on_events(*batch) if on_events else collected.append(batch))
                unfinished = done < ncol
                if not unfinished.any():
                    break
                if STOP[0]:  # interrupted: let the main thread raise (it runs its handler now)
                    raise KeyboardInterrupt
                start_col[:] = np.where(unfinished, done, ncol)
            stages.add("kernel (bar loop)", time.perf_counter() - tock)
            if timings is not None:
                timings["loop_s"] = timings.get("loop_s", 0.0) + time.perf_counter() - tock
            if record_equity:
                a = max(t0, t_first)
                equity[:, a - t_first : t1 - t_first] = eq_chunk[:, a - t0 : ncol]
            if progress:
                progress(n * (t1 - max(t0, t_first)))
        stages.add("features (chunks)", tock - tick)
        if timings is not None:
            timings["features_s"] = timings.get("features_s", 0.0) + tock - tick
        prev_range = float(universe.high[t1 - 1] - universe.low[t1 - 1])
    metrics = finalize(bank, reg, float(universe.close[t_last]), universe.bars_per_year)
    regimes = finalize_regimes(reg, universe.bars_per_year) if plan.classifiers else None
    return SimResult(
        ids, metrics, regimes, collected, equity, t_first, t_last, bank, block_returns=bret if lay else None, blocks=lay
    )


def _service_failure(plan: Plan, block: np.ndarray, hub: FeatureHub, t0: int, t1: int, exc: Exception):
    """A PluginError for an exception raised in the fused kernel: which plugin, at which bar, if it can be found."""
    from services.causality import PropertyFailure

    from .kit.streaming import bounds_checked, service_bar_error

    for sp in (*plan.strategies, *plan.classifiers):
        spec = sp.entry.spec
        for r in np.unique(np.linspace(0, sp.n - 1, min(sp.n, 16)).astype(np.int64)):
            fi = sp.feature_index[r] if sp.feature_index is not None else np.zeros(0, np.int64)
            feats = np.ascontiguousarray(block[[hub.rows[k] for k in fi if k >= 0], : t1 - t0])
            call = bounds_checked(spec.func) if not spec.builtin else spec.func
            try:
                service_bar_error(spec, call, feats, sp.codes[r], offset=t0)
            except PropertyFailure as found:
                return PluginError(
                    f"{spec.module}.{python_of(spec.func).__name__}",
                    f"raised inside the run: {found} with parameters {sp.values(int(r))}",
                    fix=f"fix the function, then `sweep check {spec.name}`",
                )
    return PluginError(
        "the fused kernel",
        f"a service raised at bars {t0:,}..{t1 - 1:,}: {type(exc).__name__}: {str(exc).splitlines()[0]}",
        fix="run `sweep check` on the plugins the config uses",
    )


@attrs.frozen(eq=False)
class FeatureBlock:
    """The hub's rows for every bar of a universe, stored chunk by chunk, as the kernel reads them.

    ``parts[k]`` is chunk k, (hub rows + 1, ``chunk``) C-contiguous: the bars ``k * chunk`` onwards,
    then the all-NaN row the service tables point missing features at (the tail of the last chunk is
    NaN too).  The kernel runs on a part as it is: no copy per chunk and pass.
    """

    parts: np.ndarray  # (chunks, rows + 1, chunk)
    chunk: int


def written_once(shape: tuple) -> np.ndarray:
    """An empty float64 array for a big block that is filled once and then only read, on ordinary pages.

    numpy advises the kernel to back allocations of 4 MiB and more with huge pages; where transparent
    huge pages are on ``madvise`` with ``defrag: madvise`` (common on VMs) each first touch may then
    compact memory synchronously: filling a 1.6 GB feature block took 8.0 s instead of 1.2 s on the
    benchmark machine.  The advice is dropped for this allocation only (numpy's private switch, absent
    in some builds: then nothing changes).

    >>> written_once((2, 3)).shape
    (2, 3)
    """
    switch = getattr(getattr(np, "_core", np).multiarray, "_set_madvise_hugepage", None)
    before = switch(False) if switch else None
    try:
        return np.empty(shape)
    finally:
        if switch:
            switch(before)


def feature_block(plan: Plan, universe: Universe, budget_bytes: int | None = None) -> FeatureBlock | None:
    """The hub's rows for every bar of ``universe``, computed once, if they fit in ``budget_bytes``.

    Shards, the top-k detail pass and walk-forward windows then reuse it
    instead of streaming the indicators again (worth it for costly ones such
    as the HMM).  Returns None when it would not fit: they stream as usual.
    """
    hub = FeatureHub(plan.features, universe.bars_per_day)
    if (hub.n_rows + 1) * universe.n * 8 > (limits.feature_cache_bytes() if budget_bytes is None else budget_bytes):
        return None
    chunk = min(chunk_for(hub.n_rows + 1, plan.config.chunk_size, limits.HUB_BUDGET_BYTES), universe.n)
    n_chunks = -(-universe.n // chunk)
    parts = written_once((n_chunks, hub.n_rows + 1, chunk))
    parts[:, hub.n_rows] = np.nan
    for k in range(n_chunks):
        t0, t1 = k * chunk, min(universe.n, (k + 1) * chunk)
        hub.compute(universe.ohlcv(t0, t1), out=parts[k])
        parts[k, :, t1 - t0 :] = np.nan
    parts.flags.writeable = False  # as a Ray worker gets it from the object store: one numba specialisation
    return FeatureBlock(parts, chunk)


def _drain(ids: np.ndarray, ev: np.ndarray, ev_n: np.ndarray):
    """The events the kernel buffered, as (owner, columns EV_COLUMNS x events); the buffers are reset."""
    return drain_events(ev, ev_n, ids)
