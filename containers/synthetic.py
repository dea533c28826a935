"""The built-in synthetic sample: seeded geometric Brownian motion with regime switches.

Bars follow US-equity-like sessions (weekdays, 6.5 hours from 14:30 UTC, no
holidays).  A two-state Markov chain switches between a calm up-drifting
regime and a volatile down-drifting one (expected stay about five sessions),
so regime classifiers and strategies have something real to find.  With
``regimes: false`` it is plain GBM with the given annual drift and volatility
(``drift: 0`` is a martingale: no strategy has an edge on it).  Same seed,
same bars, on any machine.
"""

from __future__ import annotations

import numpy as np

_SESSION_MINUTES = 390
_SESSION_OPEN_NS = (14 * 60 + 30) * 60 * 10**9
_DAY_NS = 86_400 * 10**9
_TF_MINUTES = {"m": 1, "h": 60, "d": _SESSION_MINUTES}


def timeframe_minutes(tf: str) -> float:
    n, unit = int(tf[:-1]), tf[-1]
    return n * _TF_MINUTES[unit]


def bars_per_session(tf: str) -> int:
    m = timeframe_minutes(tf)
    return max(1, int(np.ceil(_SESSION_MINUTES / m))) if m < _SESSION_MINUTES else 1


def session_timestamps(n: int, start: str, tf: str) -> np.ndarray:
    """``n`` bar timestamps (int64 ns, UTC) on weekday sessions from ``start``."""
    per = bars_per_session(tf)
    step_ns = int(round(timeframe_minutes(tf) * 60 * 10**9)) if per > 1 else 0
    days = -(-n // per)
    first = np.datetime64(start[:10], "D")
    cal = first + np.arange(int(days * 1.5) + 10)
    sessions = cal[np.is_busday(cal)][:days].astype("datetime64[ns]").astype(np.int64)
    day = np.repeat(sessions, per)[:n]
    within = np.tile(np.arange(per, dtype=np.int64) * step_ns, days)[:n]
    return day + _SESSION_OPEN_NS + within


BLOCK = 1_000_000  # bars generated at a time: temporaries stay small for 10-million-bar samples


def generate(
    bars: int,
    seed: int = 7,
    timeframe: str = "1m",
    start: str = "2024-01-02",
    price: float = 100.0,
    drift: float = 0.08,
    volatility: float = 0.20,
    regimes: bool = True,
) -> dict[str, np.ndarray]:
    """Return columns timestamp (int64 ns), open, high, low, close, volume (float64), regime (int8)."""
    if timeframe[-1] not in _TF_MINUTES:
        raise ValueError(f"synthetic timeframes are minutes, hours or days, not {timeframe!r}")
    rng = np.random.default_rng(seed)
    per_day = bars_per_session(timeframe)
    per_year = 252.0 * per_day
    stay = 1.0 - 1.0 / (5.0 * per_day)
    out = {k: np.empty(bars) for k in ("open", "high", "low", "close", "volume")}
    out["regime"] = np.empty(bars, dtype=np.int8)
    state0, level = 0, price  # regime and close carried from one block to the next
    for a in range(0, bars, BLOCK):
        b = min(bars, a + BLOCK)
        n = b - a
        if regimes:
            switches = rng.random(n) > stay
            state = ((np.cumsum(switches) + state0) % 2).astype(np.int8)  # 0 = calm/bull, 1 = volatile/bear
            state0 = int(state[-1])
        else:
            state = np.zeros(n, dtype=np.int8)
        if regimes:
            mu = np.where(state == 0, drift + 0.30, drift - 0.40) / per_year
            sigma = np.where(state == 0, volatility * 0.8, volatility * 1.6) / np.sqrt(per_year)
        else:  # one regime: plain GBM with this annual drift and volatility
            mu = np.full(n, drift / per_year)
            sigma = np.full(n, volatility / np.sqrt(per_year))
        r = rng.normal(mu - 0.5 * sigma**2, sigma)
        gap = rng.normal(0.0, sigma * 0.25)
        close = level * np.exp(np.cumsum(r + gap))
        open_ = np.empty(n)
        open_[0] = level * np.exp(gap[0])
        open_[1:] = close[:-1] * np.exp(gap[1:])
        out["open"][a:b] = open_
        out["close"][a:b] = close
        out["high"][a:b] = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, 0.5, n)) * sigma)
        out["low"][a:b] = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, 0.5, n)) * sigma)
        out["volume"][a:b] = np.round(rng.lognormal(10.0, 0.5, n) * (1.0 + 2.0 * state))
        out["regime"][a:b] = state
        level = float(close[-1])
    out["timestamp"] = session_timestamps(bars, start, timeframe)
    return out
