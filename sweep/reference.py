"""The reference engine: plain Python, event-driven, one container per component and combination.

Built from ``containers.naive`` exactly as the naive plan counts containers,
it processes one bar event at a time through a fresh bus and computes
metrics at the end from each portfolio's full history (two-pass statistics).
It is the oracle the fused kernel is tested against and the naive side of
the container-reduction benchmark.  Same config -> same trades.
"""

from __future__ import annotations

import math
import statistics

import numpy as np

from containers.events import EventBus
from containers.feature_hub import FeatureHub
from containers.naive import (
    ClassifierContainer,
    DataContainer,
    ExecutionContainer,
    FeatureHubContainer,
    PortfolioContainer,
    RiskContainer,
    StrategyContainer,
)
from containers.portfolio import OpenPositions, bank_of_positions

from .engine import SimResult, scoring_range
from .expander import Plan
from .stats.blocks import layout

_EX_KEYS = ("fill", "rate", "per_share", "fixed", "minimum", "bps", "range_fraction")


def _space_rows(spaces, hub, nan_row):
    """Per global row: (spec, params, hub rows of its features, entry index)."""
    out = []
    for e, sp in enumerate(spaces):
        for i in range(sp.n):
            fi = sp.feature_index[i] if sp.feature_index is not None else np.zeros(0, dtype=np.int64)
            rows = np.array([hub.rows[k] if k >= 0 else nan_row for k in fi], dtype=np.int64)
            out.append((sp.entry.spec, np.ascontiguousarray(sp.codes[i]), rows, e))
    return out


class ReferenceRun:
    """All containers of one window of the naive topology, wired to one bus."""

    def __init__(self, plan: Plan, universe, ids, start=0, stop=None, record_events=False) -> None:
        self.bus = bus = EventBus("reference")
        self.plan, self.u = plan, universe
        self.data = DataContainer(bus, universe)
        self.ids = np.asarray(ids, dtype=np.int64)
        d = plan.decompose(self.ids)
        hub = FeatureHub(plan.features, universe.bars_per_day)
        self.t_first, self.t_last = scoring_range(hub, universe, start, stop, plan.config.score_from)
        nan_row = hub.n_rows
        s_rows = _space_rows(plan.strategies, hub, nan_row)
        c_rows = _space_rows(plan.classifiers, hub, nan_row) if plan.classifiers else []
        self.portfolios, self.strategies, self.classifiers, self.risks = [], [], [], []
        p_names = [a.name for a in plan.portfolio.axes]
        # portfolios subscribe to BAR before the hub, so fills at the open precede decisions at the close
        for k, cid in enumerate(self.ids):
            prow = plan.portfolio.codes[d["portfolio"][k]]
            settings = {n: plan.portfolio.axes[j].param.decode(prow[j]) for j, n in enumerate(p_names)}
            erow = plan.execution.codes[d["execution"][k]]
            ex = dict(zip(_EX_KEYS, (float(x) for x in erow)))
            self.portfolios.append(
                PortfolioContainer(
                    bus,
                    int(cid),
                    settings,
                    ex,
                    bool(plan.risk),
                    self.t_first,
                    self.t_last,
                    ex["fill"] != 0.0,
                    record_events,
                )
            )
        self.hub = FeatureHubContainer(bus, plan.features, universe.bars_per_day, universe)
        self.execution = ExecutionContainer(bus)
        n_regimes = max((len(sp.entry.spec.regimes) for sp in plan.classifiers), default=1)
        for k, cid in enumerate(self.ids):
            spec, params, rows, entry = s_rows[d["strategy"][k]]
            mask = -1
            if plan.classifiers:
                cspec, cparams, crows, _ = c_rows[d["classifier"][k]]
                self.classifiers.append(ClassifierContainer(bus, int(cid), cspec, cparams, crows, n_regimes))
                active = plan.strategies[entry].entry.active_regimes
                if active is not None:
                    mask = sum(1 << j for j, n in enumerate(cspec.regimes) if n in active)
            self.strategies.append(StrategyContainer(bus, int(cid), spec, params, rows, mask, bool(plan.classifiers)))
            if plan.risk:
                r = plan.risk_indices(d["risk"][k])
                chain = [(sp.entry.spec, np.ascontiguousarray(sp.codes[int(r[j])])) for j, sp in enumerate(plan.risk)]
                self.risks.append(RiskContainer(bus, int(cid), chain))

    @property
    def containers(self) -> dict[str, int]:
        out = {"data": 1, "feature_hub": 1, "execution": 1, "strategy": len(self.strategies)}
        if self.classifiers:
            out["classifier"] = len(self.classifiers)
        if self.risks:
            out["risk"] = len(self.risks)
        out["portfolio"] = len(self.portfolios)
        return out

    def run(self, progress=None) -> None:
        for t in range(self.t_last + 1):
            self.data.emit(t)
            if progress and t >= self.t_first:
                progress(len(self.portfolios))
        self.bus.close()


def _stats(values: list[float]):
    n = len(values)
    if n < 2:
        return n, float("nan"), float("nan")
    mean = statistics.fmean(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return n, mean, std


def _metrics(p: PortfolioContainer, last_close: float, bpy: float) -> dict:
    rets = [r for r, _ in p.returns]
    n, mean, std = _stats(rets)
    final = p.cash + p.pos * last_close
    down = math.sqrt(sum(min(r, 0.0) ** 2 for r in rets) / n) if n else float("nan")
    years = n / bpy
    growth = final / p.initial
    cagr = (growth ** (1.0 / years) - 1.0 if growth > 0 else -1.0) if years > 0 else float("nan")
    peak, max_dd, dd_len, max_len = p.initial, 0.0, 0, 0
    for e in p.equity_curve:
        if e >= peak:
            peak, dd_len = e, 0
        else:
            dd_len += 1
            max_len = max(max_len, dd_len)
            max_dd = max(max_dd, 1.0 - e / peak)
    closed = p.trades
    wins = [t for t in closed if t["pnl"] > 0]
    gp = sum(t["pnl"] for t in wins)
    gl = -sum(t["pnl"] for t in closed if t["pnl"] <= 0)
    nan = float("nan")
    sharpe = mean / std * math.sqrt(bpy) if n > 1 and std > 0 else nan
    flags = [] if closed else ["no_trades"]
    if not (n > 1 and std > 0):
        flags.append("zero_variance")
    return {
        "total_return": growth - 1.0,
        "cagr": cagr,
        "sharpe": sharpe,
        "sortino": mean / down * math.sqrt(bpy) if n > 1 and down > 0 else nan,
        "max_drawdown": max_dd,
        "max_drawdown_duration": float(max_len),
        "calmar": cagr / max_dd if max_dd > 0 else nan,
        "win_rate": len(wins) / len(closed) if closed else nan,
        "profit_factor": gp / gl if gl > 0 else (math.inf if gp > 0 else nan),
        "trades": len(closed),
        "avg_trade": statistics.fmean(t["pnl"] for t in closed) if closed else nan,
        "avg_trade_return": statistics.fmean(t["return"] for t in closed) if closed else nan,
        "exposure": p.exposed / len(p.equity_curve) if p.equity_curve else nan,
        "turnover": p.traded / statistics.fmean(p.equity_curve) if p.equity_curve else nan,
        "final_equity": final,
        "total_commission": p.commission,
        "fills": p.fills,
        "open_position": p.pos,
        "flags": ";".join(flags),
    }


def _regimes(p: PortfolioContainer, n_regimes: int, bpy: float) -> dict:
    out = {k: [] for k in ("bars", "total_return", "sharpe", "trades", "win_rate", "pnl")}
    for k in range(n_regimes):
        r = [x for x, g in p.returns if g == k]
        n, mean, std = _stats(r)
        tr = [t for t in p.trades if t["regime"] == k]
        out["bars"].append(len(r))
        out["total_return"].append(math.prod(1.0 + x for x in r) - 1.0 if r else float("nan"))
        out["sharpe"].append(mean / std * math.sqrt(bpy) if n > 1 and std > 0 else float("nan"))
        out["trades"].append(len(tr))
        out["win_rate"].append(sum(t["pnl"] > 0 for t in tr) / len(tr) if tr else float("nan"))
        out["pnl"].append(sum(t["pnl"] for t in tr))
    return out


def reference_simulate(
    plan: Plan,
    universe,
    ids,
    *,
    start=0,
    stop=None,
    record_events=False,
    record_equity=False,
    on_events=None,
    progress=None,
    blocks=None,
    **_ignored,
) -> SimResult:
    """Same inputs and outputs as ``sweep.engine.simulate``, computed by the naive topology."""
    run = ReferenceRun(plan, universe, ids, start, stop, record_events)
    run.run(progress)
    last = float(universe.close[run.t_last])
    bpy = universe.bars_per_year
    per = [_metrics(p, last, bpy) for p in run.portfolios]
    metrics = {}
    for k in per[0]:
        vals = [m[k] for m in per]
        metrics[k] = np.array(
            vals, dtype=object if k == "flags" else (np.int64 if k in ("trades", "fills") else np.float64)
        )
    regimes = None
    if plan.classifiers:
        n_reg = max(len(sp.entry.spec.regimes) for sp in plan.classifiers)
        per_r = [_regimes(p, n_reg, bpy) for p in run.portfolios]
        regimes = {k: np.array([r[k] for r in per_r]).T for k in per_r[0]}
    events = []
    if record_events:
        owner, rows = [], []
        for p in run.portfolios:
            owner += [p.combo] * len(p.events)
            rows += p.events
        if rows:
            batch = (np.array(owner, dtype=np.int64), np.ascontiguousarray(np.array(rows, dtype=np.float64).T))
            (on_events(*batch) if on_events else events.append(batch))
    equity = np.array([p.equity_curve for p in run.portfolios]) if record_equity else None
    trades = [p.trade or {} for p in run.portfolios]
    bank = bank_of_positions(
        OpenPositions(
            np.array([p.pos for p in run.portfolios]),
            np.array([p.avg for p in run.portfolios]),
            np.array([t.get("entry_bar", 0) for t in trades], dtype=np.int64),
            np.array([t.get("commission", 0.0) for t in trades]),
            np.array([t.get("regime", 0) for t in trades], dtype=np.int64),
        )
    )
    lay = bret = None
    if blocks is not None:
        # return of each block: equity at its last bar / equity at the previous block's last bar - 1
        lay = layout(universe.timestamps, run.t_first, run.t_last, blocks, universe.bars_per_day)
        begin = lay.starts - run.t_first
        end = np.r_[begin[1:], run.t_last - run.t_first + 1]
        bret = np.zeros((len(run.portfolios), lay.n))
        with np.errstate(divide="ignore", invalid="ignore"):
            for k, p in enumerate(run.portfolios):
                curve = np.r_[p.initial, p.equity_curve]
                bret[k] = curve[end] / curve[begin] - 1.0
    return SimResult(
        run.ids,
        metrics,
        regimes,
        events,
        equity,
        run.t_first,
        run.t_last,
        bank,
        run.containers,
        run.bus.delivered,
        block_returns=bret,
        blocks=lay,
    )
