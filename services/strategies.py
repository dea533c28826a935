"""Built-in strategies: pure functions ``(features at t, params, regime) -> signal``.

The signal's sign is the direction and its magnitude the fraction of the
target exposure, in [-1, 1].  NaN means "no new opinion: keep the previous
target", which gives entry/exit bands without any memory in the function
(the portfolio bank remembers the last target).  Features arrive in the order
the ``features`` templates list them; params in declaration order, with
categoricals as their index.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .params import Choice, Float, Int
from .registry import strategy


@strategy(
    params=[
        Int("lookback_period", 20, low=1, space=(10, 20, 30), doc="return horizon in bars"),
        Float("signal_threshold", 0.01, low=0.0, space=(0.005, 0.01, 0.02), doc="minimum |return| to act"),
    ],
    features=["returns(close,{lookback_period})"],
)
@njit(cache=True, nogil=True)
def momentum(f, p, regime):
    """Long when the lookback return exceeds the threshold, short below minus it, else flat."""
    r = f[0]
    thr = p[1]
    if r > thr:
        return 1.0
    if r < -thr:
        return -1.0
    return 0.0


@strategy(
    params=[
        Int("fast", 10, low=1, space=(5, 10, 20), doc="fast moving-average window"),
        Int("slow", 30, low=2, space=(20, 50, 100), doc="slow moving-average window"),
        Choice("kind", ("sma", "ema"), "sma", doc="moving-average type"),
    ],
    features=["{kind}(close,{fast})", "{kind}(close,{slow})"],
)
@njit(cache=True, nogil=True)
def ma_crossover(f, p, regime):
    """Long while the fast average is above the slow one, short while below."""
    if f[0] > f[1]:
        return 1.0
    if f[0] < f[1]:
        return -1.0
    return 0.0


@strategy(
    params=[
        Int("window", 20, low=2, space=(10, 20, 50)),
        Float("entry_z", 2.0, low=0.0, space=(1.5, 2.0, 2.5), doc="enter beyond this |z|"),
        Float("exit_z", 0.5, low=0.0, space=(0.0, 0.5, 1.0), doc="exit inside this |z|"),
    ],
    features=["zscore(close,{window})"],
)
@njit(cache=True, nogil=True)
def mean_reversion(f, p, regime):
    """Fade z-scores of price to its moving mean: enter beyond +-entry_z, exit inside +-exit_z."""
    z = f[0]
    if math.isnan(z):
        return np.nan
    if z < -p[1]:
        return 1.0
    if z > p[1]:
        return -1.0
    if abs(z) < p[2]:
        return 0.0
    return np.nan


@strategy(
    params=[Int("period", 20, low=2, space=(10, 20, 55), doc="Donchian channel length")],
    features=[
        "close",
        "lag(donchian(high,low,{period}).upper,1)",
        "lag(donchian(high,low,{period}).lower,1)",
    ],
)
@njit(cache=True, nogil=True)
def breakout(f, p, regime):
    """Donchian breakout: long on a close above the prior channel high, short below its low; hold between."""
    c = f[0]
    if c > f[1]:
        return 1.0
    if c < f[2]:
        return -1.0
    return np.nan


@strategy(
    params=[
        Int("period", 14, low=2, space=(7, 14, 21)),
        Float("oversold", 30.0, low=0.0, high=100.0, space=(20.0, 30.0)),
        Float("overbought", 70.0, low=0.0, high=100.0, space=(70.0, 80.0)),
        Float("exit_band", 5.0, low=0.0, high=50.0, space=(0.0, 5.0, 10.0), doc="flat when |rsi-50| <= this"),
    ],
    features=["rsi(close,{period})"],
)
@njit(cache=True, nogil=True)
def rsi_bands(f, p, regime):
    """Buy oversold RSI, sell overbought RSI, go flat near 50; hold otherwise."""
    r = f[0]
    if math.isnan(r):
        return np.nan
    if r < p[1]:
        return 1.0
    if r > p[2]:
        return -1.0
    if abs(r - 50.0) <= p[3]:
        return 0.0
    return np.nan


@strategy(
    params=[
        Int("period", 20, low=2, space=(10, 20, 50)),
        Float("num_std", 2.0, low=0.1, space=(1.5, 2.0, 2.5), doc="band width"),
        Float("exit_std", 0.25, low=0.0, space=(0.0, 0.25, 0.5), doc="flat within this many std of the mid"),
    ],
    features=[
        "close",
        "bbands(close,{period},{num_std}).upper",
        "bbands(close,{period},{num_std}).lower",
        "bbands(close,{period},{num_std}).mid",
    ],
)
@njit(cache=True, nogil=True)
def bollinger_bands(f, p, regime):
    """Mean reversion on Bollinger bands: long below the lower band, short above the upper, exit near the mid."""
    c = f[0]
    up = f[1]
    lo = f[2]
    mid = f[3]
    if math.isnan(mid):
        return np.nan
    if c < lo:
        return 1.0
    if c > up:
        return -1.0
    sd = (up - mid) / p[1]
    z = (c - mid) / sd if sd > 0.0 else 0.0
    if abs(z) <= p[2]:
        return 0.0
    return np.nan
