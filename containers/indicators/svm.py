"""Causal linear max-margin (SVM) direction classifier.

``svm(x, window, refit, c, epochs)`` describes each bar by three log-return
features (1, 5 and 20 bars) and labels it with the sign of the *next* bar's
return.  Every ``refit`` bars it trains a linear SVM (hinge loss, L2
regulariser, bias as a constant feature) by dual coordinate descent
(Hsieh et al., 2008) on the last ``window`` bars whose labels are already
known, i.e. samples s <= t-1 at bar t.  Features are standardised with the
training window's mean and std.  The output ``score`` is the signed margin
w . z_t of the current bar: > 0 predicts an up move.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from services.params import Duration, Float, Int
from services.registry import indicator

from . import reference as ref

N_FEAT = 3
LAGS = (1, 5, 20)
MAX_LAG = 20
# state layout
_COUNT, _POS, _SINCE, _FITTED, _MEAN, _STD, _W, _BUF = 0, 1, 2, 3, 4, 7, 10, 14


@njit(cache=True, nogil=True, inline="always")
def _lp(s, L, newest, k):
    """Log price k bars before the newest one in the ring buffer."""
    i = newest - k
    if i < 0:
        i += L
    return s[_BUF + i]


@njit(cache=True, nogil=True)
def train_linear_svm(X, y, c, epochs, w):
    """Dual coordinate descent for the L1-loss linear SVM; writes weights into ``w``.

    X has the bias column already appended.  Samples are visited in order
    (no shuffling) so the result is deterministic.
    """
    N, D = X.shape
    a = np.zeros(N)
    for j in range(D):
        w[j] = 0.0
    q = np.empty(N)
    for i in range(N):
        acc = 0.0
        for j in range(D):
            acc += X[i, j] * X[i, j]
        q[i] = acc
    for _ in range(epochs):
        max_pg = 0.0
        for i in range(N):
            if y[i] == 0.0 or q[i] <= 0.0:
                continue
            g = 0.0
            for j in range(D):
                g += w[j] * X[i, j]
            g = y[i] * g - 1.0
            if a[i] == 0.0:
                pg = min(g, 0.0)
            elif a[i] == c:
                pg = max(g, 0.0)
            else:
                pg = g
            if pg != 0.0:
                old = a[i]
                na = old - g / q[i]
                a[i] = min(max(na, 0.0), c)
                d = (a[i] - old) * y[i]
                for j in range(D):
                    w[j] += d * X[i, j]
            if abs(pg) > max_pg:
                max_pg = abs(pg)
        if max_pg < 1e-6:
            break


@indicator(
    "svm",
    inputs=("x",),
    params=[
        Duration("window", "30d", low=10, doc="training window in bars or days"),
        Duration("refit", "1d", low=1, doc="how often to retrain"),
        Float("c", 1.0, low=1e-6, doc="SVM cost (inverse regularisation)"),
        Int("epochs", 10, low=1, high=1000, doc="maximum passes of coordinate descent"),
    ],
    outputs=("score",),
    state_size=lambda window, refit, c, epochs: int(window) + MAX_LAG + 2 + _BUF,
    warmup=lambda window, refit, c, epochs: int(window) + MAX_LAG,
    reference=ref.svm,
)
@njit(cache=True, nogil=True)
def svm_kernel(x, p, s, out):
    """Signed SVM margin of the current bar (positive = up move predicted)."""
    W = int(p[0])
    R = int(p[1])
    c = p[2]
    epochs = int(p[3])
    L = W + MAX_LAG + 2
    xs = x[0]
    o = out[0]
    X = np.empty((W, N_FEAT + 1))
    y = np.empty(W)
    w = np.empty(N_FEAT + 1)
    f = np.empty(N_FEAT)
    for t in range(xs.shape[0]):
        v = xs[t]
        o[t] = np.nan
        if math.isnan(v):
            continue
        pos = int(s[_POS])
        s[_BUF + pos] = math.log(v)
        newest = pos
        s[_POS] = pos + 1 if pos + 1 < L else 0
        s[_COUNT] += 1.0
        if s[_COUNT] < W + MAX_LAG + 1:
            continue
        if s[_FITTED] == 0.0 or s[_SINCE] + 1.0 >= R:
            # samples are the W bars before the newest; sample i sits k = W - i bars back
            for i in range(W):
                k = W - i
                base = _lp(s, L, newest, k)
                X[i, 0] = base - _lp(s, L, newest, k + 1)
                X[i, 1] = base - _lp(s, L, newest, k + 5)
                X[i, 2] = base - _lp(s, L, newest, k + 20)
                nxt = _lp(s, L, newest, k - 1) - base
                y[i] = 1.0 if nxt > 0.0 else (-1.0 if nxt < 0.0 else 0.0)
            for j in range(N_FEAT):
                m = 0.0
                for i in range(W):
                    m += X[i, j]
                m /= W
                sd = 0.0
                for i in range(W):
                    sd += (X[i, j] - m) ** 2
                sd = math.sqrt(sd / W)
                if sd < 1e-12:
                    sd = 0.0
                s[_MEAN + j] = m
                s[_STD + j] = sd
                for i in range(W):
                    X[i, j] = (X[i, j] - m) / sd if sd > 0.0 else 0.0
            for i in range(W):
                X[i, N_FEAT] = 1.0
            train_linear_svm(X, y, c, epochs, w)
            for j in range(N_FEAT + 1):
                s[_W + j] = w[j]
            s[_FITTED] = 1.0
            s[_SINCE] = 0.0
        else:
            s[_SINCE] += 1.0
        cur = s[_BUF + newest]
        f[0] = cur - _lp(s, L, newest, 1)
        f[1] = cur - _lp(s, L, newest, 5)
        f[2] = cur - _lp(s, L, newest, 20)
        score = s[_W + N_FEAT]
        for j in range(N_FEAT):
            sd = s[_STD + j]
            if sd > 0.0:
                score += s[_W + j] * (f[j] - s[_MEAN + j]) / sd
        o[t] = score
