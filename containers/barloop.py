"""The bar loop of the fused kernel: every combination of a shard over one chunk of bars.

For each combination (numba ``prange``) and each bar of the chunk:

1. open of bar t: a pending target (or stops to check) is sized at the open,
   passed through the risk validators and filled;
2. close of bar t: equity = cash + position * close; bar return, drawdown,
   exposure, per-regime accumulators and the return of the current block
   (a day, say: equity now / equity at the end of the previous block - 1);
3. decision at the close of t (not on the last bar): regime = classifier,
   signal = strategy, on the features at t; a changed signal becomes the
   pending target.  With ``fill: close`` step 1 runs after step 3, at the close.

What differs from one service set to another - which functions to call, how
many features to gather, the risk chain - comes from the services module
imported below.  This file runs as it is with the stub services of
``containers.services_stub`` (also under ``NUMBA_DISABLE_JIT=1``);
``containers.kernel`` writes a copy whose only change is that import, pointing
at a module generated for the plan's services, so the calls are direct (LLVM
inlines them) and numba's disk cache serves warm runs.

Divisions follow IEEE (numba's numpy error model): an account whose equity
reaches exactly zero gets an infinite or NaN return, flagged in its metrics,
instead of stopping the whole run with ZeroDivisionError.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from containers.portfolio import EVENTS_PER_BAR, P_FRACTIONAL, P_SHORT, P_SIZE, Field, RegimeField, execute, target_qty
from containers.services_stub import (  # SERVICES: containers.kernel points this at a generated module
    HAS_CLASSIFIERS,
    HAS_RISK,
    KC,
    KS,
    classifier_rows,
    decide,
    risk_chain,
    risk_params,
    strategy_rows,
)
from services.state import (
    AVG_PRICE,
    BARS_IN_TRADE,
    CASH,
    EQUITY,
    HIGH_SINCE_ENTRY,
    INITIAL_CAPITAL,
    LOW_SINCE_ENTRY,
    N_STATE,
    PEAK_EQUITY,
    POSITION,
)


@njit(cache=True, nogil=True, inline="always", error_model="numpy")
def _fill(
    bank,
    reg,
    ev,
    ev_n,
    i,
    t,
    px,
    rng,
    ex,
    size,
    fractional,
    rec_ev,
    pending,
    pend_tgt,
    pend_reg,
    reg_prev,
    cash,
    pos,
    peak,
    hse,
    lse,
    bit,
    initial,
    srow,
    rps,
):
    """Size a pending target at ``px``, pass it through the risk chain, fill and book it.

    Returns the carried locals the fill changes: (cash, pos, hse, lse, bit).
    """
    eq_f = cash + pos * px
    q = 0.0
    if pending:
        q = target_qty(pend_tgt, eq_f, px, pos, rng, ex, fractional)
    if HAS_RISK:
        srow[CASH] = cash
        srow[POSITION] = pos
        srow[AVG_PRICE] = bank[Field.AVG_PRICE, i]
        srow[EQUITY] = eq_f
        srow[PEAK_EQUITY] = peak
        srow[HIGH_SINCE_ENTRY] = hse
        srow[LOW_SINCE_ENTRY] = lse
        srow[BARS_IN_TRADE] = bit
        srow[INITIAL_CAPITAL] = initial
        q = risk_chain(q, px, srow, rps)
        if not fractional:
            q = math.trunc(q)
    if q != 0.0:
        # execute() books the fill in the bank: store the carried locals it reads, reload what it changed
        bank[Field.CASH, i] = cash
        bank[Field.POSITION, i] = pos
        bank[Field.HIGH_SINCE, i] = hse
        bank[Field.LOW_SINCE, i] = lse
        bank[Field.BARS_IN_TRADE, i] = bit
        execute(bank, reg, ev, ev_n, i, t, q, px, rng, pend_reg if pending else reg_prev, ex, size, fractional, rec_ev)
        cash = bank[Field.CASH, i]
        pos = bank[Field.POSITION, i]
        hse = bank[Field.HIGH_SINCE, i]
        lse = bank[Field.LOW_SINCE, i]
        bit = bank[Field.BARS_IN_TRADE, i]
    return cash, pos, hse, lse, bit


@njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def run_chunk(bars, tables, combos, books, records):
    """Advance every combination of ``combos`` over the chunk ``bars`` (see the module docstring)."""
    # unpack once: numba loses writes made through a tuple's attributes inside prange
    B, t0, prev_range, t_first, t_last = bars.block, bars.t0, bars.prev_range, bars.t_first, bars.t_last
    S_kind, S_codes, S_rows, S_mask = tables.s_kind, tables.s_codes, tables.s_rows, tables.s_mask
    C_kind, C_codes, C_rows, C_entry = tables.c_kind, tables.c_codes, tables.c_rows, tables.c_entry
    n_regimes, R_codes, R_off, P, E = tables.n_regimes, tables.r_codes, tables.r_off, tables.portfolio, tables.execution
    cs, cc, cr, cp, ce = combos.strategy, combos.classifier, combos.risk, combos.portfolio, combos.execution
    bank, reg, start, done = books.bank, books.regimes, books.start, books.done
    ev, ev_n, ev_cap, rec_ev = records.events, records.n_events, records.cap, records.record_events
    eq_out, rec_eq, blk, bret = records.equity, records.record_equity, records.block_of_bar, records.block_returns
    rec_blk, stop = records.record_blocks, records.stop
    ncol = B.shape[1]
    j_first = max(t_first - t0, 0)
    j_end = min(t_last - t0 + 1, ncol)
    for i in prange(cs.shape[0]):
        j_begin = max(start[i], j_first)
        done[i] = ncol
        if j_begin >= j_end:
            continue
        s = cs[i]
        c = cc[i]
        p = cp[i]
        ex = E[ce[i]]
        sp = S_codes[s]
        size = P[p, P_SIZE]
        allow_short = P[p, P_SHORT] != 0.0
        fractional = P[p, P_FRACTIONAL] != 0.0
        fill_close = ex[0] != 0.0
        initial = bank[Field.INITIAL, i]
        srows = strategy_rows(S_rows, s)
        sk = S_kind[s]
        crows = classifier_rows(C_rows, c)
        cp_ = C_codes[c]
        ck = C_kind[c]
        mask = S_mask[s, C_entry[c]]
        rps = risk_params(R_codes, R_off, cr[i])
        fbuf = np.empty(max(KS, 1))
        cbuf = np.empty(max(KC, 1))
        srow = np.empty(N_STATE)
        # the carried state, in locals for the chunk
        cash = bank[Field.CASH, i]
        pos = bank[Field.POSITION, i]
        peak = bank[Field.PEAK, i]
        hse = bank[Field.HIGH_SINCE, i]
        lse = bank[Field.LOW_SINCE, i]
        bit = bank[Field.BARS_IN_TRADE, i]
        eq_prev = bank[Field.EQ_PREV, i]
        last_sig = bank[Field.LAST_SIGNAL, i]
        pending = bank[Field.PENDING, i] != 0.0
        pend_tgt = bank[Field.PENDING_TARGET, i]
        pend_reg = np.int64(bank[Field.PENDING_REGIME, i])
        reg_prev = np.int64(bank[Field.REGIME_PREV, i])
        n_ret = bank[Field.N_RET, i]
        sum_r = bank[Field.SUM_R, i]
        sum_r2 = bank[Field.SUM_R2, i]
        down_r2 = bank[Field.DOWN_R2, i]
        min_ratio = bank[Field.MIN_RATIO, i]
        dd_len = bank[Field.DD_LEN, i]
        max_dd_len = bank[Field.MAX_DD_LEN, i]
        exposed = bank[Field.EXPOSED, i]
        eq_sum = bank[Field.EQ_SUM, i]
        scored = bank[Field.SCORED, i]
        cur_blk = np.int64(bank[Field.BLOCK, i])
        blk_eq = bank[Field.BLOCK_EQ, i]
        for j in range(j_begin, j_end):
            if rec_ev and ev_n[i] + EVENTS_PER_BAR > ev_cap:
                done[i] = j  # event buffer full: stop before this bar, the driver drains and resumes
                break
            if (j & 1023) == 0 and stop[0] != 0:
                done[i] = j  # Ctrl-C / SIGTERM: return now, the driver raises
                break
            t = t0 + j
            o = B[0, j]
            cl = B[3, j]
            if not fill_close and (pending or (HAS_RISK and pos != 0.0)):
                rng = B[1, j - 1] - B[2, j - 1] if j > 0 else prev_range  # the last completed bar's range
                cash, pos, hse, lse, bit = _fill(
                    bank,
                    reg,
                    ev,
                    ev_n,
                    i,
                    t,
                    o,
                    rng,
                    ex,
                    size,
                    fractional,
                    rec_ev,
                    pending,
                    pend_tgt,
                    pend_reg,
                    reg_prev,
                    cash,
                    pos,
                    peak,
                    hse,
                    lse,
                    bit,
                    initial,
                    srow,
                    rps,
                )
                pending = False
            equity = cash + pos * cl
            if pos != 0.0:
                exposed += 1.0
                if HAS_RISK:  # bars in trade and best/worst close since entry feed the risk validators only
                    bit += 1.0
                    if cl > hse:
                        hse = cl
                    if cl < lse:
                        lse = cl
            if t > t_first:
                r = equity / eq_prev - 1.0
                n_ret += 1.0
                sum_r += r
                sum_r2 += r * r
                rd = r if r < 0.0 else 0.0
                down_r2 += rd * rd
                if HAS_CLASSIFIERS:  # a bar's return belongs to the regime in force when it began
                    reg[RegimeField.BARS, reg_prev, i] += 1.0
                    reg[RegimeField.SUM, reg_prev, i] += r
                    reg[RegimeField.SUM2, reg_prev, i] += r * r
                    reg[RegimeField.GROWTH, reg_prev, i] *= 1.0 + r
            if equity >= peak:
                peak = equity
                dd_len = 0.0
            else:
                dd_len += 1.0
                if dd_len > max_dd_len:
                    max_dd_len = dd_len
                if equity < min_ratio * peak:
                    min_ratio = equity / peak
            if rec_blk and blk[j] != cur_blk:
                # a block ended at the previous bar: its return, then the next starts from that equity
                if cur_blk >= 0:
                    bret[i, cur_blk] = eq_prev / blk_eq - 1.0
                cur_blk = blk[j]
                blk_eq = eq_prev
            eq_prev = equity
            eq_sum += equity
            if rec_eq:
                eq_out[i, j] = equity
            if t < t_last or fill_close:
                sig, regime = decide(B, j, fbuf, cbuf, srows, sk, sp, crows, ck, cp_, n_regimes, mask)
                if not math.isnan(sig):
                    if sig > 1.0:
                        sig = 1.0
                    elif sig < -1.0:
                        sig = -1.0
                    if sig < 0.0 and not allow_short:
                        sig = 0.0
                    if sig != last_sig:
                        pending = True
                        pend_tgt = sig * size
                        pend_reg = regime
                        last_sig = sig
                reg_prev = regime
            if fill_close and (pending or (HAS_RISK and pos != 0.0)):
                cash, pos, hse, lse, bit = _fill(
                    bank,
                    reg,
                    ev,
                    ev_n,
                    i,
                    t,
                    cl,
                    B[1, j] - B[2, j],
                    ex,
                    size,
                    fractional,
                    rec_ev,
                    pending,
                    pend_tgt,
                    pend_reg,
                    reg_prev,
                    cash,
                    pos,
                    peak,
                    hse,
                    lse,
                    bit,
                    initial,
                    srow,
                    rps,
                )
                pending = False
        if rec_blk and cur_blk >= 0:  # the block in progress, so far (completed by the next chunk)
            bret[i, cur_blk] = eq_prev / blk_eq - 1.0
        bank[Field.CASH, i] = cash
        bank[Field.POSITION, i] = pos
        bank[Field.PEAK, i] = peak
        bank[Field.HIGH_SINCE, i] = hse
        bank[Field.LOW_SINCE, i] = lse
        bank[Field.BARS_IN_TRADE, i] = bit
        bank[Field.EQ_PREV, i] = eq_prev
        bank[Field.LAST_SIGNAL, i] = last_sig
        bank[Field.PENDING, i] = 1.0 if pending else 0.0
        bank[Field.PENDING_TARGET, i] = pend_tgt
        bank[Field.PENDING_REGIME, i] = pend_reg
        bank[Field.REGIME_PREV, i] = reg_prev
        bank[Field.N_RET, i] = n_ret
        bank[Field.SUM_R, i] = sum_r
        bank[Field.SUM_R2, i] = sum_r2
        bank[Field.DOWN_R2, i] = down_r2
        bank[Field.MIN_RATIO, i] = min_ratio
        bank[Field.DD_LEN, i] = dd_len
        bank[Field.MAX_DD_LEN, i] = max_dd_len
        bank[Field.EXPOSED, i] = exposed
        bank[Field.EQ_SUM, i] = eq_sum
        bank[Field.SCORED, i] = scored + min(done[i], j_end) - j_begin  # bars scored in this call
        bank[Field.BLOCK, i] = cur_blk
        bank[Field.BLOCK_EQ, i] = blk_eq
