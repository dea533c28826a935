"""Slow, obviously correct reference implementations of the built-in indicators.

Each takes the input series (1-D numpy arrays) and resolved parameters and
returns an array of shape (n_outputs, n).  They recompute every window from
scratch in plain Python/numpy; tests and ``sweep check`` compare the streaming
kernels against them.  Bars where any input is NaN are skipped, as the kernels do.
"""

from __future__ import annotations

import functools
import math

import numpy as np


def _whole_numbers(fn):
    """Let references take the hub's float64 parameters: 20.0 -> 20."""

    @functools.wraps(fn)
    def wrap(*args):
        fixed = [int(a) if isinstance(a, float) and a.is_integer() else a for a in args]
        return fn(*fixed)

    return wrap


def _on_valid(inputs, n_out, fn):
    """Run ``fn`` on the bars where every input is finite and scatter back."""
    arrs = [np.asarray(a, dtype=float) for a in inputs]
    mask = np.ones(arrs[0].shape[0], dtype=bool)
    for a in arrs:
        mask &= ~np.isnan(a)
    out = np.full((n_out, arrs[0].shape[0]), np.nan)
    vals = fn(*[a[mask] for a in arrs])
    out[:, mask] = np.asarray(vals, dtype=float).reshape(n_out, -1)
    return out


@_whole_numbers
def sma(x, n):
    def f(v):
        return [np.mean(v[t - n + 1 : t + 1]) if t >= n - 1 else np.nan for t in range(len(v))]

    return _on_valid([x], 1, f)


@_whole_numbers
def ema(x, n):
    def f(v):
        out = [np.nan] * len(v)
        alpha = 2.0 / (n + 1.0)
        e = None
        for t in range(len(v)):
            if t == n - 1:
                e = float(np.mean(v[:n]))
                out[t] = e
            elif t >= n:
                e = e + alpha * (v[t] - e)
                out[t] = e
        return out

    return _on_valid([x], 1, f)


@_whole_numbers
def std(x, n):
    def f(v):
        return [np.std(v[t - n + 1 : t + 1]) if t >= n - 1 else np.nan for t in range(len(v))]

    return _on_valid([x], 1, f)


@_whole_numbers
def zscore(x, n):
    def f(v):
        out = []
        for t in range(len(v)):
            if t < n - 1:
                out.append(np.nan)
                continue
            w = v[t - n + 1 : t + 1]
            m, sd = np.mean(w), np.std(w)
            out.append((v[t] - m) / sd if sd > 1e-12 * (abs(m) + 1e-300) else 0.0)
        return out

    return _on_valid([x], 1, f)


@_whole_numbers
def bbands(x, n, k):
    def f(v):
        mid, up, lo = [], [], []
        for t in range(len(v)):
            if t < n - 1:
                mid.append(np.nan)
                up.append(np.nan)
                lo.append(np.nan)
                continue
            w = v[t - n + 1 : t + 1]
            m, sd = np.mean(w), np.std(w)
            mid.append(m)
            up.append(m + k * sd)
            lo.append(m - k * sd)
        return [mid, up, lo]

    return _on_valid([x], 3, f)


@_whole_numbers
def slope(x, n):
    def f(v):
        j = np.arange(n, dtype=float)
        return [np.polyfit(j, v[t - n + 1 : t + 1], 1)[0] if t >= n - 1 else np.nan for t in range(len(v))]

    return _on_valid([x], 1, f)


@_whole_numbers
def returns(x, n):
    def f(v):
        return [v[t] / v[t - n] - 1.0 if t >= n else np.nan for t in range(len(v))]

    return _on_valid([x], 1, f)


@_whole_numbers
def logret(x, n):
    def f(v):
        return [math.log(v[t] / v[t - n]) if t >= n else np.nan for t in range(len(v))]

    return _on_valid([x], 1, f)


@_whole_numbers
def lag(x, k):
    def f(v):
        return [v[t - k] if t >= k else np.nan for t in range(len(v))]

    return _on_valid([x], 1, f)


@_whole_numbers
def pctrank(x, n):
    def f(v):
        return [np.mean(v[t - n + 1 : t + 1] <= v[t]) if t >= n - 1 else np.nan for t in range(len(v))]

    return _on_valid([x], 1, f)


@_whole_numbers
def donchian(high, low, n):
    def f(h, l):
        up, lo, mid = [], [], []
        for t in range(len(h)):
            if t < n - 1:
                up.append(np.nan)
                lo.append(np.nan)
                mid.append(np.nan)
                continue
            a, b = max(h[t - n + 1 : t + 1]), min(l[t - n + 1 : t + 1])
            up.append(a)
            lo.append(b)
            mid.append(0.5 * (a + b))
        return [up, lo, mid]

    return _on_valid([high, low], 3, f)


def _true_ranges(h, l, c):
    tr = [h[0] - l[0]]
    for t in range(1, len(h)):
        tr.append(max(h[t] - l[t], abs(h[t] - c[t - 1]), abs(l[t] - c[t - 1])))
    return tr


def _wilder(values, n, first_index):
    """Wilder's average of ``values`` (which start at bar ``first_index``); NaN before the seed."""
    out = {}
    a = None
    for i, v in enumerate(values):
        if i == n - 1:
            a = sum(values[:n]) / n
            out[first_index + i] = a
        elif i >= n:
            a = (a * (n - 1) + v) / n
            out[first_index + i] = a
    return out


@_whole_numbers
def atr(high, low, close, n):
    def f(h, l, c):
        if len(h) == 0:
            return [[]]
        avg = _wilder(_true_ranges(h, l, c), n, 0)
        return [[avg.get(t, np.nan) for t in range(len(h))]]

    return _on_valid([high, low, close], 1, f)


@_whole_numbers
def rsi(x, n):
    def f(v):
        gains = [max(v[t] - v[t - 1], 0.0) for t in range(1, len(v))]
        losses = [max(v[t - 1] - v[t], 0.0) for t in range(1, len(v))]
        ag, al = _wilder(gains, n, 1), _wilder(losses, n, 1)
        out = []
        for t in range(len(v)):
            if t in ag:
                total = ag[t] + al[t]
                out.append(100.0 * ag[t] / total if total > 0 else 50.0)
            else:
                out.append(np.nan)
        return out

    return _on_valid([x], 1, f)


@_whole_numbers
def adx(high, low, close, n):
    def f(h, l, c):
        T = len(h)
        adx_o, pdi_o, mdi_o = [np.nan] * T, [np.nan] * T, [np.nan] * T
        if T < 2:
            return [adx_o, pdi_o, mdi_o]
        pdm, mdm, tr = [], [], []
        for t in range(1, T):
            up, dn = h[t] - h[t - 1], l[t - 1] - l[t]
            pdm.append(up if up > dn and up > 0 else 0.0)
            mdm.append(dn if dn > up and dn > 0 else 0.0)
            tr.append(max(h[t] - l[t], abs(h[t] - c[t - 1]), abs(l[t] - c[t - 1])))

        def smoothed(vals):  # Wilder running sum, first value = sum of the first n
            out, s = {}, None
            for i, v in enumerate(vals):
                if i == n - 1:
                    s = sum(vals[:n])
                    out[i + 1] = s
                elif i >= n:
                    s = s - s / n + v
                    out[i + 1] = s
            return out

        st, sp, sm = smoothed(tr), smoothed(pdm), smoothed(mdm)
        dx = []
        for t in sorted(st):
            p = 100 * sp[t] / st[t] if st[t] > 0 else 0.0
            m = 100 * sm[t] / st[t] if st[t] > 0 else 0.0
            pdi_o[t], mdi_o[t] = p, m
            dx.append(100 * abs(p - m) / (p + m) if p + m > 0 else 0.0)
        for t, a in _wilder(dx, n, n).items():
            adx_o[t] = a
        return [adx_o, pdi_o, mdi_o]

    return _on_valid([high, low, close], 3, f)


# --------------------------------------------------------------------- HMM


def _hmm_fit_reference(r, mu, var, A, iters, warm):
    """Plain-Python Baum-Welch mirroring containers.indicators.hmm.fit_gaussian_hmm."""
    T = len(r)
    mean = sum(r) / T
    wvar = sum((x - mean) ** 2 for x in r) / T
    vfloor = max(1e-6 * wvar, 1e-20)
    if not warm:
        sd = math.sqrt(wvar)
        mu[:] = [mean - 0.5 * sd, mean + 0.5 * sd]
        var[:] = [max(wvar, vfloor)] * 2
        A[:] = [[0.95, 0.05], [0.05, 0.95]]

    def emissions():
        out = []
        for x in r:
            ls = [-0.5 * (math.log(2 * math.pi) + math.log(var[k])) - 0.5 * (x - mu[k]) ** 2 / var[k] for k in (0, 1)]
            m = max(ls)
            out.append([math.exp(v - m) for v in ls])
        return out

    def forward(e, pi):
        alpha, scale, ll = [], [], 0.0
        for t in range(T):
            if t == 0:
                p = list(pi)
            else:
                p = [sum(alpha[t - 1][i] * A[i][j] for i in (0, 1)) for j in (0, 1)]
            a = [p[k] * e[t][k] for k in (0, 1)]
            c = a[0] + a[1]
            if c <= 0 or not math.isfinite(c):
                a, c = p, p[0] + p[1]
            alpha.append([a[0] / c, a[1] / c])
            scale.append(c)
            ll += math.log(c)
        return alpha, scale, ll

    pi = [0.5, 0.5]
    prev_ll = -math.inf
    for _ in range(iters):
        e = emissions()
        alpha, scale, ll = forward(e, pi)
        beta = [[1.0, 1.0] for _ in range(T)]
        for t in range(T - 2, -1, -1):
            b = [e[t + 1][j] * beta[t + 1][j] for j in (0, 1)]
            beta[t] = [sum(A[i][j] * b[j] for j in (0, 1)) / scale[t + 1] for i in (0, 1)]
        gamma = []
        for t in range(T):
            g = [alpha[t][k] * beta[t][k] for k in (0, 1)]
            total = g[0] + g[1]
            gamma.append([g[0] / total, g[1] / total] if total > 0 else [0.5, 0.5])
        xi = [[0.0, 0.0], [0.0, 0.0]]
        for t in range(T - 1):
            for i in (0, 1):
                for j in (0, 1):
                    xi[i][j] += alpha[t][i] * A[i][j] * e[t + 1][j] * beta[t + 1][j] / scale[t + 1]
        pi = gamma[0]
        gs = [sum(g[k] for g in gamma) for k in (0, 1)]
        head = [sum(g[k] for g in gamma[:-1]) for k in (0, 1)]
        for k in (0, 1):
            if gs[k] > 1e-9:
                mu[k] = sum(g[k] * x for g, x in zip(gamma, r)) / gs[k]
        for k in (0, 1):
            if gs[k] > 1e-9:
                var[k] = max(sum(g[k] * (x - mu[k]) ** 2 for g, x in zip(gamma, r)) / gs[k], vfloor)
        for i in (0, 1):
            row = xi[i][0] + xi[i][1]
            if head[i] > 1e-9 and row > 0:
                A[i] = [xi[i][0] / row, xi[i][1] / row]
        if abs(ll - prev_ll) <= 1e-10 * (1.0 + abs(ll)):
            break
        prev_ll = ll
    if mu[0] > mu[1]:
        mu[:] = [mu[1], mu[0]]
        var[:] = [var[1], var[0]]
        A[:] = [[A[1][1], A[1][0]], [A[0][1], A[0][0]]]
        pi = [pi[1], pi[0]]
    alpha, _, _ = forward(emissions(), pi)
    return alpha[-1]


@_whole_numbers
def hmm(x, window, refit, iters):
    W, R = int(window), int(refit)

    def f(v):
        out = [np.nan] * len(v)
        rets = []
        mu, var, A = [0.0, 0.0], [1.0, 1.0], [[0.95, 0.05], [0.05, 0.95]]
        fitted, since, alpha = False, 0, [0.5, 0.5]
        for t in range(1, len(v)):
            rets.append(math.log(v[t] / v[t - 1]))
            if len(rets) < W:
                continue
            if not fitted or since + 1 >= R:
                alpha = _hmm_fit_reference(rets[-W:], mu, var, A, int(iters), fitted)
                fitted, since = True, 0
            else:
                r = rets[-1]
                p = [alpha[0] * A[0][0] + alpha[1] * A[1][0], alpha[0] * A[0][1] + alpha[1] * A[1][1]]
                ls = [
                    -0.5 * (math.log(2 * math.pi) + math.log(var[k])) - 0.5 * (r - mu[k]) ** 2 / var[k] for k in (0, 1)
                ]
                m = max(ls)
                q = [p[k] * math.exp(ls[k] - m) for k in (0, 1)]
                c = q[0] + q[1]
                if c <= 0 or not math.isfinite(c):
                    q, c = p, p[0] + p[1]
                alpha = [q[0] / c, q[1] / c]
                since += 1
            out[t] = alpha[1]
        return out

    return _on_valid([x], 1, f)


# --------------------------------------------------------------------- SVM


@_whole_numbers
def svm(x, window, refit, c, epochs):
    W, R, C, E = int(window), int(refit), float(c), int(epochs)

    def feats(lp, s):
        return [lp[s] - lp[s - 1], lp[s] - lp[s - 5], lp[s] - lp[s - 20]]

    def f(v):
        lp = [math.log(a) for a in v]
        out = [np.nan] * len(v)
        fitted, since = False, 0
        w, mean, sd = [0.0] * 4, [0.0] * 3, [0.0] * 3
        for t in range(len(v)):
            if t < W + 20:
                continue
            if not fitted or since + 1 >= R:
                samples = list(range(t - W, t))
                X = [feats(lp, s) for s in samples]
                y = [1.0 if lp[s + 1] > lp[s] else (-1.0 if lp[s + 1] < lp[s] else 0.0) for s in samples]
                for j in range(3):
                    col = [row[j] for row in X]
                    m = sum(col) / W
                    d = math.sqrt(sum((a - m) ** 2 for a in col) / W)
                    d = 0.0 if d < 1e-12 else d
                    mean[j], sd[j] = m, d
                    for row in X:
                        row[j] = (row[j] - m) / d if d > 0 else 0.0
                for row in X:
                    row.append(1.0)
                w = _svm_dcd_reference(X, y, C, E)
                fitted, since = True, 0
            else:
                since += 1
            cur = feats(lp, t)
            score = w[3]
            for j in range(3):
                if sd[j] > 0:
                    score += w[j] * (cur[j] - mean[j]) / sd[j]
            out[t] = score
        return out

    return _on_valid([x], 1, f)


def _svm_dcd_reference(X, y, C, epochs):
    N, D = len(X), len(X[0])
    a, w = [0.0] * N, [0.0] * D
    q = [sum(v * v for v in row) for row in X]
    for _ in range(epochs):
        max_pg = 0.0
        for i in range(N):
            if y[i] == 0 or q[i] <= 0:
                continue
            g = y[i] * sum(w[j] * X[i][j] for j in range(D)) - 1.0
            pg = min(g, 0.0) if a[i] == 0 else (max(g, 0.0) if a[i] == C else g)
            if pg != 0:
                old = a[i]
                a[i] = min(max(old - g / q[i], 0.0), C)
                d = (a[i] - old) * y[i]
                for j in range(D):
                    w[j] += d * X[i][j]
            max_pg = max(max_pg, abs(pg))
        if max_pg < 1e-6:
            break
    return w
