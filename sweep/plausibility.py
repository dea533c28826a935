"""Is the winner too good to be true?  The alarm for look-ahead that no streaming test can see.

A plugin that reads data fixed when its module is imported (an array of
future closes, say) computes the same values in one pass and one bar at a
time: the look-ahead guard cannot see it.  Its results can: the best
combination of a ranking gets an annualised Sharpe ratio no bar-level
strategy reaches, and it gains on nearly every bar it holds a position.
``assess`` replays the best combination's equity and raises the alarm when
its Sharpe exceeds ``PLAUSIBLE_SHARPE`` or it gained on at least
``PLAUSIBLE_HIT_RATE`` of at least ``PLAUSIBLE_MIN_BARS`` exposed bars.  The
run still finishes; its summary, phase_summary.json and manifest say so and
point to `sweep check`.

Example:
    >>> equity = 100.0 * np.cumprod(np.r_[1.0, np.full(300, 1.001)])  # gains on every bar
    >>> hit_rate(equity)
    (1.0, 300)
"""

from __future__ import annotations

import math

import numpy as np

from services.limits import PLAUSIBLE_HIT_RATE, PLAUSIBLE_MIN_BARS, PLAUSIBLE_SHARPE


def hit_rate(equity: np.ndarray) -> tuple[float | None, int]:
    """(share of exposed bars that gained, exposed bars) of one equity curve; a bar is exposed when equity moved."""
    eq = np.asarray(equity, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = eq[1:] / eq[:-1] - 1.0
    moved = np.isfinite(r) & (r != 0.0)
    n = int(moved.sum())
    return (float((r[moved] > 0.0).mean()) if n else None), n


def assess(combo_id: int, sharpe, equity: np.ndarray, plugins: list[str]) -> dict:
    """The plausibility block of a ranking's best combination (see the module docstring)."""
    rate, exposed = hit_rate(equity)
    sharpe = float(sharpe) if sharpe is not None and math.isfinite(float(sharpe)) else None
    why = []
    if sharpe is not None and abs(sharpe) > PLAUSIBLE_SHARPE:
        why.append(f"an annualised Sharpe ratio of {sharpe:.3g} (above {PLAUSIBLE_SHARPE:g})")
    if rate is not None and exposed >= PLAUSIBLE_MIN_BARS and rate >= PLAUSIBLE_HIT_RATE:
        floor = f"{PLAUSIBLE_HIT_RATE:.0%}"
        why.append(f"a gain on {rate:.0%} of the {exposed:,} bars it held a position (at least {floor})")
    out = {
        "combo_id": int(combo_id),
        "sharpe": sharpe,
        "hit_rate": rate,
        "exposed_bars": exposed,
        "alarm": bool(why),
        "thresholds": {"sharpe": PLAUSIBLE_SHARPE, "hit_rate": PLAUSIBLE_HIT_RATE, "min_bars": PLAUSIBLE_MIN_BARS},
    }
    if why:
        check = f"`sweep check NAME --plugins {' '.join(plugins)}`" if plugins else "`sweep check NAME`"
        out["message"] = (
            f"implausible: combination {combo_id} shows {' and '.join(why)} - results like this almost always mean "
            f"the strategy saw the future (a feature computed from later bars, or data loaded when a module is "
            f"imported); test its services and indicators with {check} before trusting it"
        )
    return out
