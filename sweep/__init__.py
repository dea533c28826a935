"""Functional parameter-sweep engine.

    >>> import sweep
    >>> plan = sweep.expand("examples/seed.yaml")
    >>> plan.combinations
    24

Attributes are imported lazily so that ``sweep.errors`` can be used by the
services and containers packages without importing the orchestration layer.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "ConfigError": "services.errors",
    "DataError": "services.errors",
    "PluginError": "services.errors",
    "SweepError": "services.errors",
    "SweepConfig": "sweep.config",
    "load_config": "sweep.config",
    "Plan": "sweep.expander",
    "expand": "sweep.expander",
    "run": "sweep.runner",
    "RunResult": "sweep.results",
    "open_results": "sweep.runner",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sweep' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)
