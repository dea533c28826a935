"""The built-in services and indicators, registered from the top.

``services.registry`` only keeps what is registered; this composition root
imports the modules whose decorators register the built-ins - strategies,
classifiers and risk validators (``services``) and indicators
(``containers.indicators``).  Every way into the engine (loading a config,
the CLI, the property kit) calls ``load()`` first, so a plugin loaded after it
cannot take a built-in's name.
"""

from __future__ import annotations

import importlib

from services.fingerprint import seal_modules

MODULES = ("containers.indicators", "services.strategies", "services.classifiers", "services.risk")
_loaded = False


def load() -> None:
    """Register every built-in (idempotent)."""
    global _loaded
    if not _loaded:
        _loaded = True
        for name in MODULES:
            importlib.import_module(name)
    seal_modules()  # the engine's kernels imported so far: a helper edited in another file is never loaded stale
