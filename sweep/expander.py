"""The auto-expander: config -> Plan.

Strategy entries are alternatives (their combinations add up), so are
classifier entries; strategy combinations multiply classifier combinations
(no classifier: one implicit regime), then risk, portfolio and execution
grids multiply in.  Combination ids are positions in a canonical order that
does not depend on YAML key order; each combination also has a content hash
that depends only on what it is (types and parameter values).

The combination index is laid out as ``[outer][inner][risk][portfolio][execution]``
where *outer* is whichever of strategies and classifiers has fewer combinations.

Example:
    >>> plan = expand(load_config("examples/seed.yaml"))
    >>> plan.combinations, plan.containers()
    (24, {'naive': 75, 'stateless': 27})
"""

from __future__ import annotations

import hashlib
import json
import math
import string
from functools import lru_cache

import attrs
import numpy as np

from patterns import load_patterns
from services import limits
from services.errors import ConfigError
from services.featurespec import FeatureNode, FeatureSpecError, parse_feature
from services.state import N_STATE

from .config import ServiceEntry, SettingsGrid, SweepConfig, load_config
from .grid import Axis
from .topology import ContainerPlan, build_plans, reduction

MATERIALISE_LIMIT = limits.MATERIALISE_LIMIT
_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _content_hash(obj) -> int:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def _splitmix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on uint64 arrays (wrapping arithmetic, same on every machine)."""
    with np.errstate(over="ignore"):
        x = (x + np.uint64(0x9E3779B97F4A7C15)) & _M64
        x = ((x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _M64
        x = ((x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _M64
        return x ^ (x >> np.uint64(31))


def _axis_grid(axes: tuple[Axis, ...]) -> np.ndarray:
    """Cartesian product of axis indices, first axis slowest: shape (n, len(axes))."""
    sizes = [a.size for a in axes]
    n = math.prod(sizes)
    if not axes:
        return np.zeros((1, 0), dtype=np.int64)
    return np.stack(np.unravel_index(np.arange(n, dtype=np.int64), sizes), axis=1)


@attrs.frozen(eq=False)
class Space:
    """The pruned combinations of one service entry or one settings block.

    ``codes`` holds the float64 parameter codes numba sees, one row per
    combination; ``hashes`` their content hashes.
    """

    role: str
    label: str
    axes: tuple[Axis, ...]
    codes: np.ndarray
    hashes: np.ndarray
    entry: ServiceEntry | None = None
    feature_index: np.ndarray | None = None  # (n, k) indices into Plan.features, -1 padded
    offset: int = 0

    @property
    def n(self) -> int:
        return self.codes.shape[0]

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.axes)

    def values(self, i: int) -> dict:
        """Decoded parameter values of row ``i``."""
        return {a.name: a.param.decode(self.codes[i, j]) for j, a in enumerate(self.axes)}


def entry_rows(spaces) -> np.ndarray:
    """Index of the entry each row of a role's spaces belongs to (rows in offset order)."""
    return np.concatenate([np.full(sp.n, e, dtype=np.int64) for e, sp in enumerate(spaces)])


def _entry_space(entry: ServiceEntry, seen: dict) -> Space:
    raw = entry.raw_size
    if raw > MATERIALISE_LIMIT:
        raise ConfigError(
            entry.path + ("parameters",),
            f"this entry's grid has {raw:,} raw combinations, too many to enumerate",
            fix="use coarser steps or split the entry; the limit per entry is "
            f"{MATERIALISE_LIMIT:,} before constraints",
        )
    idx = _axis_grid(entry.axes)
    codes_per_axis = [np.array(a.codes(), dtype=np.float64) for a in entry.axes]
    codes = np.empty(idx.shape, dtype=np.float64)
    for j, c in enumerate(codes_per_axis):
        codes[:, j] = c[idx[:, j]]
    if entry.constraints:
        # numeric codes are the values themselves; choices are compared by code
        cols = {a.name: codes[:, j] for j, a in enumerate(entry.axes)}
        choices = {a.name: a.param.choices for a in entry.axes if a.param.kind == "choice"}
        keep = np.ones(codes.shape[0], dtype=bool)
        for c in entry.constraints:
            keep &= c.mask(cols, choices)
        codes = codes[keep]
        if codes.shape[0] == 0:
            raise ConfigError(
                entry.path + ("constraints",),
                "the constraints rule out every combination of this entry",
                value=[c.text for c in entry.constraints],
                fix="loosen the constraints or widen the grids",
            )
    # the same service and parameters listed by two entries is one combination
    key = (entry.type, entry.active_regimes)
    if key in seen:
        prior = seen[key]
        rows = [r.tobytes() for r in codes]
        mask = np.array([r not in prior for r in rows], dtype=bool)
        prior.update(rows)
        codes = codes[mask]
    else:
        seen[key] = {r.tobytes() for r in codes} if len(codes) < 1_000_000 else set()
    base = {"role": entry.role, "type": entry.type, "active_regimes": sorted(entry.active_regimes or [])}
    hashes = content_hashes(base, entry.axes, codes)
    return Space(entry.role, entry.label, entry.axes, np.ascontiguousarray(codes), hashes, entry)


def content_hashes(base: dict, axes, codes: np.ndarray) -> np.ndarray:
    """One content hash per row of ``codes`` (uint64): what the service is (``base``) and its parameter values.

    The same at every grid size, in every process and whatever the YAML key order: each axis (taken
    in name order) mixes in the hash of its name and of the row's decoded value (hashed once per
    distinct value), so a combination keeps its hash when its entry grows or other entries are added.
    """
    h = np.full(codes.shape[0], _content_hash(base), dtype=np.uint64)
    for j in sorted(range(len(axes)), key=lambda k: axes[k].name):
        a = axes[j]
        values, inverse = np.unique(codes[:, j], return_inverse=True)
        per_value = np.array([_content_hash([a.name, a.param.decode(v)]) for v in values], dtype=np.uint64)
        h = _splitmix(h ^ per_value[inverse.ravel()])
    return h


def _settings_space(grid: SettingsGrid) -> Space:
    idx = _axis_grid(grid.axes)
    codes = np.empty(idx.shape, dtype=np.float64)
    for j, a in enumerate(grid.axes):
        codes[:, j] = np.array(a.codes(), dtype=np.float64)[idx[:, j]]
    return Space(grid.role, grid.role, grid.axes, codes, content_hashes({"role": grid.role}, grid.axes, codes))


@lru_cache(maxsize=65_536)
def _canonical(text: str) -> str:
    return str(parse_feature(text))


def _template_fields(template: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(f for _, f, _, _ in string.Formatter().parse(template) if f))


def _unique_rows(cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique rows of a 2-D code array and the inverse map, via a 1-D mixed-radix key (fast)."""
    n, k = cols.shape
    if k == 0:
        return np.zeros((1 if n else 0, 0)), np.zeros(n, dtype=np.int64)
    parts, sizes = [], []
    for j in range(k):
        u, inv = np.unique(cols[:, j], return_inverse=True)
        parts.append(inv.reshape(-1))
        sizes.append(len(u))
    key = np.ravel_multi_index(parts, sizes) if math.prod(sizes) < 2**62 else None
    if key is None:  # pragma: no cover - astronomically many distinct values
        uniq, inverse = np.unique(cols, axis=0, return_inverse=True)
        return uniq, inverse.reshape(-1)
    ukey, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    return cols[first], inverse.reshape(-1)


def _attach_features(space: Space, features: dict[str, int]) -> Space:
    """Compute the canonical feature specs of every row and index them in ``features``.

    Template features are evaluated once per distinct value of the parameters
    each template names (a 3000 x 3000 MA grid formats 3000 specs per
    template, not 9 million).
    """
    spec = space.entry.spec
    names = space.param_names
    if callable(spec.features):
        groups = [(list(range(len(names))), None)]
    else:
        groups = [([names.index(f) for f in _template_fields(t) if f in names], t) for t in spec.features]
    columns: list[np.ndarray] = []
    for used, template in groups:
        uniq, inverse = (
            _unique_rows(space.codes[:, used]) if space.n else (np.zeros((0, len(used))), np.zeros(0, np.int64))
        )
        table: list[list[int]] = []
        for u in uniq:
            values = spec.defaults()
            for j, col in enumerate(used):
                values[names[col]] = space.axes[col].param.decode(u[j])
            try:
                texts = [template.format(**values)] if template is not None else spec.feature_texts(values)
                canon = [_canonical(t) for t in texts]
            except (FeatureSpecError, KeyError, IndexError, ValueError, TypeError) as exc:
                raise ConfigError(
                    space.entry.path + ("type",),
                    f"{spec.title} declares a feature that cannot be used: {exc}",
                    value=space.entry.type,
                    fix="fix the feature specs in the service's decorator (see `sweep services --indicators`)",
                ) from None
            table.append([features.setdefault(c, len(features)) for c in canon])
        width = max((len(r) for r in table), default=0)
        arr = np.full((len(table), width), -1, dtype=np.int64)
        for i, r in enumerate(table):
            arr[i, : len(r)] = r
        columns.append(arr[inverse] if space.n else np.zeros((0, width), dtype=np.int64))
    index = np.concatenate(columns, axis=1) if columns else np.zeros((space.n, 0), dtype=np.int64)
    return attrs.evolve(space, feature_index=np.ascontiguousarray(index))


def _all_nodes(specs) -> dict[str, FeatureNode]:
    """Every indicator computation the hub runs, dependencies included (by canonical text)."""
    out: dict[str, FeatureNode] = {}

    def walk(node: FeatureNode):
        if node.is_column:
            return
        for i in node.inputs:
            walk(i)
        out.setdefault(str(node.base), node.base)

    for s in specs:
        walk(parse_feature(s))
    return out


@attrs.frozen(eq=False)
class Plan:
    """What a sweep will run: combinations, features, container plans, memory.

    Build it with :func:`expand`.  ``Plan.to_json()`` is the machine-readable
    summary printed by ``sweep expand --json``.
    """

    config: SweepConfig
    strategies: tuple[Space, ...]
    classifiers: tuple[Space, ...]
    risk: tuple[Space, ...]
    portfolio: Space
    execution: Space
    features: tuple[str, ...]
    feature_nodes: dict
    naive_feature_count: int
    outer: str
    naive: ContainerPlan
    stateless: ContainerPlan
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()  # what makes results misleading (look-ahead-prone fills, copied results)
    n_bars: int | None = None

    # ------------------------------------------------------------- counts
    @property
    def strategy_combinations(self) -> int:
        return sum(s.n for s in self.strategies)

    @property
    def classifier_combinations(self) -> int:
        """Classifier combinations; 1 (the implicit single regime) when none is configured."""
        return sum(s.n for s in self.classifiers) or 1

    @property
    def risk_combinations(self) -> int:
        return math.prod(s.n for s in self.risk)

    @property
    def settings_combinations(self) -> int:
        return self.risk_combinations * self.portfolio.n * self.execution.n

    @property
    def combinations(self) -> int:
        return self.strategy_combinations * self.classifier_combinations * self.settings_combinations

    @property
    def sizes(self) -> tuple[int, int, int, int, int]:
        """Radix of the combination index: (outer, inner, risk, portfolio, execution)."""
        s, c = self.strategy_combinations, self.classifier_combinations
        outer, inner = (c, s) if self.outer == "classifier" else (s, c)
        return outer, inner, self.risk_combinations, self.portfolio.n, self.execution.n

    def reduction(self) -> float:
        return reduction(self.naive, self.stateless)

    def containers(self) -> dict[str, int]:
        return {"naive": self.naive.total, "stateless": self.stateless.total}

    def services(self) -> dict[str, int]:
        out = {}
        for role, key in (("strategy", "strategy"), ("classifier", "classifier"), ("risk", "risk")):
            if role in self.stateless.services:
                out[key] = self.stateless.services[role]
        return out

    # ------------------------------------------------------ decomposition
    def decompose(self, ids) -> dict[str, np.ndarray]:
        """Component indices of combination ids: strategy, classifier, risk, portfolio, execution."""
        ids = np.asarray(ids, dtype=np.int64)
        o, i, r, p, e = np.unravel_index(ids, self.sizes)
        s_idx, c_idx = (i, o) if self.outer == "classifier" else (o, i)
        return {"strategy": s_idx, "classifier": c_idx, "risk": r, "portfolio": p, "execution": e}

    def compose(self, strategy, classifier, risk=0, portfolio=0, execution=0):
        """Combination id from component indices (inverse of :meth:`decompose`)."""
        outer, inner = (classifier, strategy) if self.outer == "classifier" else (strategy, classifier)
        return np.ravel_multi_index((outer, inner, risk, portfolio, execution), self.sizes)

    def risk_indices(self, r) -> np.ndarray:
        """Per-validator row indices for risk combination indices ``r`` (last validator fastest)."""
        sizes = [s.n for s in self.risk] or [1]
        return np.stack(np.unravel_index(np.asarray(r, dtype=np.int64), sizes), axis=-1)

    @staticmethod
    def _locate(spaces, idx: int) -> tuple[Space | None, int]:
        for s in spaces:
            if idx < s.offset + s.n:
                return s, idx - s.offset
        return None, 0

    def combination(self, cid: int) -> dict:
        """Everything about one combination: id, hash, services and decoded parameters."""
        if not 0 <= int(cid) < self.combinations:
            raise IndexError(f"combination id {cid} out of range 0..{self.combinations - 1}")
        d = {k: int(v) for k, v in self.decompose(int(cid)).items()}
        s_space, s_row = self._locate(self.strategies, d["strategy"])
        out = {
            "id": int(cid),
            "hash": self.hashes([cid])[0],
            "strategy": s_space.entry.type,
            "strategy_entry": s_space.entry.index,
            "active_regimes": list(s_space.entry.active_regimes) if s_space.entry.active_regimes else None,
            "strategy_params": s_space.values(s_row),
        }
        if self.classifiers:
            c_space, c_row = self._locate(self.classifiers, d["classifier"])
            out["classifier"] = c_space.entry.type
            out["classifier_entry"] = c_space.entry.index
            out["classifier_params"] = c_space.values(c_row)
        if self.risk:
            rows = self.risk_indices(d["risk"])
            out["risk"] = [{"type": s.entry.type, **s.values(int(rows[j]))} for j, s in enumerate(self.risk)]
        out["portfolio"] = self.portfolio.values(d["portfolio"])
        out["execution"] = self.execution.values(d["execution"])
        return out

    def component_hashes(self, ids) -> dict[str, np.ndarray]:
        d = self.decompose(ids)
        s_h = np.concatenate([s.hashes for s in self.strategies])
        c_h = np.concatenate([s.hashes for s in self.classifiers]) if self.classifiers else np.zeros(1, np.uint64)
        if self.risk:
            rows = self.risk_indices(d["risk"])
            r_h = np.full(len(d["risk"]), 0x5EED, dtype=np.uint64)
            for j, s in enumerate(self.risk):
                r_h = _splitmix(r_h ^ s.hashes[rows[:, j]])
        else:
            r_h = np.zeros(len(d["risk"]), np.uint64)
        return {
            "strategy": s_h[d["strategy"]],
            "classifier": c_h[d["classifier"]],
            "risk": r_h,
            "portfolio": self.portfolio.hashes[d["portfolio"]],
            "execution": self.execution.hashes[d["execution"]],
        }

    def hash_values(self, ids) -> np.ndarray:
        """Content hashes of combinations ``ids`` as uint64 (the components' hashes folded together)."""
        parts = self.component_hashes(ids)
        h = _splitmix(parts["execution"])
        for role in ("portfolio", "risk", "classifier", "strategy"):
            h = _splitmix(h ^ parts[role])
        return np.atleast_1d(h)

    def hashes(self, ids=None) -> list[str]:
        """Content hashes (16 hex digits) of combinations; all of them by default."""
        if ids is None:
            ids = np.arange(self.combinations, dtype=np.int64)
        return [f"{int(x):016x}" for x in self.hash_values(ids)]

    # ------------------------------------------------------------- memory
    def memory_estimate(self) -> dict[str, int]:
        """Bytes the fast engine will need, by part (bars only when their count is known)."""
        cfg = self.config
        n = self.combinations
        n_bars = self.n_bars or 0
        n_sym = max(1, len(cfg.data.synthetic.symbols) if cfg.data.synthetic else len(cfg.data.files))
        hub_cols = 6 + sum(_n_outputs(node) for node in self.feature_nodes.values())
        n_regimes = max([len(s.entry.spec.regimes) for s in self.classifiers] or [1])
        chunk = max(256, min(cfg.chunk_size, n_bars or cfg.chunk_size, limits.HUB_BUDGET_BYTES // (hub_cols * 8)))
        cache = hub_cols * n_bars * 8
        cache = cache if cache <= limits.feature_cache_bytes() else 0
        per_combo_state = (N_STATE + 40 + 8 * n_regimes) * 8
        event_budget = min(limits.EVENT_BUDGET_BYTES, n * 256 * 64)
        metric_cols = 20 + 6 * n_regimes + sum(len(s.axes) for s in (*self.strategies, *self.classifiers, *self.risk))
        parts = {
            "bars": n_bars * 6 * 8,
            "features": chunk * hub_cols * 8 + cache,
            "portfolio_bank": n * per_combo_state,
            "combination_index": n * 5 * 8,
            "event_buffers": event_budget,
            "metrics_table": n * metric_cols * 8 * 2,
            "equity_curves": min(n, cfg.top_k + len(cfg.keep)) * n_bars * 8 * 2,
            "indicator_state": self.state_estimate(),
        }
        if cfg.workflow.type == "monte_carlo":
            parts["monte_carlo"] = limits.MC_BATCH_CELLS * 8 * 4  # draws, paths and running peaks of one batch
        if cfg.overfitting.enabled and n_bars:
            from .overfitting import chunk_rows

            blocks = self.block_estimate()
            shard = min(n, limits.shard_size(n_bars, blocks))
            rows = min(n, chunk_rows(blocks))
            of = cfg.overfitting
            # one shard's block returns (kernel array, its frame, the Parquet write) and the luck statistics:
            # per-partition sums of every combination, the shared bootstrap (indices and weights), and one
            # chunk of block returns (a few working copies) with its replicate means
            parts["block_returns"] = shard * blocks * 8 + min(shard * blocks, 2_000_000) * 20 * 2
            parts["overfitting"] = n * (of.partitions * 2 + 6) * 8 + of.reps * blocks * 16
            parts["overfitting"] += rows * blocks * 8 * 5 + of.reps * rows * 8
        parts = {k: v * (n_sym if k in ("bars",) else 1) for k, v in parts.items()}
        parts["total"] = sum(parts.values())
        return parts

    def state_estimate(self) -> int:
        """Bytes of streaming state of every indicator computation (at the data's bars per day)."""
        from containers.feature_hub import resolve_params
        from services.registry import indicator_registry

        per_day = _bars_per_day_hint(self.config) or 390.0
        total = 0
        for node in self.feature_nodes.values():
            spec = indicator_registry()[node.name]
            try:
                total += 8 * max(1, int(spec.state_size(*resolve_params(spec, node, per_day))))
            except Exception:  # reported with its name by the feature hub
                continue
        return total

    def block_estimate(self) -> int:
        """Blocks of returns the luck statistics will have per window (from the bar count and frequency)."""
        n_bars = self.n_bars or 0
        spec = self.config.overfitting.block
        per_day = _bars_per_day_hint(self.config)
        spec = spec.resolved(per_day if per_day is not None else 2.0)
        if spec.kind == "bars":
            return max(1, math.ceil(n_bars / spec.n))
        per_block = (per_day or 1.0) * spec.n * (5 if spec.kind == "weeks" else 1)
        return max(1, math.ceil(n_bars / per_block))

    # -------------------------------------------------------------- output
    def to_json(self) -> dict:
        """The machine-readable plan printed by ``sweep expand --json``."""
        return {
            "combinations": self.combinations,
            "strategy_combinations": self.strategy_combinations,
            "classifier_combinations": self.classifier_combinations,
            "unique_features": len(self.features),
            "containers": self.containers(),
            "reduction": self.reduction(),
            "services": self.services(),
        }


def _n_outputs(node: FeatureNode) -> int:
    from services.registry import indicator_registry

    return len(indicator_registry()[node.name].outputs)


def _bars_per_day_hint(cfg: SweepConfig) -> float | None:
    """Bars per trading day of the data, cheaply: from the synthetic timeframe or the first rows of the file."""
    if cfg.data.synthetic is not None:
        from containers.synthetic import bars_per_session

        tf = cfg.data.synthetic.timeframe
        return float(bars_per_session(tf)) if tf[-1] in "mhd" else None
    try:
        import polars as pl

        from containers.data import TIME_COLUMNS, _find, _timestamps, frequency

        path = cfg.data.files[0][1]
        lf = pl.scan_parquet(path) if path.endswith((".parquet", ".pq")) else pl.scan_csv(path)
        head = lf.head(20_000).collect()
        col = _find(head.columns, TIME_COLUMNS)
        return frequency(_timestamps(head, col, path))[0] if col else None
    except Exception:  # a broken file is reported by the data container, not here
        return None


def count_bars(cfg: SweepConfig) -> int | None:
    """Bars per symbol the run will see, when cheap to know (synthetic, or a row count of the file)."""
    if cfg.data.synthetic is not None:
        return cfg.data.synthetic.bars
    try:
        import polars as pl

        total = 0
        for _, path in cfg.data.files:
            lf = pl.scan_parquet(path) if path.endswith((".parquet", ".pq")) else pl.scan_csv(path)
            total = max(total, lf.select(pl.len()).collect().item())
        return total
    except Exception:  # a broken file is reported by the data container, not here
        return None


def expand(config, *, max_combinations: int | None = None, count_data: bool = True) -> Plan:
    """Expand a config (path, dict or SweepConfig) into a Plan, enforcing the size guard.

    Example:
        >>> plan = expand({"strategies": [{"type": "ma_crossover",
        ...     "parameters": {"fast": {"start": 5, "stop": 50, "step": 5},
        ...                    "slow": {"start": 20, "stop": 200, "step": 20}}}]})
        >>> plan.combinations, len(plan.features)  # 10 fast and 10 slow SMAs; 20 and 40 are both
        (100, 18)
    """
    cfg = load_config(config, max_combinations=max_combinations)
    limit = max_combinations or cfg.max_combinations
    try:
        return _expand(cfg, limit, count_data)
    except ConfigError as err:
        if cfg.lines is not None:
            raise cfg.lines.locate(err, err.path_parts) from None
        raise


def _expand(cfg: SweepConfig, limit: int, count_data: bool) -> Plan:
    seen: dict = {}
    # guard on the raw size before enumerating anything large
    raw_total = (
        sum(e.raw_size for e in cfg.strategies)
        * max(1, sum(e.raw_size for e in cfg.classifiers))
        * math.prod(e.raw_size for e in cfg.risk)
        * cfg.portfolio.size
        * cfg.execution.size
    )
    has_constraints = any(e.constraints for e in (*cfg.strategies, *cfg.classifiers, *cfg.risk))
    if raw_total > limit and not has_constraints:
        _guard(cfg, raw_total, limit)
    features: dict[str, int] = {}
    spaces: dict[str, list[Space]] = {}
    for role, entries in (("strategy", cfg.strategies), ("classifier", cfg.classifiers), ("risk", cfg.risk)):
        out, offset = [], 0
        for e in entries:
            sp = _entry_space(e, seen)
            if role != "risk":
                sp = _attach_features(sp, features)
            out.append(attrs.evolve(sp, offset=offset))
            offset += sp.n
        spaces[role] = out
    portfolio = _settings_space(cfg.portfolio)
    execution = _settings_space(cfg.execution)
    n_s = sum(s.n for s in spaces["strategy"])
    n_c = sum(s.n for s in spaces["classifier"])
    n_r = math.prod(s.n for s in spaces["risk"])
    total = n_s * max(1, n_c) * n_r * portfolio.n * execution.n
    if total > limit:
        _guard(cfg, total, limit)
    patterns = load_patterns(cfg.pattern_dirs)
    mode = patterns[cfg.workflow.base_pattern]
    configs = {"strategy": n_s, "classifier": n_c, "risk": sum(s.n for s in spaces["risk"])}
    naive, stateless = build_plans(mode, total, configs)
    naive_features = sum(int((s.feature_index >= 0).sum()) for s in (*spaces["strategy"], *spaces["classifier"]))
    feats = tuple(features)
    notes = []
    if cfg.data.is_sample:
        notes.append(f"no `data:` given: using the {cfg.data.describe()}")
    notes += _regime_notes(cfg, spaces)
    warnings = _warnings(cfg, spaces, portfolio.n * execution.n * math.prod(s.n for s in spaces["risk"]))
    plan = Plan(
        config=cfg,
        strategies=tuple(spaces["strategy"]),
        classifiers=tuple(spaces["classifier"]),
        risk=tuple(spaces["risk"]),
        portfolio=portfolio,
        execution=execution,
        features=feats,
        feature_nodes=_all_nodes(feats),
        naive_feature_count=naive_features,
        outer="classifier" if 0 < n_c < n_s else "strategy",
        naive=naive,
        stateless=stateless,
        notes=tuple(notes),
        warnings=tuple(warnings),
        n_bars=count_bars(cfg) if count_data else None,
    )
    from .feature_limits import check_features

    # state that cannot fit is refused now; a window longer than the data as soon as the bar count is known
    check_features(plan, (_bars_per_day_hint(cfg) if count_data else None) or 390.0, plan.n_bars)
    return plan


def _guard(cfg: SweepConfig, total: int, limit: int) -> None:
    entries = [*cfg.strategies, *cfg.classifiers, *cfg.risk]
    biggest = max(entries, key=lambda e: e.raw_size) if entries else None
    path = biggest.path + ("parameters",) if biggest is not None else ("max_combinations",)
    raise ConfigError(
        path,
        f"the sweep has {total:,} combinations, more than the limit of {limit:,}",
        fix="narrow the grids or add constraints, or raise the limit with `max_combinations:` in the YAML "
        "(or --max-combinations on the command line)",
    )


def _warnings(cfg: SweepConfig, spaces, settings: int) -> list[str]:
    """Things that make results misleading: fills that see the signal bar, classifier grids that copy results."""
    out = []
    fills = [v for a in cfg.execution.axes if a.name == "fill" for v in a.values]
    if "close" in fills:
        out.append(
            "execution.fill: close fills at the signal bar's close, which the signal has already seen: "
            "results are look-ahead-prone (the default next_open fills at the next bar's open)"
        )
    n_c = sum(s.n for s in spaces["classifier"])
    if n_c > 1:
        gated = [sp for sp in spaces["strategy"] if sp.entry.active_regimes or sp.entry.spec.reads_regime]
        n_s = sum(s.n for s in spaces["strategy"])
        distinct = (sum(s.n for s in gated) * n_c + (n_s - sum(s.n for s in gated))) * settings
        total = n_s * n_c * settings
        if distinct < total:
            free = n_s - sum(s.n for s in gated)
            who = f"none of the {n_s:,} gates" if not gated else f"{free:,} of the {n_s:,} do not gate"
            out.append(
                f"the classifier grid multiplies the strategy combinations by {n_c:,}, but {who} on a regime "
                "(no active_regimes, and the strategy never reads its regime argument): their copies have identical "
                f"metrics (only regimes.parquet differs); {distinct:,} of {total:,} combinations are distinct"
            )
    return out


def _regime_notes(cfg: SweepConfig, spaces) -> list[str]:
    notes = []
    for e in cfg.strategies:
        for name in e.active_regimes or ():
            missing = [c.type for c in cfg.classifiers if name not in c.spec.regimes]
            if missing:
                notes.append(
                    f"strategies[{e.index}].active_regimes: {name!r} is not a regime of "
                    f"{', '.join(sorted(set(missing)))}; with that classifier the strategy is never active in it"
                )
    return notes
