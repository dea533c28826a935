"""Config-time limits on features: a window longer than the data, or state that would not fit in memory.

``check_features`` walks every feature of a plan without allocating anything:
each indicator's streaming state (``state_size``) and warm-up, durations
converted at the data's bars per day.  A feature whose warm-up leaves fewer
than 2 bars to score, or whose state alone exceeds the budget, is refused
with the YAML path of the entry that asks for it - before a byte is allocated
(``slow: 3000000000`` would otherwise try to allocate 22 GiB).
"""

from __future__ import annotations

import numpy as np

from containers.feature_hub import resolve_params
from services.errors import ConfigError, format_path
from services.featurespec import parse_feature
from services.limits import STATE_BUDGET_BYTES
from services.registry import indicator_registry


def feature_cost(text: str, bars_per_day: float, memo: dict) -> tuple[int, int]:
    """(state bytes of the computations behind a feature, its warm-up in bars), inputs included."""
    if text in memo:
        return memo[text]
    node = parse_feature(text)
    if node.is_column:
        return 0, 0
    base = node.base
    spec = indicator_registry()[base.name]
    state, warm_in = 0, 0
    for inp in base.inputs:
        s, w = feature_cost(str(inp), bars_per_day, memo)
        state += s
        warm_in = max(warm_in, w)
    params = resolve_params(spec, base, bars_per_day)
    try:
        size, warm = int(spec.state_size(*params)), int(spec.warmup(*params))
    except Exception:  # reported with its name by the feature hub
        size, warm = 0, 0
    memo[text] = (state + 8 * max(size, 1), warm + warm_in)
    return memo[text]


def check_features(plan, bars_per_day: float, n_bars: int | None, where: str = "the data") -> None:
    """Raise ConfigError at the entry whose feature cannot be scored on ``n_bars`` bars or would not fit."""
    memo: dict = {}
    for spaces in (plan.strategies, plan.classifiers):
        for sp in spaces:
            rows = sp.feature_index
            if rows is None or not rows.size:
                continue
            for k in np.unique(rows[rows >= 0]):
                text = plan.features[int(k)]
                state, warm = feature_cost(text, bars_per_day, memo)
                if state > STATE_BUDGET_BYTES:
                    raise ConfigError(
                        sp.entry.path + ("parameters",),
                        f"feature {text} needs {state / 2**20:,.0f} MiB of streaming state "
                        f"(more than the {STATE_BUDGET_BYTES // 2**20} MiB allowed for all features)",
                        fix="use shorter windows",
                    )
                if n_bars is not None and warm > n_bars - 2:
                    raise ConfigError(
                        sp.entry.path + ("parameters",),
                        f"feature {text} needs {warm:,} bars of warm-up, {where} has {n_bars:,} bars "
                        f"({format_path(sp.entry.path)} is {sp.entry.type}): nothing would be left to score",
                        fix="use shorter windows, or more data",
                    )
