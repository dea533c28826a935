"""Stored signal changes back into per-bar rows: what a signal replay's block holds for each pair."""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, nogil=True, parallel=True)
def fill_steps(bars, values, offsets, cursor, t0, out, first_row, regime_rows):
    """Forward-fill stored changes into rows of a block, for bars ``t0`` .. ``t0 + out.shape[1] - 1``.

    ``bars`` / ``values`` (changes, 2) hold every pair's changes (signal, regime) one pair after
    another, from bar 0 on; ``offsets`` (pairs + 1) where each pair's begin; ``cursor`` (per pair,
    carried from chunk to chunk, starting at the pair's offset) the change in force at ``t0``.
    Row ``first_row + k`` receives pair k's signal; with ``regime_rows`` row ``first_row + pairs + k``
    its regime.  Chunks must come in increasing ``t0``.
    """
    n_pairs = offsets.shape[0] - 1
    ncol = out.shape[1]
    for p in prange(n_pairs):  # each pair writes its own rows and cursor
        end = offsets[p + 1]
        i = cursor[p]
        r = first_row + p
        j = 0
        while j < ncol:
            while i + 1 < end and bars[i + 1] <= t0 + j:
                i += 1
            # the change in force until the next one (or the end of the chunk)
            stop = ncol if i + 1 >= end else min(ncol, bars[i + 1] - t0)
            v = values[i, 0]
            for k in range(j, stop):
                out[r, k] = v
            if regime_rows:
                g = values[i, 1]
                for k in range(j, stop):
                    out[r + n_pairs, k] = g
            j = stop
        cursor[p] = i


@njit(cache=True, nogil=True)
def drain_changes(out_bar, out_val, out_n):
    """Copy the recorded changes out, pair by pair, and reset the buffers: (pair index, bar, values (n, 2))."""
    total = 0
    for p in range(out_n.shape[0]):
        total += out_n[p]
    owner = np.empty(total, dtype=np.int64)
    bars = np.empty(total, dtype=np.int64)
    vals = np.empty((total, 2))
    k = 0
    for p in range(out_n.shape[0]):
        for i in range(out_n[p]):
            owner[k] = p
            bars[k] = out_bar[p, i]
            vals[k, 0] = out_val[p, i, 0]
            vals[k, 1] = out_val[p, i, 1]
            k += 1
        out_n[p] = 0
    return owner, bars, vals
