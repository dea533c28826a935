"""One benchmark measurement in a fresh process: ``python benchmarks/worker.py '<task json>'``.

Prints one JSON line: median seconds (after a warm-up), the repetitions,
throughput, peak and baseline memory, and the per-combination results used
for agreement checks.  Tasks: engine, ceiling, vectorbt, backtesting, backtrader.
"""

from __future__ import annotations

import json
import math
import sys
import time

import numpy as np
from common import FAST, INITIAL, SLOW, peak_mb, rss_mb, spy_bars, synthetic_bars, timed

PAIRS = [(int(f), int(s)) for f in FAST for s in SLOW]
FIRST = int(max(SLOW)) - 1  # every library scores from the longest warm-up, as the engine does


def load(task) -> dict:
    src = task.get("source", "synthetic")
    if src == "synthetic":
        return synthetic_bars(int(task["bars"]), seed=int(task.get("seed", 1)))
    bars = spy_bars("1m" if src == "spy1m" else "5m")
    if bars is None:
        raise SystemExit(f"no SPY data for {src}")
    return bars


def _pairs(task):
    k = task.get("combos")
    return PAIRS if not k else PAIRS[: int(k)]


# ------------------------------------------------------------------ engine


def engine(task) -> dict:
    import sweep
    from containers.data import Universe, frequency
    from containers.feature_hub import FeatureHub
    from sweep.engine import build_tables, simulate

    bars = load(task)
    base = rss_mb()
    per_day, per_year = frequency(bars["timestamp"])
    u = Universe(
        "B",
        bars["timestamp"],
        *(np.ascontiguousarray(bars[k]) for k in ("open", "high", "low", "close", "volume")),
        "bench",
        per_day,
        per_year,
    )
    cfg = {
        "data": {"synthetic": {"bars": 100}},
        "strategies": [{"type": "ma_crossover", "parameters": {"fast": FAST.tolist(), "slow": SLOW.tolist()}}],
        "portfolio": {
            "initial_capital": INITIAL,
            "position_size": 1.0,
            "allow_short": False,
            "fractional_shares": not task.get("integer", False),
        },
        "execution": {"commission": {"rate": float(task.get("fee", 0.0))}},
    }
    plan = sweep.expand(cfg, count_data=False)
    t = time.perf_counter()
    tables = build_tables(plan, FeatureHub(plan.features, u.bars_per_day))
    ids = np.arange(plan.combinations)
    simulate(plan, u, ids[:2], tables, threads=task.get("threads"))  # compile or load from cache
    cold = time.perf_counter() - t
    med, times, res = timed(
        lambda: simulate(plan, u, ids, tables, threads=task.get("threads")), reps=int(task.get("reps", 3))
    )
    order = [plan.combination(int(i))["strategy_params"] for i in ids]
    pos = {(o["fast"], o["slow"]): k for k, o in enumerate(order)}
    idx = [pos[p] for p in PAIRS]
    return {
        "seconds": med,
        "times": times,
        "compile_or_load_s": cold,
        "bars": u.n,
        "combos": len(ids),
        "final_equity": res.metrics["final_equity"][idx].tolist(),
        "trades": res.metrics["trades"][idx].tolist(),
        "base_mb": base,
        "peak_mb": peak_mb(),
    }


def ceiling(task) -> dict:
    """The hand-written kernel on the grid ``fast`` x ``slow`` (default: the 100-combination MA grid)."""
    from ceiling import run_ceiling

    bars = load(task)
    base = rss_mb()
    fast = np.asarray(task.get("fast", FAST), dtype=np.int64)
    slow = np.asarray(task.get("slow", SLOW), dtype=np.int64)
    run_ceiling(bars["open"][:1000], bars["close"][:1000], FAST, SLOW)  # compile or load from cache
    med, times, res = timed(
        lambda: run_ceiling(bars["open"], bars["close"], fast, slow, float(task.get("fee", 0.0)), INITIAL),
        reps=int(task.get("reps", 3)),
    )
    return {
        "seconds": med,
        "times": times,
        "bars": len(bars["close"]),
        "combos": len(fast) * len(slow),
        "final_equity": res["final_equity"].tolist(),
        "trades": res["trades"].tolist(),
        "base_mb": base,
        "peak_mb": peak_mb(),
    }


# ---------------------------------------------------------------- vectorbt


def _vbt_signals(long: np.ndarray):
    """Hold long while fast > slow from the common first bar; signals act one bar later, at the open."""
    long = long.copy()
    long[:FIRST] = False
    entries = np.zeros_like(long)
    exits = np.zeros_like(long)
    entries[1:] = long[:-1]
    exits[1:] = ~long[:-1]
    exits[: FIRST + 1] = False
    return entries, exits


def vectorbt(task) -> dict:
    import pandas as pd
    import vectorbt as vbt

    bars = load(task)
    base = rss_mb()
    fee = float(task.get("fee", 0.0))
    pairs = _pairs(task)
    close = pd.Series(bars["close"])
    open_ = pd.Series(bars["open"])

    def go(ma_source=None):
        windows = sorted({w for p in pairs for w in p})
        if ma_source is None:
            ma = vbt.MA.run(close, window=windows).ma.to_numpy()
        else:
            ma = ma_source
        col = {w: k for k, w in enumerate(windows)}
        f = ma[:, [col[a] for a, _ in pairs]]
        s = ma[:, [col[b] for _, b in pairs]]
        with np.errstate(invalid="ignore"):
            entries, exits = _vbt_signals(f > s)
        pf = vbt.Portfolio.from_signals(
            close=close,
            entries=entries,
            exits=exits,
            price=open_,
            size=np.inf,
            fees=fee,
            init_cash=INITIAL,
            freq="1min",
        )
        return pf.final_value().to_numpy(), pf.trades.closed.count().to_numpy()

    med, times, (final, trades) = timed(go, reps=int(task.get("reps", 3)))
    out = {
        "seconds": med,
        "times": times,
        "bars": len(close),
        "combos": len(pairs),
        "final_equity": final.tolist(),
        "trades": trades.tolist(),
        "base_mb": base,
        "peak_mb": peak_mb(),
    }
    if task.get("with_engine_ma"):
        # same fills, but the moving averages of the feature hub: separates rounding of the MAs from the fill model
        from containers.feature_hub import FeatureHub

        windows = sorted({w for p in pairs for w in p})
        hub = FeatureHub([f"sma(close,{w})" for w in windows])
        data = np.vstack([bars["open"], bars["high"], bars["low"], bars["close"], bars["volume"]])
        ma = hub.compute_all(np.ascontiguousarray(data), chunk=65_536)[hub.rows].T
        f2, t2 = go(np.ascontiguousarray(ma))
        out["final_equity_engine_ma"] = f2.tolist()
        out["trades_engine_ma"] = t2.tolist()
    return out


# -------------------------------------------------------------- backtesting.py


_BT_BARS = 0  # bars of the current backtesting.py data (module level: strategies must pickle)


def _pandas_bars(bars: dict, capitalized: bool = False):
    """The bars as a pandas OHLCV frame indexed by naive UTC timestamps (what the peers take)."""
    import pandas as pd

    cols = ("open", "high", "low", "close", "volume")
    return pd.DataFrame(
        {(c.capitalize() if capitalized else c): bars[c] for c in cols},
        index=pd.to_datetime(bars["timestamp"], utc=True).tz_localize(None),
    )


def _sma(x, n):
    import pandas as pd

    return pd.Series(x).rolling(n).mean().to_numpy()


def _bt_strategy():
    from backtesting import Strategy

    class BtMaCross(Strategy):
        fast = 10
        slow = 30

        def init(self):
            self.f = self.I(_sma, self.data.Close, self.fast)
            self.s = self.I(_sma, self.data.Close, self.slow)

        def next(self):
            if len(self.data) <= FIRST or len(self.data) >= _BT_BARS:  # common warm-up; no decision on the last bar
                return
            if self.f[-1] > self.s[-1]:
                if not self.position:
                    self.buy()
            elif self.position:
                self.position.close()

    BtMaCross.__qualname__ = "BtMaCross"
    BtMaCross.__module__ = __name__
    return BtMaCross


def backtesting(task) -> dict:
    import warnings

    from backtesting import Backtest

    global _BT_BARS
    warnings.filterwarnings("ignore")
    bars = load(task)
    base = rss_mb()
    fee = float(task.get("fee", 0.0))
    df = _pandas_bars(bars, capitalized=True)  # backtesting.py wants Open, High, ...
    _BT_BARS = len(df)
    pairs = _pairs(task)
    fasts = sorted({a for a, _ in pairs})
    slows = sorted({b for _, b in pairs})
    wanted = set(pairs)

    def go():
        bt = Backtest(
            df,
            BtMaCross,
            cash=INITIAL,
            commission=fee,
            trade_on_close=False,
            exclusive_orders=False,
            finalize_trades=False,
        )
        _, heat = bt.optimize(
            fast=fasts,
            slow=slows,
            maximize="Equity Final [$]",
            return_heatmap=True,
            constraint=lambda p: (p.fast, p.slow) in wanted,
        )
        return heat

    med, times, heat = timed(go, reps=int(task.get("reps", 1)), warmup=0)
    final = [float(heat.get((a, b), np.nan)) for a, b in pairs]
    return {
        "seconds": med,
        "times": times,
        "bars": len(df),
        "combos": len(pairs),
        "final_equity": final,
        "base_mb": base,
        "peak_mb": peak_mb(),
    }


# -------------------------------------------------------------- backtrader


def backtrader(task) -> dict:
    import backtrader as bt

    bars = load(task)
    base = rss_mb()
    fee = float(task.get("fee", 0.0))
    df = _pandas_bars(bars)
    pairs = _pairs(task)

    class MaCross(bt.Strategy):
        params = (("fast", 10), ("slow", 30))

        def __init__(self):
            self.f = bt.indicators.SMA(self.data.close, period=self.p.fast)
            self.s = bt.indicators.SMA(self.data.close, period=self.p.slow)

        def next(self):
            if len(self.data) <= FIRST:
                return
            if self.f[0] > self.s[0]:
                if not self.position:
                    self.buy()  # sized by the AllInSizer at this bar's close, filled at the next open
            elif self.position:
                self.close()

        def stop(self):
            self.final = self.broker.getvalue()

    def go():
        cerebro = bt.Cerebro(stdstats=False, optreturn=False, maxcpus=1)
        cerebro.adddata(bt.feeds.PandasData(dataname=df))
        cerebro.broker.setcash(INITIAL)
        cerebro.broker.setcommission(commission=fee)
        cerebro.addsizer(bt.sizers.AllInSizer, percents=99)
        cerebro.optstrategy(MaCross, fast=sorted({a for a, _ in pairs}), slow=sorted({b for _, b in pairs}))
        runs = cerebro.run()
        return {(r[0].p.fast, r[0].p.slow): r[0].final for r in runs}

    med, times, finals = timed(go, reps=int(task.get("reps", 1)), warmup=0)
    fasts, slows = sorted({a for a, _ in pairs}), sorted({b for _, b in pairs})
    n_runs = len(fasts) * len(slows)
    return {
        "seconds": med,
        "times": times,
        "bars": len(df),
        "combos": n_runs,
        "final_equity": [float(finals.get(p, math.nan)) for p in pairs],
        "base_mb": base,
        "peak_mb": peak_mb(),
    }


# -------------------------------------------------------------- whole runs


def engine_run(task) -> dict:
    """A complete ``sweep.run`` (results written to a temporary folder unless in memory).

    ``reps`` > 1: the median of that many runs, after one warm-up run of the whole config
    (``warm: "full"``) or of the same services on 3,000 synthetic bars (the default), so
    compiling or loading compiled kernels is not part of the measured run.  Returns the
    stage breakdown (``sweep.stages``) of the median run.
    """
    import tempfile

    import sweep
    import sweep.runner  # noqa: F401  (imports are not part of the measured run)
    from sweep import stages

    cfg = task["config"]
    kw = {"progress": False, "engine": task.get("engine", "fast"), "threads": task.get("threads")}
    small = {
        **cfg,
        "name": "warmup",
        "results_storage": "memory",
        "data": {"synthetic": {**cfg.get("data", {}).get("synthetic", {}), "bars": 3000}},
    }
    with tempfile.TemporaryDirectory() as tmp:
        if task.get("warm") == "full":
            sweep.run(cfg, results_dir=tmp, force=True, **kw)
        else:
            try:
                sweep.run(small, **kw)
            except sweep.SweepError:  # warm-ups longer than 3,000 bars: warm up on the whole config instead
                sweep.run({**cfg, "name": "warmup", "results_storage": "memory"}, **kw)
        base = rss_mb()
        runs = []
        for _ in range(int(task.get("reps", 1))):
            t = time.perf_counter()
            res = sweep.run(cfg, results_dir=tmp, force=True, **kw)
            runs.append((time.perf_counter() - t, stages.tally(), res))
        runs.sort(key=lambda r: r[0])
        seconds, tally, res = runs[len(runs) // 2]
        stats = getattr(res, "run_stats", {})
        m = res.metrics
        out = {
            "seconds": seconds,
            "times": sorted(r[0] for r in runs),
            "stages": tally,
            "rows": m.height,
            "base_mb": base,
            "peak_mb": peak_mb(),
            "events_delivered": sum(v.get("delivered", 0) for v in stats.values()),
            "containers": next((v["containers"] for v in stats.values() if "containers" in v), None),
            "final_equity": m.sort("combo_id")["final_equity"].to_list() if m.height <= 20_000 else None,
            "trades": m.sort("combo_id")["trades"].to_list() if m.height <= 20_000 else None,
        }
        if {"strategy.fast", "strategy.slow"} <= set(m.columns) and m.height <= 20_000:  # MA grids: by (fast, slow)
            mm = m.sort("combo_id")
            out["keys"] = [[int(a), int(b)] for a, b in zip(mm["strategy.fast"], mm["strategy.slow"])]
    return out


def split(task) -> dict:
    """Seconds in the feature hub and in the combination loop of one simulate (engine.simulate's timings)."""
    import sweep
    from containers.data import Universe, frequency
    from containers.feature_hub import FeatureHub
    from sweep.engine import build_tables, simulate

    bars = load(task)
    per_day, per_year = frequency(bars["timestamp"])
    u = Universe(
        "B",
        bars["timestamp"],
        *(np.ascontiguousarray(bars[k]) for k in ("open", "high", "low", "close", "volume")),
        "b",
        per_day,
        per_year,
    )
    plan = sweep.expand(
        {
            "data": {"synthetic": {"bars": 100}},
            "strategies": [{"type": "ma_crossover", "parameters": {"fast": FAST.tolist(), "slow": SLOW.tolist()}}],
        },
        count_data=False,
    )
    tables = build_tables(plan, FeatureHub(plan.features, u.bars_per_day))
    ids = np.arange(plan.combinations)
    threads = task.get("threads")
    simulate(plan, u, ids[:2], tables, threads=threads)
    runs = []
    for _ in range(int(task.get("reps", 3))):
        t: dict = {}
        simulate(plan, u, ids, tables, threads=threads, timings=t)
        runs.append((t["features_s"], t["loop_s"]))
    return {
        "features_s": float(np.median([r[0] for r in runs])),
        "loop_s": float(np.median([r[1] for r in runs])),
        "bars": u.n,
        "combos": len(ids),
        "peak_mb": peak_mb(),
    }


BtMaCross = None
try:  # defined at import so backtesting.py's worker processes can unpickle it
    BtMaCross = _bt_strategy()
except ImportError:  # backtesting.py not installed: only its task needs it
    pass

TASKS = {
    "engine": engine,
    "ceiling": ceiling,
    "vectorbt": vectorbt,
    "backtesting": backtesting,
    "backtrader": backtrader,
    "engine_run": engine_run,
    "split": split,
}

if __name__ == "__main__":
    task = json.loads(sys.argv[1])
    t0 = time.perf_counter()
    result = TASKS[task["kind"]](task)
    result["task"] = task
    result["seconds_total"] = time.perf_counter() - t0
    print(json.dumps(result))
