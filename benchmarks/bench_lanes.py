"""Would a combination-vectorised bar loop pay?  A measurement on a reduced loop, scalar vs lanes.

    python benchmarks/bench_lanes.py

Both kernels run the same reduced bar loop (next-open fills to a target, mark to market, the
return moments, drawdown and its duration, exposure; an MA-crossover signal) over the
100-combination MA grid on 1,000,000 bars: ``scalar`` one combination per prange iteration (the
engine's layout), ``lanes`` W combinations in lockstep with their state in one (fields, W) array,
branch-free, so LLVM vectorises the lane loops (packed divisions).  Results must be bitwise equal.
Writes benchmarks/out/lanes.json.
"""

from __future__ import annotations

import re
import time

import numpy as np
from common import machine, write_json
from numba import njit, prange


@njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def scalar(O, C, F, fr, sr, first):  # noqa: N803 - bar arrays
    n_c, n = fr.shape[0], C.shape[0]
    out = np.zeros((n_c, 6))
    for i in prange(n_c):
        cash, pos, eq_prev, peak, pending, tgt, last = 1e5, 0.0, 1e5, 1e5, False, 0.0, np.nan
        s1 = s2 = d2 = nr = ddl = mdl = ex = es = 0.0
        mr = 1.0
        a, b = F[fr[i]], F[sr[i]]
        for t in range(first, n):
            if pending:
                px = O[t]
                q = tgt * (cash + pos * px) / px - pos
                cash -= q * px
                pos += q
                pending = False
            e = cash + pos * C[t]
            if pos != 0.0:
                ex += 1.0
            if t > first:
                r = e / eq_prev - 1.0
                nr += 1.0
                s1 += r
                s2 += r * r
                rd = r if r < 0.0 else 0.0
                d2 += rd * rd
            if e >= peak:
                peak = e
                ddl = 0.0
            else:
                ddl += 1.0
                if ddl > mdl:
                    mdl = ddl
                if e < mr * peak:
                    mr = e / peak
            eq_prev = e
            es += e
            sig = 1.0 if a[t] > b[t] else 0.0
            if sig != last:
                pending, tgt, last = True, sig, sig
        out[i, 0], out[i, 1], out[i, 2] = cash + pos * C[n - 1], s1, s2
        out[i, 3], out[i, 4], out[i, 5] = mr, mdl, d2 + ex + es + nr
    return out


def make_lanes(W: int):  # noqa: N803 - lanes
    @njit(cache=False, nogil=True, parallel=True, error_model="numpy")
    def lanes(O, C, F, fr, sr, first):  # noqa: N803
        n_c, n = fr.shape[0], C.shape[0]
        out = np.zeros((n_c, 6))
        for g in prange((n_c + W - 1) // W):
            S = np.zeros((16, W))  # noqa: N806 - one state array: LLVM sees the rows do not overlap
            ra = np.empty(W, np.int64)
            rb = np.empty(W, np.int64)
            for w in range(W):
                S[0, w] = S[2, w] = S[3, w] = 1e5
                S[6, w] = np.nan
                S[10, w] = 1.0
                i = min(g * W + w, n_c - 1)
                ra[w], rb[w] = fr[i], sr[i]
            for t in range(first, n):
                anyp = 0.0
                for w in range(W):
                    anyp += S[4, w]
                if anyp != 0.0:  # fills are rare: a scalar pass over the lanes that have one
                    px = O[t]
                    for w in range(W):
                        if S[4, w] != 0.0:
                            q = S[5, w] * (S[0, w] + S[1, w] * px) / px - S[1, w]
                            S[0, w] -= q * px
                            S[1, w] += q
                            S[4, w] = 0.0
                c = C[t]
                scored = 1.0 if t > first else 0.0
                for w in range(W):  # branch-free: selects, so it vectorises
                    ew = S[0, w] + S[1, w] * c
                    S[13, w] += 1.0 if S[1, w] != 0.0 else 0.0
                    r = (ew / S[2, w] - 1.0) * scored
                    S[9, w] += scored
                    S[7, w] += r
                    S[8, w] += r * r
                    rd = r if r < 0.0 else 0.0
                    S[15, w] += rd * rd
                    up = ew >= S[3, w]
                    dl = 0.0 if up else S[11, w] + 1.0
                    S[11, w] = dl
                    S[12, w] = dl if dl > S[12, w] else S[12, w]
                    ratio = ew / S[3, w]
                    S[10, w] = ratio if ((not up) and ew < S[10, w] * S[3, w]) else S[10, w]
                    S[3, w] = ew if up else S[3, w]
                    S[2, w] = ew
                    S[14, w] += ew
                for w in range(W):
                    sig = 1.0 if F[ra[w], t] > F[rb[w], t] else 0.0
                    ch = sig != S[6, w]
                    S[4, w] = 1.0 if (S[4, w] != 0.0 or ch) else 0.0
                    S[5, w] = sig if ch else S[5, w]
                    S[6, w] = sig
            for w in range(W):
                i = g * W + w
                if i < n_c:
                    out[i, 0], out[i, 1], out[i, 2] = S[0, w] + S[1, w] * C[n - 1], S[7, w], S[8, w]
                    out[i, 3], out[i, 4], out[i, 5] = S[10, w], S[12, w], S[15, w] + S[13, w] + S[14, w] + S[9, w]
        return out

    return lanes


def _best(f, args, reps=5):
    f(*args)
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        f(*args)
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


def main() -> int:
    rng = np.random.default_rng(1)
    n = 1_000_000
    C = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))  # noqa: N806
    O = np.r_[C[0], C[:-1]]  # noqa: N806, E741
    wins = np.r_[np.arange(5, 55, 5), np.arange(20, 220, 20)]
    F = np.empty((len(wins), n))  # noqa: N806
    cs = np.cumsum(np.r_[0, C])
    for k, w in enumerate(wins):
        F[k] = np.r_[np.full(w - 1, np.nan), (cs[w:] - cs[:-w]) / w]
    fr, sr = np.repeat(np.arange(10), 10), np.tile(np.arange(10, 20), 10)
    args = (O, C, F, fr, sr, 199)
    base = scalar(*args)
    rows = [{"kernel": "scalar", "seconds": _best(scalar, args), "packed_div": 0, "equal": True}]
    for w in (4, 16, 64):
        f = make_lanes(w)
        got = f(*args)
        asm = "".join(f.inspect_asm().values())
        rows.append(
            {
                "kernel": f"lanes W={w}",
                "seconds": _best(f, args),
                "packed_div": len(re.findall(r"vdivpd", asm)),
                "equal": bool(np.array_equal(got, base)),
            }
        )
    for r in rows:
        r["speedup"] = rows[0]["seconds"] / r["seconds"]
        print(
            f"{r['kernel']:<12} {r['seconds']:.3f} s  x{r['speedup']:.2f}  packed divisions {r['packed_div']:>3}  "
            f"bitwise equal {r['equal']}"
        )
    print(f"wrote {write_json('lanes', {'machine': machine(), 'rows': rows})}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
