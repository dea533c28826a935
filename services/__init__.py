"""Stateless services: pure numba strategies, classifiers and risk validators.

Register your own in a module of yours and name it in YAML::

    from numba import njit
    from services import strategy, Int

    @strategy(params=[Int("n", 20, low=2)], features=["zscore(close,{n})"])
    @njit(cache=True, nogil=True)
    def fade(f, p, regime):
        return -1.0 if f[0] > 2.0 else (1.0 if f[0] < -2.0 else 0.0)

then ``type: mymodule:fade`` (or ``plugins: [mymodule]`` and ``type: fade``).
"""

from .params import Bool, Choice, Duration, Float, Int, Param
from .registry import (
    IndicatorSpec,
    ServiceSpec,
    classifier,
    indicator,
    indicator_registry,
    load_plugin,
    registry,
    resolve,
    risk_validator,
    strategy,
)

__all__ = [
    "Bool",
    "Choice",
    "Duration",
    "Float",
    "Int",
    "Param",
    "IndicatorSpec",
    "ServiceSpec",
    "classifier",
    "indicator",
    "indicator_registry",
    "load_plugin",
    "registry",
    "resolve",
    "risk_validator",
    "strategy",
]
