"""The portfolio bank: one state row per combination, struct-of-arrays.

``bank[field, i]`` holds every field of portfolio ``i`` (cash, position,
trade accumulators, metric accumulators); ``reg[field, regime, i]`` the
per-regime accumulators.  A portfolio is a column of these arrays, not an
object with a bus.  This module also holds the portfolio's rules, shared by
the fused kernel: sizing (signal -> target shares) and the accounting of a
fill (average price, realised P&L, trade records, events).

Sizing: target shares = signal * position_size * equity / (fill price *
(1 + commission rate) + per-share commission), computed at the fill (the next
bar's open by default), so an all-in order spends the cash it has then.
Buys that end long with position_size <= 1 are clipped to what the cash can
pay; integer-share portfolios round toward zero.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .execution import X_PER_SHARE, X_RATE, commission, fill_price, max_affordable

# ---- bank fields -------------------------------------------------------
FIELDS = (
    "cash",
    "position",
    "avg_price",
    "peak",
    "high_since",
    "low_since",
    "bars_in_trade",
    "eq_prev",
    "last_signal",
    "pending",
    "pending_target",
    "pending_regime",
    "regime_prev",
    "n_ret",
    "sum_r",
    "sum_r2",
    "down_r2",
    "min_ratio",
    "dd_len",
    "max_dd_len",
    "exposed",
    "eq_sum",
    "scored",
    "block",
    "block_equity",
    "t_entry_bar",
    "t_entry_value",
    "t_realized",
    "t_commission",
    "t_regime",
    "t_entry_price",
    "t_max_qty",
    "trades",
    "wins",
    "gross_profit",
    "gross_loss",
    "sum_trade_ret",
    "sum_trade_pnl",
    "commission",
    "traded_value",
    "fills",
    "initial",
)
(
    F_CASH,
    F_POS,
    F_AVG,
    F_PEAK,
    F_HSE,
    F_LSE,
    F_BIT,
    F_EQ_PREV,
    F_LAST_SIG,
    F_PENDING,
    F_PEND_TGT,
    F_PEND_REG,
    F_REG_PREV,
    F_N_RET,
    F_SUM_R,
    F_SUM_R2,
    F_DOWN_R2,
    F_MIN_RATIO,
    F_DD_LEN,
    F_MAX_DD_LEN,
    F_EXPOSED,
    F_EQ_SUM,
    F_SCORED,
    F_BLOCK,
    F_BLOCK_EQ,
    F_T_ENTRY_BAR,
    F_T_ENTRY_VALUE,
    F_T_REALIZED,
    F_T_COMM,
    F_T_REGIME,
    F_T_ENTRY_PRICE,
    F_T_MAX_QTY,
    F_TRADES,
    F_WINS,
    F_GP,
    F_GL,
    F_SUM_TRET,
    F_SUM_TPNL,
    F_COMM,
    F_TRADED,
    F_FILLS,
    F_INITIAL,
) = range(len(FIELDS))
N_FIELDS = len(FIELDS)

REG_FIELDS = ("bars", "sum_r", "sum_r2", "growth", "trades", "wins", "pnl")
R_BARS, R_SUM, R_SUM2, R_GROWTH, R_TRADES, R_WINS, R_PNL = range(len(REG_FIELDS))
N_REG_FIELDS = len(REG_FIELDS)

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


def new_bank(n: int, initial: np.ndarray, n_regimes: int) -> tuple[np.ndarray, np.ndarray]:
    """Fresh state for ``n`` portfolios with the given initial capital each."""
    bank = np.zeros((N_FIELDS, n), dtype=np.float64)
    bank[F_CASH] = initial
    bank[F_PEAK] = initial
    bank[F_EQ_PREV] = initial
    bank[F_INITIAL] = initial
    bank[F_LAST_SIG] = np.nan
    bank[F_MIN_RATIO] = 1.0
    bank[F_BLOCK] = -1.0  # no block started yet
    bank[F_BLOCK_EQ] = initial
    reg = np.zeros((N_REG_FIELDS, max(1, n_regimes), n), dtype=np.float64)
    reg[R_GROWTH] = 1.0
    return bank, reg


@njit(cache=True, nogil=True)
def target_qty(target, equity, price, pos, ref_range, ex, fractional):
    """Order that moves ``pos`` to ``target`` (a signed fraction of equity) at the fill."""
    if target == 0.0 or equity <= 0.0:
        goal = 0.0
    else:
        direction = 1.0 if target * equity / price > pos else -1.0
        px = fill_price(price, direction, ref_range, ex)
        goal = target * equity / (px * (1.0 + ex[X_RATE]) + ex[X_PER_SHARE])
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
def _open_trade(bank, i, t, px, qty, comm, regime):
    bank[F_T_ENTRY_BAR, i] = t
    bank[F_T_ENTRY_PRICE, i] = px
    bank[F_T_ENTRY_VALUE, i] = abs(qty) * px
    bank[F_T_REALIZED, i] = 0.0
    bank[F_T_COMM, i] = comm
    bank[F_T_REGIME, i] = regime
    bank[F_T_MAX_QTY, i] = abs(qty)
    bank[F_AVG, i] = px
    bank[F_HSE, i] = px
    bank[F_LSE, i] = px
    bank[F_BIT, i] = 0.0


@njit(cache=True, nogil=True)
def _close_trade(bank, reg, ev, ev_n, i, t, px, cash_after, side, rec):
    net = bank[F_T_REALIZED, i] - bank[F_T_COMM, i]
    basis = bank[F_T_ENTRY_VALUE, i]
    ret = net / basis if basis > 0.0 else 0.0
    k = int(bank[F_T_REGIME, i])
    bank[F_TRADES, i] += 1.0
    reg[R_TRADES, k, i] += 1.0
    reg[R_PNL, k, i] += net
    if net > 0.0:
        bank[F_WINS, i] += 1.0
        bank[F_GP, i] += net
        reg[R_WINS, k, i] += 1.0
    else:
        bank[F_GL, i] -= net
    bank[F_SUM_TRET, i] += ret
    bank[F_SUM_TPNL, i] += net
    _event(
        ev,
        ev_n,
        i,
        rec,
        EV_CLOSE,
        t,
        side * bank[F_T_MAX_QTY, i],
        px,
        bank[F_T_COMM, i],
        cash_after,
        0.0,
        bank[F_T_ENTRY_BAR, i],
        bank[F_T_ENTRY_PRICE, i],
        net,
        ret,
        k,
    )
    bank[F_AVG, i] = 0.0


@njit(cache=True, nogil=True)
def execute(bank, reg, ev, ev_n, i, t, qty, price, ref_range, regime, ex, size, fractional, rec):
    """Fill ``qty`` shares for portfolio ``i`` at bar ``t`` and book it: cash, position, trades, events.

    ``price`` is the reference price (open or close); slippage and commission
    come from the execution row ``ex``.  Returns the quantity actually filled.
    """
    cash = bank[F_CASH, i]
    pos = bank[F_POS, i]
    px = fill_price(price, qty, ref_range, ex)
    if qty > 0.0 and pos >= 0.0 and size <= 1.0:
        cap = max_affordable(cash, px, ex)
        if not fractional:
            cap = math.floor(cap)
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
    bank[F_CASH, i] = cash_after
    bank[F_POS, i] = new_pos
    bank[F_COMM, i] += comm
    bank[F_TRADED, i] += abs(qty) * px
    bank[F_FILLS, i] += 1.0
    _event(ev, ev_n, i, rec, EV_FILL, t, qty, px, comm, cash_after, new_pos, 0.0, 0.0, 0.0, 0.0, regime)
    if pos == 0.0:
        _open_trade(bank, i, t, px, qty, comm, regime)
        _event(ev, ev_n, i, rec, EV_OPEN, t, qty, px, comm, cash_after, new_pos, t, px, 0.0, 0.0, regime)
    elif pos * qty > 0.0:
        a = abs(new_pos)
        bank[F_AVG, i] = (bank[F_AVG, i] * abs(pos) + px * abs(qty)) / a
        bank[F_T_ENTRY_VALUE, i] += abs(qty) * px
        bank[F_T_COMM, i] += comm
        if a > bank[F_T_MAX_QTY, i]:
            bank[F_T_MAX_QTY, i] = a
    else:
        closing = abs(qty) if abs(qty) < abs(pos) else abs(pos)
        side = 1.0 if pos > 0.0 else -1.0
        comm_close = comm * closing / abs(qty)
        bank[F_T_REALIZED, i] += (px - bank[F_AVG, i]) * closing * side
        bank[F_T_COMM, i] += comm_close
        if new_pos == 0.0 or new_pos * pos < 0.0:
            _close_trade(bank, reg, ev, ev_n, i, t, px, cash_after, side, rec)
        if new_pos * pos < 0.0:
            _open_trade(bank, i, t, px, new_pos, comm - comm_close, regime)
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


def finalize(bank: np.ndarray, reg: np.ndarray, final_close: float, bars_per_year: float) -> dict[str, np.ndarray]:
    """Metrics of every portfolio from its accumulators (see containers.metrics for meanings)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        initial = bank[F_INITIAL]
        final = bank[F_CASH] + bank[F_POS] * final_close
        n = bank[F_N_RET]
        mean = bank[F_SUM_R] / n
        var = (bank[F_SUM_R2] - n * mean * mean) / (n - 1.0)
        std = np.sqrt(np.where(var > 0.0, var, 0.0))
        ann = math.sqrt(bars_per_year)
        sharpe = np.where((n > 1) & (std > 0.0), mean / std * ann, np.nan)
        down = np.sqrt(bank[F_DOWN_R2] / n)
        sortino = np.where((n > 1) & (down > 0.0), mean / down * ann, np.nan)
        years = n / bars_per_year
        growth = final / initial
        cagr = np.where(growth > 0.0, np.power(np.where(growth > 0.0, growth, 1.0), 1.0 / years) - 1.0, -1.0)
        cagr = np.where(years > 0.0, cagr, np.nan)
        max_dd = 1.0 - bank[F_MIN_RATIO]
        trades = bank[F_TRADES]
        gp, gl = bank[F_GP], bank[F_GL]
        pf = np.where(gl > 0.0, gp / gl, np.where(gp > 0.0, np.inf, np.nan))
        scored = bank[F_SCORED]
        mean_eq = bank[F_EQ_SUM] / scored
        out = {
            "total_return": growth - 1.0,
            "cagr": cagr,
            "sharpe": sharpe,
            "sortino": sortino,
            "max_drawdown": max_dd,
            "max_drawdown_duration": bank[F_MAX_DD_LEN].copy(),
            "calmar": np.where(max_dd > 0.0, cagr / max_dd, np.nan),
            "win_rate": np.where(trades > 0, bank[F_WINS] / trades, np.nan),
            "profit_factor": pf,
            "trades": trades.astype(np.int64),
            "avg_trade": np.where(trades > 0, bank[F_SUM_TPNL] / trades, np.nan),
            "avg_trade_return": np.where(trades > 0, bank[F_SUM_TRET] / trades, np.nan),
            "exposure": np.where(scored > 0, bank[F_EXPOSED] / scored, np.nan),
            "turnover": np.where(mean_eq > 0, bank[F_TRADED] / mean_eq, np.nan),
            "final_equity": final,
            "total_commission": bank[F_COMM].copy(),
            "fills": bank[F_FILLS].astype(np.int64),
            "open_position": bank[F_POS].copy(),
        }
    code = (trades == 0).astype(np.int64) + 2 * ((n < 2) | ~(std > 0.0)).astype(np.int64)
    out["flags"] = np.array(["", "no_trades", "zero_variance", "no_trades;zero_variance"])[code]
    return out


def finalize_regimes(reg: np.ndarray, bars_per_year: float) -> dict[str, np.ndarray]:
    """Per-regime metrics, arrays shaped (n_regimes, n_portfolios)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        n = reg[R_BARS]
        mean = reg[R_SUM] / n
        var = (reg[R_SUM2] - n * mean * mean) / (n - 1.0)
        std = np.sqrt(np.where(var > 0.0, var, 0.0))
        trades = reg[R_TRADES]
        return {
            "bars": n.astype(np.int64),
            "total_return": np.where(n > 0, reg[R_GROWTH] - 1.0, np.nan),
            "sharpe": np.where((n > 1) & (std > 0.0), mean / std * math.sqrt(bars_per_year), np.nan),
            "trades": trades.astype(np.int64),
            "win_rate": np.where(trades > 0, reg[R_WINS] / trades, np.nan),
            "pnl": reg[R_PNL].copy(),
        }
