"""Containers of the naive topology, used by the reference engine.

One object per component and per combination, exactly as the naive plan
counts them: a data container, a feature hub and an execution container
shared by all; per combination a classifier container (when classifiers are
configured), a strategy container, a risk container (when validators are
configured) and a portfolio container.  They talk only through the bus, one
event at a time, in plain Python (services run as their pure-Python
``py_func``).  Slow and obviously correct: the oracle for the fused kernel.
"""

from __future__ import annotations

import math

import numpy as np

from services import state as S
from services.compiled import python_of

from .events import EventBus
from .feature_hub import FeatureHub


def _ieee_div(a: float, b: float) -> float:
    """a / b with IEEE results for b == 0 (inf or NaN), as the fused kernel computes it."""
    if b != 0.0:
        return a / b
    return math.nan if a == 0.0 else math.copysign(math.inf, a) * math.copysign(1.0, b)


class DataContainer:
    """Publishes each bar: BAR(t, open, high, low, close)."""

    def __init__(self, bus: EventBus, universe) -> None:
        self.bus = bus
        self.u = universe

    def emit(self, t: int) -> None:
        u = self.u
        self.bus.publish(
            "BAR", (t, float(u.open[t]), float(u.high[t]), float(u.low[t]), float(u.close[t]), float(u.volume[t]))
        )


class FeatureHubContainer:
    """Computes every unique feature for the new bar and publishes FEATURES(t, column)."""

    def __init__(self, bus: EventBus, features, bars_per_day: float, universe) -> None:
        self.bus = bus
        self.hub = FeatureHub(features, bars_per_day)
        self.u = universe
        self.n_rows = self.hub.n_rows
        bus.subscribe("BAR", self.on_bar)

    def on_bar(self, bar) -> None:
        t = bar[0]
        col = self.hub.compute(self.u.ohlcv(t, t + 1))[:, 0].copy()
        self.bus.publish("FEATURES", (t, np.append(col, np.nan)))  # last row: NaN for missing features


class ClassifierContainer:
    def __init__(self, bus, combo, spec, params, rows, n_regimes) -> None:
        self.bus, self.combo, self.fn = bus, combo, python_of(spec.func)
        self.params, self.rows, self.n_regimes = params, rows, n_regimes
        bus.subscribe("FEATURES", self.on_features)

    def on_features(self, msg) -> None:
        t, col = msg
        regime = int(self.fn(np.ascontiguousarray(col[self.rows]), self.params))
        if not 0 <= regime < self.n_regimes:
            regime = 0
        self.bus.publish("REGIME", (t, regime, col), key=self.combo)


class StrategyContainer:
    def __init__(self, bus, combo, spec, params, rows, mask, has_classifier) -> None:
        self.bus, self.combo, self.fn = bus, combo, python_of(spec.func)
        self.params, self.rows, self.mask = params, rows, mask
        if has_classifier:
            bus.subscribe("REGIME", self.on_regime, key=combo)
        else:
            bus.subscribe("FEATURES", lambda msg: self.on_regime((msg[0], 0, msg[1])))
        self.active = True

    def on_regime(self, msg) -> None:
        t, regime, col = msg
        if not self.active:
            return
        sig = float(self.fn(np.ascontiguousarray(col[self.rows]), self.params, regime))
        if not (self.mask >> regime) & 1:
            sig = 0.0
        self.bus.publish("SIGNAL", (t, sig, regime), key=self.combo)


class RiskContainer:
    """Runs the validator chain on a proposed order."""

    def __init__(self, bus, combo, validators) -> None:
        self.bus, self.combo = bus, combo
        self.chain = [(python_of(spec.func), limits) for spec, limits in validators]
        bus.subscribe("ORDER", self.on_order, key=combo)

    def on_order(self, order) -> None:
        q, price, state, fractional = order["qty"], order["price"], order["state"], order["fractional"]
        for fn, limits in self.chain:
            q = float(fn(q, price, state, limits))
        if not fractional:
            q = float(math.trunc(q))
        self.bus.publish("APPROVED", {**order, "qty": q}, key=self.combo)


class ExecutionContainer:
    """Prices approved orders: slippage against the order, commission; publishes FILL to the portfolio."""

    def __init__(self, bus) -> None:
        self.bus = bus
        bus.subscribe("ROUTE", self.on_order)

    @staticmethod
    def price(price, qty, ref_range, ex) -> float:
        slip = price * ex["bps"] * 1e-4 + ex["range_fraction"] * ref_range
        return price + slip if qty > 0 else price - slip

    @staticmethod
    def commission(qty, px, ex) -> float:
        c = ex["fixed"] + ex["rate"] * abs(qty) * px + ex["per_share"] * abs(qty)
        return max(c, ex["minimum"])

    def on_order(self, order) -> None:
        ex = order["ex"]
        q = order["qty"]
        px = self.price(order["price"], q, order["range"], ex)
        cash, pos = order["cash"], order["pos"]
        cover = max(-pos, 0.0)
        if q > cover and order["size"] <= 1.0:  # no leverage: beyond covering a short, buys are paid from cash
            unit = px * (1.0 + ex["rate"]) + ex["per_share"]
            cap = max(0.0, min((cash - ex["fixed"]) / unit, (cash - ex["minimum"]) / px))
            if not order["fractional"]:
                cap = math.floor(cap)
            q = min(q, max(cap, cover))  # a cover always fills in full
        if q == 0.0:
            return
        fill = {"qty": q, "px": px, "price": order["price"], "t": order["t"], "regime": order["regime"]}
        self.bus.publish("FILL", fill, key=order["combo"])


class PortfolioContainer:
    """One combination's account: position, cash, trades, and the full equity/return history."""

    def __init__(self, bus, combo, settings, ex, has_risk, t_first, t_last, fill_close, record) -> None:
        self.bus, self.combo = bus, combo
        self.initial = settings["initial_capital"]
        self.size = settings["position_size"]
        self.allow_short = settings["allow_short"]
        self.fractional = settings["fractional_shares"]
        self.ex, self.has_risk = ex, has_risk
        self.t_first, self.t_last, self.fill_close = t_first, t_last, fill_close
        self.cash, self.pos, self.avg = self.initial, 0.0, 0.0
        self.peak = self.initial
        self.hse = self.lse = 0.0
        self.bit = 0.0
        self.last_sig = None
        self.pending, self.target, self.pend_reg, self.reg_prev = False, 0.0, 0, 0
        self.prev_range = 0.0
        self.equity_curve: list[float] = []
        self.returns: list[tuple[float, int]] = []  # (return, regime it is attributed to)
        self.exposed = 0
        self.trades: list[dict] = []
        self.trade: dict | None = None
        self.commission = self.traded = 0.0
        self.fills = 0
        self.events: list[list[float]] = []
        self.record = record
        bus.subscribe("BAR", self.on_bar)
        bus.subscribe("SIGNAL", self.on_signal, key=combo)
        bus.subscribe("FILL", self.on_fill, key=combo)
        bus.subscribe("APPROVED", lambda o: self.bus.publish("ROUTE", o), key=combo)

    # --- orders -------------------------------------------------------
    def _order(self, t, price, ref_range) -> None:
        if not (self.pending or (self.has_risk and self.pos != 0.0)):
            return
        eq = self.cash + self.pos * price
        q = 0.0
        if self.pending:
            q = self._size(eq, price, ref_range) - self.pos
        state = np.zeros(S.N_STATE)
        state[S.CASH], state[S.POSITION], state[S.AVG_PRICE], state[S.EQUITY] = self.cash, self.pos, self.avg, eq
        state[S.PEAK_EQUITY], state[S.HIGH_SINCE_ENTRY], state[S.LOW_SINCE_ENTRY] = self.peak, self.hse, self.lse
        state[S.BARS_IN_TRADE], state[S.INITIAL_CAPITAL] = self.bit, self.initial
        order = {
            "combo": self.combo,
            "t": t,
            "qty": q,
            "price": price,
            "range": ref_range,
            "state": state,
            "fractional": self.fractional,
            "ex": self.ex,
            "cash": self.cash,
            "pos": self.pos,
            "size": self.size,
            "regime": self.pend_reg if self.pending else self.reg_prev,
        }
        self.pending = False
        if self.has_risk:
            self.bus.publish("ORDER", order, key=self.combo)
        elif q != 0.0:
            self.bus.publish("ROUTE", order)

    def _size(self, eq: float, price: float, ref_range: float) -> float:
        """The goal position: worth target x the equity left after the order's commission, at the fill price."""
        k, pos, ex = self.target, self.pos, self.ex
        if k == 0.0 or eq <= 0.0:
            return 0.0
        up = 1.0 if k * eq / price > pos else -1.0
        px = ExecutionContainer.price(price, up, ref_range, ex)
        e = eq + pos * (px - price)  # the equity at the fill price
        per = ex["rate"] * px + ex["per_share"]  # commission per share beyond the fixed part
        # goal * px = k * (e - commission(goal - pos)); linear part first, then the minimum if it binds
        linear = k * (e - ex["fixed"] + up * per * pos) / (px + up * k * per)
        comm = max(ex["minimum"], ex["fixed"] + per * abs(linear - pos))
        if e <= comm:
            return 0.0
        goal = k * (e - comm) / px
        return goal if self.fractional else float(math.trunc(goal))

    def on_fill(self, fill) -> None:
        q, px, t, regime = fill["qty"], fill["px"], fill["t"], fill["regime"]
        pos = self.pos
        new = pos + q
        if abs(new) <= 1e-12 * abs(pos):
            new, q = 0.0, -pos
        comm = ExecutionContainer.commission(q, px, self.ex)
        self.cash = self.cash - q * px - comm
        self.pos = new
        self.commission += comm
        self.traded += abs(q) * px
        self.fills += 1
        self._event(1, t, q, px, comm, 0, 0, 0, 0, regime)
        if pos == 0.0:
            self._open(t, px, q, comm, regime, fill["price"])
        elif pos * q > 0.0:
            self.avg = (self.avg * abs(pos) + px * abs(q)) / abs(new)
            self.trade["value"] += abs(q) * px
            self.trade["commission"] += comm
            self.trade["max_qty"] = max(self.trade["max_qty"], abs(new))
        else:
            closing = min(abs(q), abs(pos))
            side = 1.0 if pos > 0 else -1.0
            c_close = comm * closing / abs(q)
            self.trade["realized"] += (px - self.avg) * closing * side
            self.trade["commission"] += c_close
            if new == 0.0 or new * pos < 0.0:
                tr = self.trade
                net = tr["realized"] - tr["commission"]
                ret = net / tr["value"] if tr["value"] > 0 else 0.0
                self.trades.append({**tr, "exit_bar": t, "exit_price": px, "pnl": net, "return": ret, "side": side})
                self._event(
                    3,
                    t,
                    side * tr["max_qty"],
                    px,
                    tr["commission"],
                    tr["entry_bar"],
                    tr["entry_price"],
                    net,
                    ret,
                    tr["regime"],
                )
                self.avg = 0.0
                self.trade = None
            if new * pos < 0.0:
                self._open(t, px, new, comm - c_close, regime, fill["price"])

    def _open(self, t, px, q, comm, regime, price) -> None:
        self.trade = {
            "entry_bar": t,
            "entry_price": px,
            "value": abs(q) * px,
            "realized": 0.0,
            "commission": comm,
            "regime": regime,
            "max_qty": abs(q),
        }
        self.avg, self.bit = px, 0.0
        # the best closes since entry: from the entry bar's close on; a close fill enters at that close
        # (``price``, before slippage), a fill at the open has seen no close of the trade yet
        self.hse, self.lse = (price, price) if self.fill_close else (-math.inf, math.inf)
        self._event(2, t, q, px, comm, t, px, 0, 0, regime)

    def _event(self, kind, t, q, px, comm, entry_bar, entry_price, pnl, ret, regime) -> None:
        if self.record:
            pos = 0.0 if kind == 3 else self.pos  # a POSITION_CLOSE reports the closed position as flat
            self.events.append([kind, t, q, px, comm, self.cash, pos, entry_bar, entry_price, pnl, ret, regime])

    # --- bar handling -------------------------------------------------
    def on_bar(self, bar) -> None:
        t, o, h, l, c, _ = bar
        if self.t_first <= t <= self.t_last:
            if not self.fill_close:
                self._order(t, o, self.prev_range)
            equity = self.cash + self.pos * c
            if self.pos != 0.0:
                self.exposed += 1
                self.bit += 1.0
                self.hse = max(self.hse, c)
                self.lse = min(self.lse, c)
            if t > self.t_first:
                self.returns.append((_ieee_div(equity, self.equity_curve[-1]) - 1.0, self.reg_prev))
            self.peak = max(self.peak, equity)
            self.equity_curve.append(equity)
            self.bus.publish("PORTFOLIO_UPDATE", (self.combo, t, equity), key=self.combo)
        self.prev_range = h - l
        self._bar = bar

    def on_signal(self, msg) -> None:
        t, sig, regime = msg
        if not (self.t_first <= t <= self.t_last):
            return
        if t < self.t_last or self.fill_close:
            if not math.isnan(sig):
                sig = min(1.0, max(-1.0, sig))
                if sig < 0.0 and not self.allow_short:
                    sig = 0.0
                if self.last_sig is None or sig != self.last_sig:
                    self.pending, self.target, self.pend_reg, self.last_sig = True, sig * self.size, regime, sig
            self.reg_prev = regime
        if self.fill_close:
            _, o, h, l, c, _ = self._bar
            self._order(t, c, h - l)
