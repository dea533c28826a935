"""Built-in regime classifiers: pure functions ``(features at t, params) -> regime index``."""

from __future__ import annotations

import math

from numba import njit

from .params import Choice, Float, Int
from .registry import classifier


@classifier(
    params=[
        Int("vol_window", 20, low=2, space=(10, 20, 50), doc="bars of returns in the volatility estimate"),
        Int("rank_window", 250, low=10, space=(100, 250, 500), doc="bars the percentile is taken over"),
        Float("low_pct", 0.3, low=0.0, high=1.0, space=(0.2, 0.3)),
        Float("high_pct", 0.7, low=0.0, high=1.0, space=(0.7, 0.8)),
    ],
    features=["pctrank(std(returns(close,1),{vol_window}),{rank_window})"],
    regimes=("low_vol", "normal_vol", "high_vol"),
)
@njit(cache=True, nogil=True)
def volatility(f, p):
    """Rolling volatility against its own rolling percentile: low / normal / high."""
    q = f[0]
    if math.isnan(q):
        return 1
    if q <= p[2]:
        return 0
    if q >= p[3]:
        return 2
    return 1


def _trend_features(v):
    if v["method"] == "adx":
        n = v["period"]
        return [f"adx(high,low,close,{n}).adx", f"adx(high,low,close,{n}).plus_di", f"adx(high,low,close,{n}).minus_di"]
    return [f"slope(close,{v['period']})", "close"]


@classifier(
    params=[
        Choice("method", ("slope", "adx"), "slope", doc="regression slope or ADX strength"),
        Int("period", 20, low=2, space=(10, 20, 50)),
        Float(
            "slope_threshold",
            0.002,
            low=0.0,
            space=(0.001, 0.002, 0.005),
            doc="slope method: fitted move over the window, as a fraction of price",
        ),
        Float(
            "adx_threshold",
            25.0,
            low=0.0,
            high=100.0,
            space=(20.0, 25.0, 30.0),
            doc="adx method: ADX above this is a trend",
        ),
    ],
    features=_trend_features,
    regimes=("down", "flat", "up"),
)
@njit(cache=True, nogil=True)
def trend(f, p):
    """Trend direction from the regression slope, or from ADX strength with the sign of +DI - -DI."""
    if p[0] == 0.0:  # slope
        s = f[0] * p[1] / f[1]
        if s > p[2]:
            return 2
        if s < -p[2]:
            return 0
        return 1
    if f[0] > p[3]:
        return 2 if f[1] > f[2] else 0
    return 1


def _hmm_features(v):
    kind = "hmm" if v["model_type"] == "hmm" else "svm"
    return [f"{kind}(close,{v['lookback_days']}d)"]


@classifier(
    params=[
        Choice(
            "model_type",
            ("hmm", "svm"),
            "hmm",
            doc="hmm: Gaussian HMM filtered probability; svm: linear max-margin direction",
        ),
        Int("lookback_days", 30, low=2, space=(30, 60), doc="training window in trading days"),
    ],
    features=_hmm_features,
    regimes=("bear", "bull"),
)
@njit(cache=True, nogil=True)
def hmm(f, p):
    """Bull/bear from a causally fitted 2-state Gaussian HMM (P(bull) > 0.5) or a linear SVM (margin > 0)."""
    x = f[0]
    if math.isnan(x):
        return 0
    if p[0] == 0.0:
        return 1 if x > 0.5 else 0
    return 1 if x > 0.0 else 0
