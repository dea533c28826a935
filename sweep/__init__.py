"""Functional parameter-sweep engine.

>>> import sweep
>>> plan = sweep.expand("examples/seed.yaml")      # doctest: +SKIP
>>> plan.combinations                             # doctest: +SKIP
24
"""

from .config import SweepConfig, load_config
from .errors import ConfigError, DataError, PluginError, SweepError
from .expander import Plan, expand

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DataError",
    "Plan",
    "PluginError",
    "SweepConfig",
    "SweepError",
    "__version__",
    "expand",
    "load_config",
]
