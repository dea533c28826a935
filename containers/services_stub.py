"""Stub services for the bar loop: what ``containers.kernel`` generates for a plan, written by hand.

``containers.barloop`` imports its services from here, so the loop is a
plain module that runs (and lints, and runs under ``NUMBA_DISABLE_JIT=1``) as
it is: one moving-average-crossover-like strategy on two features, no
classifier, no risk validator.  A generated services module has exactly these
names, with the plan's functions called in ``decide`` and ``risk_chain``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

KS = 2  # features gathered for the strategy
KC = 1  # features gathered for the classifier
HAS_CLASSIFIERS = False
HAS_RISK = False


@njit(cache=True, nogil=True, inline="always")
def strategy_rows(s_rows, s):
    """Block rows of strategy row ``s``'s features, as a tuple (registers, not memory, in the loop)."""
    return (s_rows[s, 0], s_rows[s, 1])


@njit(cache=True, nogil=True, inline="always")
def classifier_rows(c_rows, c):
    return (c_rows[c, 0],)


@njit(cache=True, nogil=True, inline="always")
def risk_params(r_codes, r_off, cr):
    """Each validator's parameter row for this combination (none here)."""
    return (r_codes[r_off[0]],)


@njit(cache=True, nogil=True, inline="always")
def decide(block, j, fbuf, cbuf, srows, sk, sp, crows, ck, cp, n_regimes, mask):
    """(signal, regime) at column ``j``: features gathered, classifier then strategy called, regimes gated."""
    fbuf[0] = block[srows[0], j]
    fbuf[1] = block[srows[1], j]
    regime = np.int64(0)
    sig = 1.0 if fbuf[0] > fbuf[1] else (-1.0 if fbuf[0] < fbuf[1] else 0.0)
    return np.float64(sig), regime


@njit(cache=True, nogil=True, inline="always")
def risk_chain(q, px, srow, rps):
    """The order ``q`` after every validator in turn (unchanged here)."""
    return q
