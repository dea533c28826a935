"""The kernel's source: the loop is a real module, only the services are generated, and both are stable."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

import sweep
from containers import barloop
from containers.kernel import _SERVICES_IMPORT, generate_services, generate_source
from services.registry import registry
from sweep.engine import simulate

ROOT = Path(__file__).resolve().parents[1]
SNAPSHOT = Path(__file__).parent / "snapshots" / "generated_services.py.txt"


def _fixed_set():
    s, c, r = registry("strategy"), registry("classifier"), registry("risk")
    return [s["ma_crossover"], s["rsi_bands"]], [c["volatility"], c["trend"]], [r["trailing_stop"], r["max_position"]]


def test_generated_services_are_stable():
    """A change here changes every compiled kernel: update the snapshot on purpose, never by accident."""
    assert generate_services(*_fixed_set(), 2, 2, key="") == SNAPSHOT.read_text()


def test_the_fused_loop_is_barloop_with_its_services_import_redirected():
    key, services, fused = generate_source(*_fixed_set(), 2, 2)
    loop = (ROOT / "containers" / "barloop.py").read_text().splitlines()
    got = fused.splitlines()[1:]  # after the generated-file banner
    assert len(got) == len(loop)
    diff = [(a, b) for a, b in zip(loop, got) if a != b]
    assert diff == [(_SERVICES_IMPORT, f"from sweep_services_{key} import (  # SERVICES")] or (
        len(diff) == 1 and diff[0][0] == _SERVICES_IMPORT and f"sweep_services_{key}" in diff[0][1]
    )
    assert f"Key: {key}" in services and len(services.splitlines()) < 80  # generated code stays small


def test_barloop_with_its_stub_services_is_the_ma_crossover_kernel():
    """containers.barloop runs as it is (its stub strategy is a moving-average crossover): same books as generated."""
    plan = sweep.expand(
        {
            "data": {"synthetic": {"bars": 3000, "timeframe": "5m", "seed": 4}},
            "strategies": [{"type": "ma_crossover", "parameters": {"fast": [3, 5, 8], "slow": [20, 40]}}],
            "portfolio": {"allow_short": True},
        }
    )
    from containers.data import load_universes

    u = load_universes(plan.config.data)[0]
    ids = np.arange(plan.combinations)
    generated = simulate(plan, u, ids, record_equity=True)
    import sweep.engine as engine

    real = engine.build_tables

    def with_stub(p, hub):
        t = real(p, hub)
        return engine.KernelTables(barloop.run_chunk, t.tables, t.regime_names)

    engine.build_tables = with_stub
    try:
        stub = simulate(plan, u, ids, record_equity=True)
    finally:
        engine.build_tables = real
    assert np.array_equal(generated.bank, stub.bank) and np.array_equal(generated.equity, stub.equity)


def test_a_subset_of_the_suite_runs_with_numba_disabled():
    """The same code as plain Python (NUMBA_DISABLE_JIT=1): the loop, the services, the fills, the statistics."""
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1", "SWEEP_KERNEL_DIR": str(ROOT / ".nojit-kernels")}
    subset = [
        "tests/test_kernel_source.py::test_barloop_with_its_stub_services_is_the_ma_crossover_kernel",
        "tests/test_engine.py::test_next_open_fills_by_hand",
        "tests/test_engine.py::test_close_fills_are_same_bar",
        "tests/test_engine.py::test_commission_and_integer_shares",
        "tests/test_engine.py::test_short_selling",
        "tests/test_engine.py::test_stop_loss_exits_and_waits_for_a_new_signal",
        "tests/test_overfitting.py::test_cscv_matches_numpy",
        "tests/test_overfitting.py::test_spa_edge_and_noise",
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *subset],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    passed = re.search(r"(\d+) passed", proc.stdout)
    assert passed and int(passed.group(1)) >= len(subset) and "skipped" not in proc.stdout, proc.stdout[-500:]
