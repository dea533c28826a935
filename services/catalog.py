"""The tables of registered services and indicators (what ``services.registry``'s decorators fill in).

Kept apart from the decorators so that feature specs can be checked against
the indicators without an import cycle; ``sweep.builtins.load()`` fills in the
built-ins.
"""

from __future__ import annotations

from typing import Any

ROLES = ("strategy", "classifier", "risk", "indicator")
ROLE_TITLES = {"strategy": "strategy", "classifier": "classifier", "risk": "risk validator", "indicator": "indicator"}

_REGISTRY: dict[str, dict[str, Any]] = {role: {} for role in ROLES}


def registry(role: str) -> dict[str, Any]:
    """All registered services of one role, by name (the built-ins once ``sweep.builtins.load()`` ran)."""
    return _REGISTRY[role]


def indicator_registry() -> dict[str, Any]:
    """Registered indicators (``services.registry.IndicatorSpec``), by name."""
    return _REGISTRY["indicator"]


def unregister(role: str, name: str) -> None:
    """Remove a registration (for tests and interactive use)."""
    _REGISTRY[role].pop(name, None)
