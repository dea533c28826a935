"""Result extractors: engine output -> polars tables (metrics, regimes, trades, equity, events)."""

from __future__ import annotations

import numpy as np
import polars as pl

from containers.data import Universe
from containers.metrics import METRICS
from containers.portfolio import EV_COLUMNS, EVENT_NAMES, open_positions

from .expander import Plan, Space, entry_rows


def hex64(h: np.ndarray) -> pl.Series:
    """uint64 hashes -> 16-digit lower-case hex strings, vectorised (no Python objects per row)."""
    h = np.ascontiguousarray(np.atleast_1d(h), dtype=np.uint64)
    shifts = np.arange(15, -1, -1, dtype=np.uint64) * np.uint64(4)
    nib = ((h[:, None] >> shifts) & np.uint64(0xF)).astype(np.uint8)
    chars = np.ascontiguousarray(np.frombuffer(b"0123456789abcdef", dtype=np.uint8)[nib])
    return pl.Series(chars.view("S16").ravel()).cast(pl.Utf8)


def _gather(names, index: np.ndarray) -> pl.Series:
    """names[index] as a string Series, without a Python object per row."""
    return pl.Series(list(names), dtype=pl.Utf8).gather(pl.Series(np.asarray(index, dtype=np.int64)))


def _param_series(prefix: str, spaces: list[Space], index: np.ndarray) -> dict[str, pl.Series]:
    """Decoded parameter columns (the union over entries, null where an entry lacks one) for rows ``index``."""
    total = sum(s.n for s in spaces)
    index = np.asarray(index, dtype=np.int64)
    found: dict[str, tuple] = {}
    for sp in spaces:
        for j, axis in enumerate(sp.axes):
            name = f"{prefix}.{axis.name}"
            if name not in found:
                found[name] = (axis.param, np.zeros(total), np.zeros(total, dtype=bool))
            _, codes, present = found[name]
            codes[sp.offset : sp.offset + sp.n] = sp.codes[:, j]
            present[sp.offset : sp.offset + sp.n] = True
    out = {}
    for name, (p, codes, present) in found.items():
        c = codes[index]
        if p.kind == "choice":
            s = _gather(p.choices, c.astype(np.int64))
        elif p.kind == "bool":
            s = pl.Series(c != 0.0)
        elif p.kind == "int":
            s = pl.Series(c.astype(np.int64))
        else:
            s = pl.Series(c)
        keep = present[index]
        if not keep.all():
            s = pl.select(pl.when(pl.Series(keep)).then(s).otherwise(None)).to_series()
        out[name] = s.alias(name)
    return out


def combination_frame(plan: Plan, ids: np.ndarray) -> pl.DataFrame:
    """id, hash, service types and one column per parameter for combinations ``ids``."""
    ids = np.asarray(ids, dtype=np.int64)
    d = plan.decompose(ids)
    cols: dict[str, pl.Series] = {
        "combo_id": pl.Series("combo_id", ids),
        "combo_hash": hex64(plan.hash_values(ids)).alias("combo_hash"),
    }
    for role, spaces in (("strategy", plan.strategies), ("classifier", plan.classifiers)):
        if spaces:
            types = [sp.entry.type for sp in spaces]
            entry = entry_rows(spaces)[d[role]]
            cols[role] = _gather(types, entry).alias(role)
            # which entry of the YAML list: two entries of one type (say, gated differently) stay apart
            index = np.array([sp.entry.index for sp in spaces], dtype=np.int64)
            cols[f"{role}_entry"] = pl.Series(f"{role}_entry", index[entry])
    if any(sp.entry.active_regimes for sp in plan.strategies):
        gates = [",".join(sp.entry.active_regimes) if sp.entry.active_regimes else "" for sp in plan.strategies]
        active = _gather(gates, entry_rows(plan.strategies)[d["strategy"]])
        cols["active_regimes"] = pl.select(pl.when(active != "").then(active)).to_series().alias("active_regimes")
    cols |= _param_series("strategy", list(plan.strategies), d["strategy"])
    if plan.classifiers:
        cols |= _param_series("classifier", list(plan.classifiers), d["classifier"])
    if plan.risk:
        rows = plan.risk_indices(d["risk"])
        types = [sp.entry.type for sp in plan.risk]
        for k, sp in enumerate(plan.risk):
            tag = sp.entry.type if types.count(sp.entry.type) == 1 else f"{sp.entry.type}{k}"
            cols |= _param_series(f"risk.{tag}", [sp], rows[:, k])
    for role, space in (("portfolio", plan.portfolio), ("execution", plan.execution)):
        grid = [f"{role}.{a.name}" for a in space.axes if a.is_grid]
        if grid:
            decoded = _param_series(role, [space], d[role])
            cols |= {name: decoded[name] for name in grid}
    return pl.DataFrame(list(cols.values()))


def metrics_frame(
    plan: Plan, ids: np.ndarray, metrics: dict, symbol: str, min_trades: int = 0, scored: tuple | None = None
) -> pl.DataFrame:
    """The metrics.parquet rows for one symbol; fewer than ``min_trades`` trades adds the flag few_trades.

    ``scored`` = (first scored bar, last scored bar, timestamps) adds first_bar, first_time and bars_scored.
    """
    base = combination_frame(plan, ids).with_columns(pl.lit(symbol).alias("symbol"))
    if scored is not None:
        first, last, ts = scored
        base = base.with_columns(
            pl.lit(int(first)).alias("first_bar"),
            pl.lit(int(ts[first])).cast(pl.Datetime("ns", "UTC")).alias("first_time"),
            pl.lit(int(last - first + 1)).alias("bars_scored"),
        )
    mcols = [pl.Series(k, metrics[k]) for k in (*METRICS, "fills", "open_position") if k in metrics]
    flags = metrics["flags"].astype(str)
    few = np.asarray(metrics["trades"]) < min_trades
    if few.any():
        flags = np.where(few, np.char.add(np.char.add(flags, np.where(flags == "", "", ";")), "few_trades"), flags)
    kinds, codes = np.unique(flags, return_inverse=True)
    mcols.append(_gather(kinds.tolist(), codes.reshape(-1)).alias("flags"))
    front = ["combo_id", "combo_hash", "symbol"]
    out = pl.concat([base, pl.DataFrame(mcols)], how="horizontal")
    return out.select(front + [c for c in out.columns if c not in front])


# regimes.parquet columns: bar returns go to the regime in force when the bar began; closed trades to the
# regime at their entry; a position still open at the end is marked in the regime it was entered in
REGIME_COLUMNS = {
    "bars": "bars_in_regime",
    "total_return": "return_in_regime",
    "sharpe": "sharpe_in_regime",
    "trades": "trades_entered",
    "win_rate": "win_rate_entered",
    "pnl": "pnl_entered",
}


def regimes_frame(plan: Plan, ids: np.ndarray, regimes: dict, symbol: str, names, bank=None) -> pl.DataFrame:
    """regimes.parquet: one row per combination, symbol and regime of its classifier (see REGIME_COLUMNS)."""
    d = plan.decompose(ids)
    entry_of = entry_rows(plan.classifiers)[d["classifier"]]
    n_names = np.array([len(x) for x in names])[entry_of]
    frames = []
    for k in range(regimes["bars"].shape[0]):
        valid = k < n_names
        if not valid.any():
            continue
        data = {
            "combo_id": ids[valid],
            "symbol": symbol,
            "regime_index": k,
            "regime": _gather([names[e][k] if k < len(names[e]) else "" for e in range(len(names))], entry_of[valid]),
        }
        for m, arr in regimes.items():
            data[REGIME_COLUMNS.get(m, m)] = arr[k][valid]
        if bank is not None:
            held = open_positions(bank)
            data["open_entered"] = ((held.position != 0.0) & (held.regime == k))[valid]
        frames.append(pl.DataFrame(data))
    return pl.concat(frames) if frames else pl.DataFrame()


def events_frame(owner: np.ndarray, events: np.ndarray, symbol: str, universe: Universe, seq=None) -> pl.DataFrame:
    """Kernel events (columns EV_COLUMNS x events) -> rows with names and timestamps.

    ``seq`` (their order on the bus) becomes the first column.
    """
    cols = {name: events[k] for k, name in enumerate(EV_COLUMNS)}
    kind = cols.pop("kind").astype(np.int64)
    bar = cols.pop("bar").astype(np.int64)
    head = {"seq": np.asarray(seq, dtype=np.int64)} if seq is not None else {}
    return pl.DataFrame(
        {
            **head,
            "combo_id": owner.astype(np.int64),
            "symbol": symbol,
            "event": _gather([EVENT_NAMES.get(k, "") for k in range(4)], kind),
            "bar": bar,
            "timestamp": pl.Series(universe.timestamps[bar]).cast(pl.Datetime("ns", "UTC")),
            **{k: (v.astype(np.int64) if k in ("entry_bar", "regime") else v) for k, v in cols.items()},
        }
    )


def collected_events_frame(res, universe: Universe) -> pl.DataFrame:
    """The events a ``simulate`` call collected (no ``on_events``) as one frame; empty when there were none."""
    if not res.events:
        return pl.DataFrame({"event": pl.Series([], dtype=pl.Utf8)})
    owner = np.concatenate([o for o, _ in res.events])
    cols = np.concatenate([c for _, c in res.events], axis=1)
    return events_frame(owner, cols, universe.symbol, universe)


def trades_frame(
    events: pl.DataFrame, universe: Universe, bank=None, ids=None, t_last: int | None = None
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
                    "direction": _gather(["short", "long"], (c["qty"].to_numpy() > 0).astype(np.int64)),
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
        held = open_positions(bank)
        open_ = np.flatnonzero(held.position != 0.0)
        if open_.size:
            pos = held.position[open_]
            avg = held.avg_price[open_]
            last = universe.close[t_last]
            entry = held.entry_bar[open_]
            pnl = (last - avg) * pos - held.commission[open_]  # marked at the last close, net of commission so far
            rows.append(
                pl.DataFrame(
                    {
                        "combo_id": ids[open_],
                        "symbol": universe.symbol,
                        "status": "open",
                        "direction": _gather(["short", "long"], (pos > 0).astype(np.int64)),
                        "entry_bar": entry,
                        "exit_bar": pl.Series([None] * open_.size, dtype=pl.Int64),
                        "entry_time": pl.Series(ts[entry]).cast(pl.Datetime("ns", "UTC")),
                        "exit_time": pl.Series([None] * open_.size, dtype=pl.Datetime("ns", "UTC")),
                        "bars_held": pl.Series(t_last - entry),
                        "quantity": np.abs(pos),
                        "entry_price": avg,
                        "exit_price": pl.Series([None] * open_.size, dtype=pl.Float64),
                        "commission": held.commission[open_],
                        "pnl": pnl,
                        "return": pnl / (np.abs(pos) * avg),
                        "regime": held.regime[open_],
                    }
                )
            )
    if not rows:
        return pl.DataFrame()
    out = rows[0] if len(rows) == 1 else pl.concat(rows, how="diagonal_relaxed")
    ids = out["combo_id"]
    if len(rows) == 1 and (ids.len() < 2 or (ids.diff().drop_nulls() >= 0).all()):
        return out  # closes of one combination at a time, each in time order
    return out.sort(["combo_id", "entry_bar"], maintain_order=True)


def equity_frame(ids: np.ndarray, equity: np.ndarray, universe: Universe, t_first: int) -> pl.DataFrame:
    """Long table of equity curves: combo_id, symbol, bar, timestamp, equity, close (of the bar: buy-and-hold)."""
    n, m = equity.shape
    bars = np.arange(t_first, t_first + m, dtype=np.int64)
    return pl.DataFrame(
        {
            "combo_id": np.repeat(ids, m),
            "symbol": universe.symbol,
            "bar": np.tile(bars, n),
            "timestamp": pl.Series(np.tile(universe.timestamps[bars], n)).cast(pl.Datetime("ns", "UTC")),
            "equity": equity.ravel(),
            "close": np.tile(universe.close[bars], n),
        }
    )
