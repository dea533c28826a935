"""The signal loop: what the strategies and classifiers of a plan decide at every bar, kept where it changes.

For each signal pair (a strategy row and a classifier row, numba ``prange``)
and each bar of the chunk, ``decide`` - the very function the bar loop calls,
from the same generated services module - gives (signal, regime) on the
features at that bar's close.  Only changes are recorded: (bar, signal,
regime) whenever the signal or the regime differs from the pair's previous
bar (NaN counts as equal to NaN), and always at bar 0, so forward-filling
the records gives back the series exactly (``containers.signalsteps.fill_steps``).

Like ``containers.barloop`` this file runs as it is with the stub services;
``containers.kernel`` writes a copy whose services import names the plan's
generated module.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from containers.services_stub import (  # SERVICES: containers.kernel points this at a generated module
    KC,
    KS,
    classifier_rows,
    decide,
    strategy_rows,
)


@njit(cache=True, nogil=True, parallel=True)
def signal_chunk(bars, tables, pair_s, pair_c, last, out_bar, out_val, out_n, start, done):
    """Record every change of (signal, regime) of each pair over the chunk ``bars`` (up to its ``t_last``).

    ``last`` (2, pairs) carries each pair's previous (signal, regime) between chunks (regime -1: none
    yet); ``out_bar`` / ``out_val`` (pairs, cap) and (pairs, cap, 2) receive the changes, ``out_n`` counts
    them.  A pair whose buffer is full stops before that bar (``done``); the driver drains and resumes.
    """
    B, t0, t_last = bars.block, bars.t0, bars.t_last
    S_kind, S_codes, S_rows, S_mask = tables.s_kind, tables.s_codes, tables.s_rows, tables.s_mask
    C_kind, C_codes, C_rows, C_entry = tables.c_kind, tables.c_codes, tables.c_rows, tables.c_entry
    n_regimes = tables.n_regimes
    cap = out_bar.shape[1]
    ncol = min(B.shape[1], t_last - t0 + 1)
    for p in prange(pair_s.shape[0]):
        done[p] = ncol
        s = pair_s[p]
        c = pair_c[p]
        sp = S_codes[s]
        srows = strategy_rows(S_rows, s)
        sk = S_kind[s]
        crows = classifier_rows(C_rows, c)
        cp_ = C_codes[c]
        ck = C_kind[c]
        mask = S_mask[s, C_entry[c]]
        fbuf = np.empty(max(KS, 1))
        cbuf = np.empty(max(KC, 1))
        prev_sig = last[0, p]
        prev_reg = np.int64(last[1, p])
        k = out_n[p]
        for j in range(start[p], ncol):
            sig, regime = decide(B, j, fbuf, cbuf, srows, sk, sp, crows, ck, cp_, n_regimes, mask)
            same_sig = sig == prev_sig or (math.isnan(sig) and math.isnan(prev_sig))
            if prev_reg >= 0 and same_sig and regime == prev_reg:
                continue
            if k >= cap:
                done[p] = j  # buffer full: stop before this bar
                break
            out_bar[p, k] = t0 + j
            out_val[p, k, 0] = sig
            out_val[p, k, 1] = regime
            k += 1
            prev_sig = sig
            prev_reg = regime
        out_n[p] = k
        last[0, p] = prev_sig
        last[1, p] = prev_reg
