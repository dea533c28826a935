"""Causal two-state Gaussian hidden Markov model of log returns.

``hmm(x, window, refit, iters)`` keeps the last ``window`` log returns.  Every
``refit`` bars it re-estimates the model by Baum-Welch on that window only
(data already seen), warm-started from the previous fit, orders the states so
that state 1 has the higher mean return ("bull"), and resets the filter to the
forward probabilities at the end of the window.  Between refits the filter is
advanced one bar at a time with the forward recursion.  The output ``bull`` is
P(state = bull | returns up to and including t): nothing after t is used.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from services.params import Duration, Int
from services.registry import indicator

from . import reference as ref

_LOG_2PI = math.log(2.0 * math.pi)
# state layout
_COUNT, _PREV, _NOBS, _POS, _SINCE, _FITTED = 0, 1, 2, 3, 4, 5
_MU, _VAR, _A, _ALPHA, _BUF = 6, 8, 10, 14, 16


@njit(cache=True, nogil=True)
def _scaled_emissions(r, mu0, mu1, var0, var1, e):
    """Gaussian densities of each return under both states, divided by their max per bar (log-space safe)."""
    c0 = -0.5 * (_LOG_2PI + math.log(var0))
    c1 = -0.5 * (_LOG_2PI + math.log(var1))
    for t in range(r.shape[0]):
        l0 = c0 - 0.5 * (r[t] - mu0) ** 2 / var0
        l1 = c1 - 0.5 * (r[t] - mu1) ** 2 / var1
        m = l0 if l0 > l1 else l1
        e[t, 0] = math.exp(l0 - m)
        e[t, 1] = math.exp(l1 - m)


@njit(cache=True, nogil=True)
def _forward(e, A, pi0, pi1, alpha, scale):
    """Scaled forward pass; alpha[t] = P(state_t | r_0..r_t); returns the (shifted) log-likelihood."""
    ll = 0.0
    for t in range(e.shape[0]):
        if t == 0:
            p0 = pi0
            p1 = pi1
        else:
            p0 = alpha[t - 1, 0] * A[0, 0] + alpha[t - 1, 1] * A[1, 0]
            p1 = alpha[t - 1, 0] * A[0, 1] + alpha[t - 1, 1] * A[1, 1]
        a0 = p0 * e[t, 0]
        a1 = p1 * e[t, 1]
        c = a0 + a1
        if c <= 0.0 or not math.isfinite(c):
            # both states give the bar ~zero density: keep the prediction
            a0, a1, c = p0, p1, p0 + p1
        alpha[t, 0] = a0 / c
        alpha[t, 1] = a1 / c
        scale[t] = c
        ll += math.log(c)
    return ll


@njit(cache=True, nogil=True, inline="always")
def _posterior(w0, w1):
    """Normalise two state weights; an all-zero pair (underflow) becomes 50/50."""
    ws = w0 + w1
    if ws > 0.0:
        return w0 / ws, w1 / ws
    return 0.5, 0.5


@njit(cache=True, nogil=True)
def fit_gaussian_hmm(r, mu, var, A, iters, warm):
    """Baum-Welch for a 2-state Gaussian HMM on ``r``; updates mu, var, A in place.

    Returns the filtered probabilities (p0, p1) at the last observation under
    the fitted model, states ordered so that mu[0] <= mu[1].
    """
    T = r.shape[0]
    mean = 0.0
    for t in range(T):
        mean += r[t]
    mean /= T
    wvar = 0.0
    for t in range(T):
        wvar += (r[t] - mean) ** 2
    wvar /= T
    vfloor = max(1e-6 * wvar, 1e-20)
    if not warm:
        sd = math.sqrt(wvar)
        mu[0] = mean - 0.5 * sd
        mu[1] = mean + 0.5 * sd
        var[0] = max(wvar, vfloor)
        var[1] = max(wvar, vfloor)
        A[0, 0] = 0.95
        A[0, 1] = 0.05
        A[1, 0] = 0.05
        A[1, 1] = 0.95
    e = np.empty((T, 2))
    alpha = np.empty((T, 2))
    beta = np.empty((T, 2))
    scale = np.empty(T)
    pi0 = 0.5
    pi1 = 0.5
    prev_ll = -np.inf
    for _ in range(iters):
        _scaled_emissions(r, mu[0], mu[1], var[0], var[1], e)
        ll = _forward(e, A, pi0, pi1, alpha, scale)
        beta[T - 1, 0] = 1.0
        beta[T - 1, 1] = 1.0
        for t in range(T - 2, -1, -1):
            b0 = e[t + 1, 0] * beta[t + 1, 0]
            b1 = e[t + 1, 1] * beta[t + 1, 1]
            beta[t, 0] = (A[0, 0] * b0 + A[0, 1] * b1) / scale[t + 1]
            beta[t, 1] = (A[1, 0] * b0 + A[1, 1] * b1) / scale[t + 1]
        g0s = 0.0
        g1s = 0.0
        g0r = 0.0
        g1r = 0.0
        x00 = 0.0
        x01 = 0.0
        x10 = 0.0
        x11 = 0.0
        g0_head = 0.0  # sum of gamma over t < T-1 (denominators of A)
        g1_head = 0.0
        for t in range(T):
            g0, g1 = _posterior(alpha[t, 0] * beta[t, 0], alpha[t, 1] * beta[t, 1])
            if t == 0:
                pi0 = g0
                pi1 = g1
            g0s += g0
            g1s += g1
            g0r += g0 * r[t]
            g1r += g1 * r[t]
            if t < T - 1:
                g0_head += g0
                g1_head += g1
                k = 1.0 / scale[t + 1]
                b0 = e[t + 1, 0] * beta[t + 1, 0] * k
                b1 = e[t + 1, 1] * beta[t + 1, 1] * k
                x00 += alpha[t, 0] * A[0, 0] * b0
                x01 += alpha[t, 0] * A[0, 1] * b1
                x10 += alpha[t, 1] * A[1, 0] * b0
                x11 += alpha[t, 1] * A[1, 1] * b1
        # M-step (a state with almost no weight keeps its previous parameters)
        if g0s > 1e-9:
            mu[0] = g0r / g0s
        if g1s > 1e-9:
            mu[1] = g1r / g1s
        v0 = 0.0
        v1 = 0.0
        for t in range(T):
            g0, g1 = _posterior(alpha[t, 0] * beta[t, 0], alpha[t, 1] * beta[t, 1])
            v0 += g0 * (r[t] - mu[0]) ** 2
            v1 += g1 * (r[t] - mu[1]) ** 2
        if g0s > 1e-9:
            var[0] = max(v0 / g0s, vfloor)
        if g1s > 1e-9:
            var[1] = max(v1 / g1s, vfloor)
        r0 = x00 + x01
        if g0_head > 1e-9 and r0 > 0.0:
            A[0, 0] = x00 / r0
            A[0, 1] = x01 / r0
        r1 = x10 + x11
        if g1_head > 1e-9 and r1 > 0.0:
            A[1, 0] = x10 / r1
            A[1, 1] = x11 / r1
        if abs(ll - prev_ll) <= 1e-10 * (1.0 + abs(ll)):
            break
        prev_ll = ll
    if mu[0] > mu[1]:
        mu[0], mu[1] = mu[1], mu[0]
        var[0], var[1] = var[1], var[0]
        a00, a01, a10, a11 = A[0, 0], A[0, 1], A[1, 0], A[1, 1]
        A[0, 0] = a11
        A[0, 1] = a10
        A[1, 0] = a01
        A[1, 1] = a00
        pi0, pi1 = pi1, pi0
    _scaled_emissions(r, mu[0], mu[1], var[0], var[1], e)
    _forward(e, A, pi0, pi1, alpha, scale)
    return alpha[T - 1, 0], alpha[T - 1, 1]


@njit(cache=True, nogil=True)
def _filter_step(s, r):
    """Advance the filtered probabilities by one observation."""
    a00, a01, a10, a11 = s[_A], s[_A + 1], s[_A + 2], s[_A + 3]
    p0 = s[_ALPHA] * a00 + s[_ALPHA + 1] * a10
    p1 = s[_ALPHA] * a01 + s[_ALPHA + 1] * a11
    v0 = s[_VAR]
    v1 = s[_VAR + 1]
    l0 = -0.5 * (_LOG_2PI + math.log(v0)) - 0.5 * (r - s[_MU]) ** 2 / v0
    l1 = -0.5 * (_LOG_2PI + math.log(v1)) - 0.5 * (r - s[_MU + 1]) ** 2 / v1
    m = l0 if l0 > l1 else l1
    q0 = p0 * math.exp(l0 - m)
    q1 = p1 * math.exp(l1 - m)
    c = q0 + q1
    if c <= 0.0 or not math.isfinite(c):
        q0, q1, c = p0, p1, p0 + p1
    s[_ALPHA] = q0 / c
    s[_ALPHA + 1] = q1 / c


@indicator(
    "hmm",
    inputs=("x",),
    params=[
        Duration("window", "30d", low=10, doc="training window of returns (e.g. 30d or 2000 bars)"),
        Duration("refit", "1d", low=1, doc="how often to re-estimate (e.g. 1d or 390 bars)"),
        Int("iters", 20, low=1, high=500, doc="maximum Baum-Welch iterations per refit"),
    ],
    outputs=("bull",),
    state_size=lambda window, refit, iters: int(window) + _BUF,
    warmup=lambda window, refit, iters: int(window),
    reference=ref.hmm,
)
@njit(cache=True, nogil=True)
def hmm_kernel(x, p, s, out):
    """Filtered probability of the higher-mean state of a 2-state Gaussian HMM of log returns."""
    W = int(p[0])
    R = int(p[1])
    iters = int(p[2])
    xs = x[0]
    o = out[0]
    mu = np.empty(2)
    var = np.empty(2)
    A = np.empty((2, 2))
    window = np.empty(W)
    for t in range(xs.shape[0]):
        v = xs[t]
        o[t] = np.nan
        if math.isnan(v):
            continue
        if s[_COUNT] == 0:
            s[_COUNT] = 1.0
            s[_PREV] = v
            continue
        r = math.log(v / s[_PREV])
        s[_PREV] = v
        s[_COUNT] += 1.0
        pos = int(s[_POS])
        s[_BUF + pos] = r
        s[_POS] = pos + 1 if pos + 1 < W else 0
        if s[_NOBS] < W:
            s[_NOBS] += 1.0
        if s[_NOBS] < W:
            continue
        if s[_FITTED] == 0.0 or s[_SINCE] + 1.0 >= R:
            start = int(s[_POS])  # oldest return after the push
            for j in range(W):
                k = start + j
                window[j] = s[_BUF + (k if k < W else k - W)]
            warm = s[_FITTED] != 0.0
            mu[0], mu[1] = s[_MU], s[_MU + 1]
            var[0], var[1] = s[_VAR], s[_VAR + 1]
            A[0, 0], A[0, 1], A[1, 0], A[1, 1] = s[_A], s[_A + 1], s[_A + 2], s[_A + 3]
            p0, p1 = fit_gaussian_hmm(window, mu, var, A, iters, warm)
            s[_MU], s[_MU + 1] = mu[0], mu[1]
            s[_VAR], s[_VAR + 1] = var[0], var[1]
            s[_A], s[_A + 1], s[_A + 2], s[_A + 3] = A[0, 0], A[0, 1], A[1, 0], A[1, 1]
            s[_ALPHA] = p0
            s[_ALPHA + 1] = p1
            s[_FITTED] = 1.0
            s[_SINCE] = 0.0
        else:
            _filter_step(s, r)
            s[_SINCE] += 1.0
        o[t] = s[_ALPHA + 1]
