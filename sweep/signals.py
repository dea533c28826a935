"""Signal generation: every signal pair's (signal, regime) series, computed once and kept in the store.

A plan's signal pairs are its strategy rows times its classifier rows (one
implicit classifier when none is configured), in the order combination ids
use.  Each pair has a content hash (its strategy's and classifier's, folded)
and a code version: the code fingerprint (``services.fingerprint``) of its
strategy, its classifier, every indicator their features use and the
engine's files - so a changed constant, helper, service or indicator is
never mistaken for a stored one.  ``generate`` computes the pairs a context does not hold yet,
in groups (one store part each), with the signal loop of the plan's services.
"""

from __future__ import annotations

import hashlib
import time

import attrs
import numpy as np
import polars as pl

from containers.data import Universe
from containers.feature_hub import FeatureHub, chunk_for
from containers.kernelio import Bars
from containers.signalsteps import drain_changes
from services import limits
from services.fingerprint import code_fingerprint, combine, engine_fingerprint

from . import stages
from .engine import FeatureBlock, build_tables
from .expander import Plan, _splitmix, entry_rows
from .frames import _gather, _param_series, hex64
from .interrupts import STOP
from .manifest import indicator_code
from .signal_store import Context

PAIRS_PER_PART = 4096  # signal pairs computed in one pass over the bars and written as one part


@attrs.frozen(eq=False)
class Pairs:
    """A plan's signal pairs: strategy and classifier row of each, content hash, code version."""

    strategy: np.ndarray
    classifier: np.ndarray
    hashes: np.ndarray  # uint64
    versions: np.ndarray  # str

    def __len__(self) -> int:
        return int(self.strategy.shape[0])

    def of(self, plan: Plan, s: np.ndarray, c: np.ndarray) -> np.ndarray:
        """Pair index of (strategy row, classifier row) arrays."""
        return np.asarray(s, dtype=np.int64) * max(1, plan.classifier_combinations) + np.asarray(c, dtype=np.int64)


def plan_pairs(plan: Plan) -> Pairs:
    """Every signal pair of ``plan``: strategy-major, classifier fastest."""
    n_s, n_c = plan.strategy_combinations, max(1, plan.classifier_combinations)
    s = np.repeat(np.arange(n_s, dtype=np.int64), n_c)
    c = np.tile(np.arange(n_c, dtype=np.int64), n_s)
    s_h = np.concatenate([sp.hashes for sp in plan.strategies])
    c_h = np.concatenate([sp.hashes for sp in plan.classifiers]) if plan.classifiers else np.zeros(1, np.uint64)
    hashes = _splitmix(s_h[s] ^ _splitmix(c_h[c] ^ np.uint64(0x516E41)))
    s_v = np.array([_entry_version(plan, sp) for sp in plan.strategies])
    c_v = np.array([_entry_version(plan, sp) for sp in plan.classifiers]) if plan.classifiers else np.array(["-"])
    s_e = entry_rows(plan.strategies)[s]
    c_e = entry_rows(plan.classifiers)[c] if plan.classifiers else np.zeros(len(c), dtype=np.int64)
    versions = np.array([_fold(a, b) for a, b in zip(s_v[s_e], c_v[c_e])]) if len(s) else np.array([], dtype=str)
    return Pairs(s, c, hashes, versions)


def _fold(a: str, b: str) -> str:
    return hashlib.blake2b(f"{a}|{b}".encode(), digest_size=6).hexdigest()


def _entry_version(plan: Plan, space) -> str:
    """Code version of one strategy or classifier entry: its code, its indicators' and the engine's."""
    spec = space.entry.spec
    idx = space.feature_index
    texts = {plan.features[k] for k in idx.ravel() if k >= 0} if idx is not None and idx.size else set()
    return combine(
        f"{spec.role}:{spec.name}", code_fingerprint(spec.func), *indicator_code(texts), engine_fingerprint()
    )[:16]


def index_frame(plan: Plan, pairs: Pairs, k: np.ndarray, changes: np.ndarray) -> pl.DataFrame:
    """The store's index rows of pairs ``k``: pair, pair_hash, code_version, changes, services, parameters."""
    s, c = pairs.strategy[k], pairs.classifier[k]
    cols = {
        "pair": pl.Series(pairs.hashes[k]),
        "pair_hash": hex64(pairs.hashes[k]),
        "code_version": pl.Series(pairs.versions[k], dtype=pl.Utf8),
        "changes": pl.Series(np.asarray(changes, dtype=np.int64)),
        "strategy": _gather([sp.entry.type for sp in plan.strategies], entry_rows(plan.strategies)[s]),
    }
    cols |= _param_series("strategy", list(plan.strategies), s)
    if plan.classifiers:
        cols["classifier"] = _gather([sp.entry.type for sp in plan.classifiers], entry_rows(plan.classifiers)[c])
        cols |= _param_series("classifier", list(plan.classifiers), c)
    gates = [",".join(sp.entry.active_regimes or ()) for sp in plan.strategies]
    cols["active_regimes"] = _gather(gates, entry_rows(plan.strategies)[s])
    return pl.DataFrame(cols)


def context_info(u: Universe) -> dict:
    """What a store context records about the bars its signals were made on."""
    d = u.describe()
    return {k: d[k] for k in ("symbol", "source", "bars", "first", "last", "fingerprint", "bars_per_day")}


def generate(
    plan: Plan,
    u: Universe,
    ctx: Context,
    pairs: Pairs,
    todo: np.ndarray,
    features: FeatureBlock | None,
    progress=None,
) -> int:
    """Compute pairs ``todo`` (indices into ``pairs``) over every bar of ``u`` and add them to ``ctx``.

    Returns the number of changes stored.  Each group of up to PAIRS_PER_PART pairs is one pass over
    the bars and one store part (a kill loses at most the group being computed).
    """
    if not len(todo):
        return 0
    hub = FeatureHub(plan.features, u.bars_per_day)
    kt = build_tables(plan, hub, loop="signalloop")
    stored = 0
    for a in range(0, len(todo), PAIRS_PER_PART):
        group = np.asarray(todo[a : a + PAIRS_PER_PART], dtype=np.int64)
        owner, bars, vals = _one_pass(kt, hub, u, pairs, group, features, progress, plan.config.chunk_size)
        changes = pl.DataFrame(
            {
                "pair": pl.Series(pairs.hashes[group][owner]),
                "bar": bars,
                "signal": vals[:, 0],
                "regime": pl.Series(vals[:, 1].astype(np.int16)),
            }
        )
        counts = np.bincount(owner, minlength=len(group))
        with stages.stage("signal store (write)"):
            ctx.write(index_frame(plan, pairs, group, counts), changes)
        stored += changes.height
    return stored


def _one_pass(kt, hub: FeatureHub, u: Universe, pairs: Pairs, group: np.ndarray, features, progress, chunk_size):
    """(owner position in ``group``, bar, (signal, regime)) of every change, pair by pair in bar order."""
    n_p = len(group)
    ps = np.ascontiguousarray(pairs.strategy[group])
    pc = np.ascontiguousarray(pairs.classifier[group])
    cap = int(np.clip(limits.EVENT_BUDGET_BYTES // max(1, n_p * 24), 64, limits.EVENTS_PER_COMBO_MAX))
    out_bar = np.zeros((n_p, cap), dtype=np.int64)
    out_val = np.zeros((n_p, cap, 2))
    out_n = np.zeros(n_p, dtype=np.int64)
    last = np.zeros((2, n_p))
    last[1] = -1.0  # no regime yet: bar 0 is always recorded
    start = np.zeros(n_p, dtype=np.int64)
    done = np.zeros(n_p, dtype=np.int64)
    chunk = features.chunk if features is not None else chunk_for(hub.n_rows + 1, chunk_size, limits.HUB_BUDGET_BYTES)
    block = None
    if features is None:
        hub.reset()  # every pass streams the indicators from bar 0
    owners, bars, vals = [], [], []
    t_last = u.n - 1
    for t0 in range(0, u.n, chunk):
        t1 = min(u.n, t0 + chunk)
        tick = time.perf_counter()
        if features is not None:
            B = features.parts[t0 // chunk]
        else:
            if block is None or block.shape[1] != t1 - t0:
                block = np.empty((hub.n_rows + 1, t1 - t0))
                block[hub.n_rows] = np.nan
            hub.compute(u.ohlcv(t0, t1), out=block)
            B = block
        stages.add("features (chunks)", time.perf_counter() - tick)
        tock = time.perf_counter()
        ncol = t1 - t0
        start[:] = 0
        while True:
            kt.kernel(Bars(B, t0, 0.0, 0, t_last), kt.tables, ps, pc, last, out_bar, out_val, out_n, start, done)
            if out_n.any():
                o, b, v = drain_changes(out_bar, out_val, out_n)
                owners.append(o)
                bars.append(b)
                vals.append(v)
            unfinished = done < ncol
            if not unfinished.any():
                break
            if STOP[0]:
                raise KeyboardInterrupt
            start[:] = np.where(unfinished, done, ncol)
        stages.add("signal loop", time.perf_counter() - tock)
        if progress:
            progress(n_p * ncol)
    owner = np.concatenate(owners) if owners else np.zeros(0, dtype=np.int64)
    bar = np.concatenate(bars) if bars else np.zeros(0, dtype=np.int64)
    val = np.concatenate(vals) if vals else np.zeros((0, 2))
    order = np.lexsort((bar, owner))  # pair by pair, in bar order (drains interleave pairs)
    return owner[order], bar[order], val[order]
