"""Shared test helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

import sweep.builtins

sweep.builtins.load()  # the built-ins, as every way into the engine registers them
ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SWEEP_SHARED_DATA", ROOT.parent / "shared" / "data"))

settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
settings.register_profile("dev", max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def shared_data() -> Path:
    """Folder with the real SPY data; skip the test when it is not there."""
    if not (SHARED_DATA / "SPY_5m.csv").exists():
        pytest.skip(f"real market data not found at {SHARED_DATA} (set SWEEP_SHARED_DATA to its folder)")
    return SHARED_DATA


@pytest.fixture
def examples() -> Path:
    return ROOT / "examples"
