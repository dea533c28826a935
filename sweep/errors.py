"""User-facing errors, for users of the sweep package.

They are defined in ``services.errors`` - the ground module that every layer
may import and that imports nothing of the project - and named here too.
"""

from services.errors import (  # noqa: F401  (re-exported)
    ConfigError,
    DataError,
    PluginError,
    SweepError,
    Terminated,
    check_keys,
    did_you_mean,
    format_path,
    show_value,
)
