"""The portfolio bank: one state row per combination, struct-of-arrays.

``bank[field, i]`` holds every field of portfolio ``i`` (cash, position,
trade accumulators, metric accumulators); ``reg[field, regime, i]`` the
per-regime accumulators.  A portfolio is a column of these arrays, not an
object with a bus.  This module also holds the portfolio's rules, shared by
the fused kernel: sizing (signal -> target shares) and the accounting of a
fill (average price, realised P&L, trade records, events).

Sizing, at the fill (the next bar's open by default), for a target exposure
``target = signal * position_size``:

- the fill price ``px`` is the reference price (open, or close with ``fill:
  close``) moved against the order by the slippage; the order's direction is
  up when ``target * equity / price > position`` (equity and price at the
  reference price), else down;
- ``E = cash + position * px`` is the equity at the fill price;
- the goal position solves ``goal * px = target * (E - C)``, where ``C`` is
  the commission of the order ``goal - position`` itself:
  ``max(minimum, fixed + (rate * px + per_share) * |goal - position|)``.
  After the fill the position is worth ``target`` times the equity left after
  its commission, both at the fill price, so ``target = 1`` spends the cash
  exactly and a short-to-long reversal pays its cover out of the same sum.
  Closed form (``s`` = +1 up, -1 down, ``c = rate * px + per_share``):
  ``g = target * (E - fixed + s * c * position) / (px + s * target * c)``,
  ``C = max(minimum, fixed + c * |g - position|)``,
  ``goal = target * (E - C) / px``;
  ``goal = 0`` when ``target = 0``, the equity is <= 0 or ``E <= C``;
- integer-share portfolios truncate ``goal`` toward zero; the order is
  ``goal - position`` (then the risk validators, truncated again).

Cash cap (``position_size <= 1``: no leverage): of a buy, the part beyond
covering a short is limited to what the cash pays after commission, the
order to ``max(cover, max_affordable(cash, px))`` shares (whole shares:
rounded down).  Covering a short always fills in full, even when that leaves
negative cash: an account that lost more than it had is negative equity, not
margin.  With the sizing above the cap only binds on rounding or when a risk
validator raises an order.
"""

from __future__ import annotations

import math
from enum import IntEnum
from typing import NamedTuple

import numpy as np
from numba import njit

from .execution import X_FILL, X_FIXED, X_MINIMUM, X_PER_SHARE, X_RATE, commission, fill_price, max_affordable


# ---- bank fields -------------------------------------------------------
class Field(IntEnum):
    """The rows of the portfolio bank, ``bank[Field.CASH, i]`` - declared here and only here."""

    CASH = 0
    POSITION = 1
    AVG_PRICE = 2  # average entry price of the open position
    PEAK = 3  # highest equity so far
    HIGH_SINCE = 4  # highest close since entry (risk validators; see services.state)
    LOW_SINCE = 5  # lowest close since entry
    BARS_IN_TRADE = 6
    EQ_PREV = 7  # equity at the previous bar
    LAST_SIGNAL = 8
    PENDING = 9  # 1: a new target waits for the next fill
    PENDING_TARGET = 10
    PENDING_REGIME = 11
    REGIME_PREV = 12
    N_RET = 13  # bar returns so far, and their sums
    SUM_R = 14
    SUM_R2 = 15
    DOWN_R2 = 16
    MIN_RATIO = 17  # lowest equity / peak so far
    DD_LEN = 18
    MAX_DD_LEN = 19
    EXPOSED = 20
    EQ_SUM = 21
    SCORED = 22
    BLOCK = 23  # block of returns in progress (-1: none yet)
    BLOCK_EQ = 24  # equity at the end of the previous block
    T_ENTRY_BAR = 25  # the open trade: entry bar, value, realised P&L, commission, regime, price, size
    T_ENTRY_VALUE = 26
    T_REALIZED = 27
    T_COMM = 28
    T_REGIME = 29
    T_ENTRY_PRICE = 30
    T_MAX_QTY = 31
    TRADES = 32  # closed trades and their sums
    WINS = 33
    GROSS_PROFIT = 34
    GROSS_LOSS = 35
    SUM_TRADE_RET = 36
    SUM_TRADE_PNL = 37
    COMMISSION = 38
    TRADED = 39
    FILLS = 40
    INITIAL = 41


N_FIELDS = len(Field)


class RegimeField(IntEnum):
    """The rows of the per-regime accumulators, ``reg[RegimeField.BARS, regime, i]``."""

    BARS = 0
    SUM = 1
    SUM2 = 2
    GROWTH = 3
    TRADES = 4
    WINS = 5
    PNL = 6


N_REG_FIELDS = len(RegimeField)

# portfolio settings row (containers.settings.PORTFOLIO_PARAMS order)
P_INITIAL, P_SIZE, P_SHORT, P_FRACTIONAL = range(4)

# ---- events ------------------------------------------------------------
EV_FILL, EV_OPEN, EV_CLOSE = 1.0, 2.0, 3.0
EVENT_NAMES = {1: "FILL", 2: "POSITION_OPEN", 3: "POSITION_CLOSE"}
EV_COLUMNS = (
    "kind",
    "bar",
    "qty",
    "price",
    "commission",
    "cash",
    "position",
    "entry_bar",
    "entry_price",
    "pnl",
    "return",
    "regime",
)
N_EV = len(EV_COLUMNS)
EVENTS_PER_BAR = 4  # most a bar can add: a fill, a close and an open (reversal), with room to spare


@njit(cache=True, nogil=True)
def drain_events(ev, ev_n, ids):
    """Copy the filled part of the kernel's event buffers out as columns (EV_COLUMNS x events) and reset them.

    Returns (owner combination of each event, columns); combinations in order, each one's events in time order.
    """
    total = 0
    for i in range(ev_n.shape[0]):
        total += ev_n[i]
    owner = np.empty(total, dtype=np.int64)
    cols = np.empty((N_EV, total))
    k = 0
    for i in range(ev_n.shape[0]):
        for e in range(ev_n[i]):
            owner[k] = ids[i]
            for c in range(N_EV):
                cols[c, k] = ev[i, e, c]
            k += 1
        ev_n[i] = 0
    return owner, cols


def new_bank(n: int, initial: np.ndarray, n_regimes: int) -> tuple[np.ndarray, np.ndarray]:
    """Fresh state for ``n`` portfolios with the given initial capital each."""
    # (field, combination) views of combination-major storage: one combination's fields share cache
    # lines with no other's, so threads working on neighbouring combinations do not take lines from
    # each other (a few combinations on two cores ran no faster than on one with field-major storage)
    bank = np.zeros((n, N_FIELDS), dtype=np.float64).T
    bank[Field.CASH] = initial
    bank[Field.PEAK] = initial
    bank[Field.EQ_PREV] = initial
    bank[Field.INITIAL] = initial
    bank[Field.LAST_SIGNAL] = np.nan
    bank[Field.MIN_RATIO] = 1.0
    bank[Field.BLOCK] = -1.0  # no block started yet
    bank[Field.BLOCK_EQ] = initial
    reg = np.zeros((n, max(1, n_regimes), N_REG_FIELDS), dtype=np.float64).transpose(2, 1, 0)
    reg[RegimeField.GROWTH] = 1.0
    return bank, reg


@njit(cache=True, nogil=True)
def target_qty(target, equity, price, pos, ref_range, ex, fractional):
    """Order that moves ``pos`` to ``target`` (a signed fraction of equity) at the fill (see the module docstring).

    ``equity`` and ``price`` are at the reference price; the goal is sized at the fill price, net of
    the order's own commission.
    """
    goal = 0.0
    if target != 0.0 and equity > 0.0:
        s = 1.0 if target * equity / price > pos else -1.0
        px = fill_price(price, s, ref_range, ex)
        e = equity + pos * (px - price)  # the equity at the fill price
        c = ex[X_RATE] * px + ex[X_PER_SHARE]
        g = target * (e - ex[X_FIXED] + s * c * pos) / (px + s * target * c)
        comm = ex[X_FIXED] + c * abs(g - pos)
        if comm < ex[X_MINIMUM]:
            comm = ex[X_MINIMUM]
        if e > comm:
            goal = target * (e - comm) / px
            if not fractional:
                goal = math.trunc(goal)
    return goal - pos


@njit(cache=True, nogil=True)
def _event(ev, ev_n, i, rec, kind, t, qty, px, comm, cash, pos, entry_bar, entry_price, pnl, ret, regime):
    if not rec:
        return
    k = int(ev_n[i])
    row = ev[i, k]
    row[0] = kind
    row[1] = t
    row[2] = qty
    row[3] = px
    row[4] = comm
    row[5] = cash
    row[6] = pos
    row[7] = entry_bar
    row[8] = entry_price
    row[9] = pnl
    row[10] = ret
    row[11] = regime
    ev_n[i] = k + 1


@njit(cache=True, nogil=True)
def _open_trade(bank, i, t, px, qty, comm, regime, high, low):
    bank[Field.T_ENTRY_BAR, i] = t
    bank[Field.T_ENTRY_PRICE, i] = px
    bank[Field.T_ENTRY_VALUE, i] = abs(qty) * px
    bank[Field.T_REALIZED, i] = 0.0
    bank[Field.T_COMM, i] = comm
    bank[Field.T_REGIME, i] = regime
    bank[Field.T_MAX_QTY, i] = abs(qty)
    bank[Field.AVG_PRICE, i] = px
    bank[Field.HIGH_SINCE, i] = high
    bank[Field.LOW_SINCE, i] = low
    bank[Field.BARS_IN_TRADE, i] = 0.0


@njit(cache=True, nogil=True)
def _close_trade(bank, reg, ev, ev_n, i, t, px, cash_after, side, rec):
    net = bank[Field.T_REALIZED, i] - bank[Field.T_COMM, i]
    basis = bank[Field.T_ENTRY_VALUE, i]
    ret = net / basis if basis > 0.0 else 0.0
    k = int(bank[Field.T_REGIME, i])
    bank[Field.TRADES, i] += 1.0
    reg[RegimeField.TRADES, k, i] += 1.0
    reg[RegimeField.PNL, k, i] += net
    if net > 0.0:
        bank[Field.WINS, i] += 1.0
        bank[Field.GROSS_PROFIT, i] += net
        reg[RegimeField.WINS, k, i] += 1.0
    else:
        bank[Field.GROSS_LOSS, i] -= net
    bank[Field.SUM_TRADE_RET, i] += ret
    bank[Field.SUM_TRADE_PNL, i] += net
    _event(
        ev,
        ev_n,
        i,
        rec,
        EV_CLOSE,
        t,
        side * bank[Field.T_MAX_QTY, i],
        px,
        bank[Field.T_COMM, i],
        cash_after,
        0.0,
        bank[Field.T_ENTRY_BAR, i],
        bank[Field.T_ENTRY_PRICE, i],
        net,
        ret,
        k,
    )
    bank[Field.AVG_PRICE, i] = 0.0


@njit(cache=True, nogil=True)
def execute(bank, reg, ev, ev_n, i, t, qty, price, ref_range, regime, ex, size, fractional, rec):
    """Fill ``qty`` shares for portfolio ``i`` at bar ``t`` and book it: cash, position, trades, events.

    ``price`` is the reference price (open or close); slippage and commission
    come from the execution row ``ex``.  Returns the quantity actually filled.
    """
    cash = bank[Field.CASH, i]
    pos = bank[Field.POSITION, i]
    px = fill_price(price, qty, ref_range, ex)
    cover = -pos if pos < 0.0 else 0.0
    if qty > cover and size <= 1.0:  # no leverage: what opens or adds to a long is paid from cash
        cap = max_affordable(cash, px, ex)  # the whole order, commission included
        if not fractional:
            cap = math.floor(cap)
        if cap < cover:
            cap = cover  # covering a short always fills in full
        if qty > cap:
            qty = cap
    if qty == 0.0:
        return 0.0
    new_pos = pos + qty
    if abs(new_pos) <= 1e-12 * abs(pos):
        new_pos = 0.0
        qty = -pos
    comm = commission(qty, px, ex)
    cash_after = cash - qty * px - comm
    # best closes since entry start from the entry bar's close: a close fill enters at it (the
    # reference price, before slippage); a fill at the open has seen none yet (the bar loop folds in
    # each close from the entry bar's on)
    high, low = (price, price) if ex[X_FILL] != 0.0 else (-math.inf, math.inf)
    bank[Field.CASH, i] = cash_after
    bank[Field.POSITION, i] = new_pos
    bank[Field.COMMISSION, i] += comm
    bank[Field.TRADED, i] += abs(qty) * px
    bank[Field.FILLS, i] += 1.0
    _event(ev, ev_n, i, rec, EV_FILL, t, qty, px, comm, cash_after, new_pos, 0.0, 0.0, 0.0, 0.0, regime)
    if pos == 0.0:
        _open_trade(bank, i, t, px, qty, comm, regime, high, low)
        _event(ev, ev_n, i, rec, EV_OPEN, t, qty, px, comm, cash_after, new_pos, t, px, 0.0, 0.0, regime)
    elif pos * qty > 0.0:
        a = abs(new_pos)
        bank[Field.AVG_PRICE, i] = (bank[Field.AVG_PRICE, i] * abs(pos) + px * abs(qty)) / a
        bank[Field.T_ENTRY_VALUE, i] += abs(qty) * px
        bank[Field.T_COMM, i] += comm
        if a > bank[Field.T_MAX_QTY, i]:
            bank[Field.T_MAX_QTY, i] = a
    else:
        closing = abs(qty) if abs(qty) < abs(pos) else abs(pos)
        side = 1.0 if pos > 0.0 else -1.0
        comm_close = comm * closing / abs(qty)
        bank[Field.T_REALIZED, i] += (px - bank[Field.AVG_PRICE, i]) * closing * side
        bank[Field.T_COMM, i] += comm_close
        if new_pos == 0.0 or new_pos * pos < 0.0:
            _close_trade(bank, reg, ev, ev_n, i, t, px, cash_after, side, rec)
        if new_pos * pos < 0.0:
            _open_trade(bank, i, t, px, new_pos, comm - comm_close, regime, high, low)
            _event(
                ev,
                ev_n,
                i,
                rec,
                EV_OPEN,
                t,
                new_pos,
                px,
                comm - comm_close,
                cash_after,
                new_pos,
                t,
                px,
                0.0,
                0.0,
                regime,
            )
    return qty


class OpenPositions(NamedTuple):
    """The positions still open in a bank (what frames and reports need; they never read the layout)."""

    position: np.ndarray
    avg_price: np.ndarray
    entry_bar: np.ndarray  # int64
    commission: np.ndarray  # commission paid on the open trade so far
    regime: np.ndarray  # int64: regime at the trade's entry


def open_positions(bank: np.ndarray) -> OpenPositions:
    """Every combination's open position (zero where flat)."""
    return OpenPositions(
        bank[Field.POSITION].copy(),
        bank[Field.AVG_PRICE].copy(),
        bank[Field.T_ENTRY_BAR].astype(np.int64),
        bank[Field.T_COMM].copy(),
        bank[Field.T_REGIME].astype(np.int64),
    )


def bank_of_positions(positions: OpenPositions) -> np.ndarray:
    """A bank holding just these open positions (the reference engine reports through it)."""
    bank = np.zeros((N_FIELDS, len(positions.position)))
    bank[Field.POSITION] = positions.position
    bank[Field.AVG_PRICE] = positions.avg_price
    bank[Field.T_ENTRY_BAR] = positions.entry_bar
    bank[Field.T_COMM] = positions.commission
    bank[Field.T_REGIME] = positions.regime
    return bank


def finalize(bank: np.ndarray, reg: np.ndarray, final_close: float, bars_per_year: float) -> dict[str, np.ndarray]:
    """Metrics of every portfolio from its accumulators (see containers.metrics for meanings)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        initial = bank[Field.INITIAL]
        final = bank[Field.CASH] + bank[Field.POSITION] * final_close
        n = bank[Field.N_RET]
        mean = bank[Field.SUM_R] / n
        var = (bank[Field.SUM_R2] - n * mean * mean) / (n - 1.0)
        std = np.sqrt(np.where(var > 0.0, var, 0.0))
        ann = math.sqrt(bars_per_year)
        sharpe = np.where((n > 1) & (std > 0.0), mean / std * ann, np.nan)
        down = np.sqrt(bank[Field.DOWN_R2] / n)
        sortino = np.where((n > 1) & (down > 0.0), mean / down * ann, np.nan)
        years = n / bars_per_year
        growth = final / initial
        cagr = np.where(growth > 0.0, np.power(np.where(growth > 0.0, growth, 1.0), 1.0 / years) - 1.0, -1.0)
        cagr = np.where(years > 0.0, cagr, np.nan)
        max_dd = 1.0 - bank[Field.MIN_RATIO]
        trades = bank[Field.TRADES]
        gp, gl = bank[Field.GROSS_PROFIT], bank[Field.GROSS_LOSS]
        pf = np.where(gl > 0.0, gp / gl, np.where(gp > 0.0, np.inf, np.nan))
        scored = bank[Field.SCORED]
        mean_eq = bank[Field.EQ_SUM] / scored
        out = {
            "total_return": growth - 1.0,
            "cagr": cagr,
            "sharpe": sharpe,
            "sortino": sortino,
            "max_drawdown": max_dd,
            "max_drawdown_duration": bank[Field.MAX_DD_LEN].copy(),
            "calmar": np.where(max_dd > 0.0, cagr / max_dd, np.nan),
            "win_rate": np.where(trades > 0, bank[Field.WINS] / trades, np.nan),
            "profit_factor": pf,
            "trades": trades.astype(np.int64),
            "avg_trade": np.where(trades > 0, bank[Field.SUM_TRADE_PNL] / trades, np.nan),
            "avg_trade_return": np.where(trades > 0, bank[Field.SUM_TRADE_RET] / trades, np.nan),
            "exposure": np.where(scored > 0, bank[Field.EXPOSED] / scored, np.nan),
            "turnover": np.where(mean_eq > 0, bank[Field.TRADED] / mean_eq, np.nan),
            "final_equity": final,
            "total_commission": bank[Field.COMMISSION].copy(),
            "fills": bank[Field.FILLS].astype(np.int64),
            "open_position": bank[Field.POSITION].copy(),
        }
    code = (trades == 0).astype(np.int64) + 2 * ((n < 2) | ~(std > 0.0)).astype(np.int64)
    out["flags"] = np.array(["", "no_trades", "zero_variance", "no_trades;zero_variance"])[code]
    return out


def finalize_regimes(reg: np.ndarray, bars_per_year: float) -> dict[str, np.ndarray]:
    """Per-regime metrics, arrays shaped (n_regimes, n_portfolios)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        n = reg[RegimeField.BARS]
        mean = reg[RegimeField.SUM] / n
        var = (reg[RegimeField.SUM2] - n * mean * mean) / (n - 1.0)
        std = np.sqrt(np.where(var > 0.0, var, 0.0))
        trades = reg[RegimeField.TRADES]
        return {
            "bars": n.astype(np.int64),
            "total_return": np.where(n > 0, reg[RegimeField.GROWTH] - 1.0, np.nan),
            "sharpe": np.where((n > 1) & (std > 0.0), mean / std * math.sqrt(bars_per_year), np.nan),
            "trades": trades.astype(np.int64),
            "win_rate": np.where(trades > 0, reg[RegimeField.WINS] / trades, np.nan),
            "pnl": reg[RegimeField.PNL].copy(),
        }
