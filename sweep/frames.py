"""Result extractors: engine output -> polars tables (metrics, regimes, trades, equity, events)."""

from __future__ import annotations

import numpy as np
import polars as pl

from containers.data import Universe
from containers.metrics import METRICS
from containers.portfolio import EV_COLUMNS, EVENT_NAMES, F_AVG, F_POS, F_T_COMM, F_T_ENTRY_BAR, F_T_REGIME

from .expander import Plan, Space


def hex64(h: np.ndarray) -> np.ndarray:
    """uint64 hashes -> 16-digit lower-case hex strings, vectorised."""
    h = np.ascontiguousarray(h, dtype=np.uint64)
    shifts = np.arange(15, -1, -1, dtype=np.uint64) * np.uint64(4)
    nib = ((h[:, None] >> shifts) & np.uint64(0xF)).astype(np.uint8)
    chars = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)[nib]
    return np.ascontiguousarray(chars).view("S16").ravel().astype(str)


def _param_columns(prefix: str, spaces: list[Space], index: np.ndarray) -> dict[str, np.ndarray]:
    """Decoded parameter columns (union over entries) for component rows ``index``."""
    total = sum(s.n for s in spaces)
    cols: dict[str, np.ndarray] = {}
    for sp in spaces:
        for j, axis in enumerate(sp.axes):
            name = f"{prefix}.{axis.name}"
            if name not in cols:
                cols[name] = np.full(total, None, dtype=object)
            p = axis.param
            codes = sp.codes[:, j]
            if p.kind == "choice":
                vals = np.array(p.choices, dtype=object)[codes.astype(np.int64)]
            elif p.kind == "bool":
                vals = (codes != 0).astype(object)
            elif p.kind == "int":
                vals = codes.astype(np.int64).astype(object)
            else:
                vals = codes.astype(object)
            cols[name][sp.offset : sp.offset + sp.n] = vals
    return {k: v[index] for k, v in cols.items()}


def _series(name: str, values: np.ndarray) -> pl.Series:
    non_null = [v for v in values[:1000] if v is not None]
    if non_null and all(isinstance(v, (bool, np.bool_)) for v in non_null):
        return pl.Series(name, values.tolist(), dtype=pl.Boolean)
    if non_null and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in non_null):
        return pl.Series(name, values.tolist(), dtype=pl.Int64)
    if non_null and all(isinstance(v, float) for v in non_null):
        return pl.Series(name, values.tolist(), dtype=pl.Float64)
    return pl.Series(name, [None if v is None else str(v) for v in values.tolist()], dtype=pl.Utf8)


def combination_frame(plan: Plan, ids: np.ndarray) -> pl.DataFrame:
    """id, hash, service types and one column per parameter for combinations ``ids``."""
    ids = np.asarray(ids, dtype=np.int64)
    d = plan.decompose(ids)
    parts = plan.component_hashes(ids)
    from .expander import _splitmix

    h = _splitmix(parts["execution"])
    for role in ("portfolio", "risk", "classifier", "strategy"):
        h = _splitmix(h ^ parts[role])
    cols: dict[str, pl.Series] = {
        "combo_id": pl.Series("combo_id", ids),
        "combo_hash": pl.Series("combo_hash", hex64(np.atleast_1d(h))),
    }
    s_types = np.concatenate([np.full(sp.n, sp.entry.type, dtype=object) for sp in plan.strategies])
    cols["strategy"] = pl.Series("strategy", s_types[d["strategy"]].tolist(), dtype=pl.Utf8)
    if plan.classifiers:
        c_types = np.concatenate([np.full(sp.n, sp.entry.type, dtype=object) for sp in plan.classifiers])
        cols["classifier"] = pl.Series("classifier", c_types[d["classifier"]].tolist(), dtype=pl.Utf8)
    named = _param_columns("strategy", list(plan.strategies), d["strategy"])
    if plan.classifiers:
        named |= _param_columns("classifier", list(plan.classifiers), d["classifier"])
    if plan.risk:
        rows = plan.risk_indices(d["risk"])
        types = [sp.entry.type for sp in plan.risk]
        for k, sp in enumerate(plan.risk):
            tag = sp.entry.type if types.count(sp.entry.type) == 1 else f"{sp.entry.type}{k}"
            named |= _param_columns(f"risk.{tag}", [sp], rows[:, k])
    for role, space in (("portfolio", plan.portfolio), ("execution", plan.execution)):
        idx = d[role]
        grid = [a.name for a in space.axes if a.is_grid]
        if grid:
            decoded = _param_columns(role, [space], idx)
            for name in grid:
                named[f"{role}.{name}"] = decoded[f"{role}.{name}"]
    for k, v in named.items():
        cols[k] = _series(k, v)
    return pl.DataFrame(list(cols.values()))


def metrics_frame(plan: Plan, ids: np.ndarray, metrics: dict, symbol: str) -> pl.DataFrame:
    """The metrics.parquet rows for one symbol."""
    base = combination_frame(plan, ids).with_columns(pl.lit(symbol).alias("symbol"))
    mcols = [pl.Series(k, metrics[k]) for k in (*METRICS, "fills", "open_position") if k in metrics]
    mcols.append(pl.Series("flags", [str(f) for f in metrics["flags"]], dtype=pl.Utf8))
    front = ["combo_id", "combo_hash", "symbol"]
    out = pl.concat([base, pl.DataFrame(mcols)], how="horizontal")
    return out.select(front + [c for c in out.columns if c not in front])


def regimes_frame(plan: Plan, ids: np.ndarray, regimes: dict, symbol: str, names) -> pl.DataFrame:
    """regimes.parquet: one row per combination, symbol and regime of its classifier."""
    d = plan.decompose(ids)
    entry_of = np.concatenate([np.full(sp.n, e) for e, sp in enumerate(plan.classifiers)])[d["classifier"]]
    frames = []
    for k in range(regimes["bars"].shape[0]):
        valid = np.array([k < len(names[e]) for e in entry_of])
        if not valid.any():
            continue
        data = {
            "combo_id": ids[valid],
            "symbol": symbol,
            "regime_index": k,
            "regime": [names[e][k] for e in entry_of[valid]],
        }
        for m, arr in regimes.items():
            data[m] = arr[k][valid]
        frames.append(pl.DataFrame(data))
    return pl.concat(frames) if frames else pl.DataFrame()


def events_frame(owner: np.ndarray, events: np.ndarray, symbol: str, universe: Universe) -> pl.DataFrame:
    """Kernel event records -> rows with names and timestamps."""
    cols = {name: events[:, k] for k, name in enumerate(EV_COLUMNS)}
    kind = cols.pop("kind").astype(np.int64)
    bar = cols.pop("bar").astype(np.int64)
    return pl.DataFrame(
        {
            "combo_id": owner.astype(np.int64),
            "symbol": symbol,
            "event": [EVENT_NAMES[int(k)] for k in kind],
            "bar": bar,
            "timestamp": pl.Series(universe.timestamps[bar]).cast(pl.Datetime("ns", "UTC")),
            **{k: (v.astype(np.int64) if k in ("entry_bar", "regime") else v) for k, v in cols.items()},
        }
    )


def trades_frame(
    events: pl.DataFrame, universe: Universe, regime_names=None, bank=None, ids=None, t_last: int | None = None
) -> pl.DataFrame:
    """Closed trades from POSITION_CLOSE events, plus positions still open at the end (status 'open')."""
    closes = events.filter(pl.col("event") == "POSITION_CLOSE") if events.height else events
    ts = universe.timestamps
    rows = []
    if closes.height:
        c = closes
        rows.append(
            pl.DataFrame(
                {
                    "combo_id": c["combo_id"],
                    "symbol": c["symbol"],
                    "status": "closed",
                    "direction": pl.Series(np.where(c["qty"].to_numpy() > 0, "long", "short")),
                    "entry_bar": c["entry_bar"],
                    "exit_bar": c["bar"],
                    "entry_time": pl.Series(ts[c["entry_bar"].to_numpy()]).cast(pl.Datetime("ns", "UTC")),
                    "exit_time": pl.Series(ts[c["bar"].to_numpy()]).cast(pl.Datetime("ns", "UTC")),
                    "bars_held": c["bar"] - c["entry_bar"],
                    "quantity": c["qty"].abs(),
                    "entry_price": c["entry_price"],
                    "exit_price": c["price"],
                    "commission": c["commission"],
                    "pnl": c["pnl"],
                    "return": c["return"],
                    "regime": c["regime"],
                }
            )
        )
    if bank is not None and ids is not None:
        open_ = np.flatnonzero(bank[F_POS] != 0.0)
        if open_.size:
            pos = bank[F_POS, open_]
            avg = bank[F_AVG, open_]
            last = universe.close[t_last]
            entry = bank[F_T_ENTRY_BAR, open_].astype(np.int64)
            rows.append(
                pl.DataFrame(
                    {
                        "combo_id": ids[open_],
                        "symbol": universe.symbol,
                        "status": "open",
                        "direction": pl.Series(np.where(pos > 0, "long", "short")),
                        "entry_bar": entry,
                        "exit_bar": pl.Series([None] * open_.size, dtype=pl.Int64),
                        "entry_time": pl.Series(ts[entry]).cast(pl.Datetime("ns", "UTC")),
                        "exit_time": pl.Series([None] * open_.size, dtype=pl.Datetime("ns", "UTC")),
                        "bars_held": pl.Series(t_last - entry),
                        "quantity": np.abs(pos),
                        "entry_price": avg,
                        "exit_price": pl.Series([None] * open_.size, dtype=pl.Float64),
                        "commission": bank[F_T_COMM, open_],
                        "pnl": (last - avg) * pos - bank[F_T_COMM, open_],
                        "return": ((last - avg) * pos - bank[F_T_COMM, open_]) / (np.abs(pos) * avg),
                        "regime": bank[F_T_REGIME, open_].astype(np.int64),
                    }
                )
            )
    if not rows:
        return pl.DataFrame()
    out = pl.concat(rows, how="diagonal_relaxed").sort(["combo_id", "entry_bar"])
    return out


def equity_frame(ids: np.ndarray, equity: np.ndarray, universe: Universe, t_first: int) -> pl.DataFrame:
    """Long table of equity curves: combo_id, symbol, bar, timestamp, equity."""
    n, m = equity.shape
    bars = np.arange(t_first, t_first + m, dtype=np.int64)
    return pl.DataFrame(
        {
            "combo_id": np.repeat(ids, m),
            "symbol": universe.symbol,
            "bar": np.tile(bars, n),
            "timestamp": pl.Series(np.tile(universe.timestamps[bars], n)).cast(pl.Datetime("ns", "UTC")),
            "equity": equity.ravel(),
        }
    )
