"""A code edit is never answered with old results: constants, helpers in other modules and indicators.

Each test runs `sweep run` as a user does (a new process each time, the default numba disk cache,
results on disk), edits one thing in the plugin's code, runs the same config again and reads the
new results back.  The strategy's signal is ``level * K * scale()`` (the indicator ``level`` outputs
a constant, ``scale`` lives in another module), and a constant signal s opens one long position of
value s x initial capital - so the entry's size says exactly which code ran.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from services.fingerprint import code_fingerprint, engine_fingerprint

HELPERS = """from numba import njit


@njit(cache=True, nogil=True)
def scale():
    return 1.0
"""

INDICATOR = """import math

from numba import njit

from services import Int, indicator


@indicator(params=[Int("n", 5, low=1)], state_size=lambda n: 1, warmup=lambda n: n)
@njit(cache=True, nogil=True)
def level(x, p, s, out):
    for t in range(x.shape[1]):
        if math.isnan(x[0, t]):
            out[0, t] = math.nan
            continue
        s[0] += 1.0
        out[0, t] = 0.4 if s[0] > p[0] else math.nan
"""

STRATEGY = """import math

from numba import njit

import code_helpers
import code_indicator  # noqa: F401 (registers level)
from services import Int, strategy

K = 1.0


@strategy(params=[Int("n", 5, low=1)], features=["level(close,{n})"])
@njit(cache=True, nogil=True)
def fixed(f, p, regime):
    if math.isnan(f[0]):
        return math.nan
    return f[0] * K * code_helpers.scale()
"""

CONFIG = """name: edits
plugins: [code_strategy.py]
data: {synthetic: {bars: 3000, timeframe: 5m, seed: 4}}
strategies:
  - type: fixed
    parameters: {n: [5, 10]}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "code_helpers.py").write_text(HELPERS)
    (tmp_path / "code_indicator.py").write_text(INDICATOR)
    (tmp_path / "code_strategy.py").write_text(STRATEGY)
    (tmp_path / "edits.yaml").write_text(CONFIG)
    return tmp_path


def _sweep(folder: Path, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "sweep", *args], cwd=folder, capture_output=True, text=True, timeout=600
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def _run(folder: Path) -> tuple[str, float, Path]:
    """Run the config; (output, position value / initial capital at entry - equal for both combinations, run)."""
    proc = _sweep(folder, "run", "edits.yaml", "--results-dir", "res")
    assert proc.returncode == 0, proc.stderr
    run = folder / proc.stdout.strip().splitlines()[-1].split("results: ", 1)[1]
    trades = pl.read_parquet(run / "backtest" / "trades.parquet")
    frac = (trades["quantity"] * trades["entry_price"] / 100_000.0).to_numpy()
    assert trades.height == 2 and abs(frac[0] - frac[1]) < 1e-12
    return proc.stdout + proc.stderr, float(frac[0]), run


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1
    path.write_text(text.replace(old, new))


@pytest.mark.slow
def test_every_edit_is_recomputed(project):
    out, frac, first = _run(project)
    assert frac == pytest.approx(0.4, abs=1e-12)
    out, frac, _ = _run(project)  # nothing changed: the same results, not recomputed
    assert "already computed" in out and frac == pytest.approx(0.4, abs=1e-12)
    steps = [
        ("code_strategy.py", "K = 1.0", "K = 0.5", 0.2),  # a constant the strategy reads
        ("code_strategy.py", "f[0] * K", "f[0] * 0.7 * K", 0.14),  # a literal in its bytecode
        ("code_helpers.py", "return 1.0", "return 1.5", 0.21),  # a helper in another module
        ("code_indicator.py", "0.4 if", "0.6 if", 0.315),  # the indicator behind its feature
    ]
    for file, old, new, want in steps:
        _edit(project / file, old, new)
        out, frac, _ = _run(project)
        assert "already computed" not in out, f"{file}: {old} -> {new} answered with old results"
        assert frac == pytest.approx(want, abs=1e-12), f"{file}: {old} -> {new} gave {frac}, want {want}"
    proc = _sweep(project, "show", str(first), "1")  # the first run's curve, replayed by today's code: said so
    assert proc.returncode == 0 and "note: the code changed since" in proc.stderr, proc.stderr


@pytest.mark.slow
def test_the_signal_store_refuses_pairs_of_changed_helper_code(project):
    (project / "gen.yaml").write_text(CONFIG + "workflow: signal_generation\nsignals_dir: store\n")
    (project / "rep.yaml").write_text(CONFIG + "workflow: signal_replay\nsignals_dir: store\n")
    proc = _sweep(project, "run", "gen.yaml", "--results-dir", "res")
    assert proc.returncode == 0 and "2 generated" in proc.stdout, proc.stderr
    proc = _sweep(project, "run", "rep.yaml", "--results-dir", "res", "--replay-only")
    assert proc.returncode == 0, proc.stderr  # the stored pairs serve the same code
    _edit(project / "code_helpers.py", "return 1.0", "return 1.5")
    proc = _sweep(project, "run", "rep.yaml", "--results-dir", "res", "--replay-only", "--force")
    assert proc.returncode == 2 and "made by other code" in proc.stderr, proc.stdout + proc.stderr
    proc = _sweep(project, "run", "gen.yaml", "--results-dir", "res", "--force")
    assert proc.returncode == 0 and "2 generated, 0 reused" in proc.stdout, proc.stderr


def test_the_manifest_records_the_code_fingerprint(project):
    proc = _sweep(project, "run", "edits.yaml", "--results-dir", "res")
    assert proc.returncode == 0, proc.stderr
    run = Path(proc.stdout.strip().splitlines()[-1].split("results: ", 1)[1])
    manifest = json.loads((project / run / "manifest.json").read_text())
    assert len(manifest["code_fingerprint"]) == 24


def _fingerprints(source: str) -> str:
    namespace: dict = {"__name__": "fp_probe"}
    exec(compile(source, "<probe>", "exec"), namespace)
    return code_fingerprint(namespace["f"])


def test_the_fingerprint_sees_constants_globals_closures_and_arrays():
    base = (
        "import numpy as np\nW = np.arange(3.0)\nC = 2\n"
        "def g(x):\n    return x + C\ndef f(x):\n    return g(x) * W[0]\n"
    )
    same = _fingerprints(base)
    assert _fingerprints(base) == same  # deterministic
    assert _fingerprints(base.replace("C = 2", "C = 3")) != same  # a global a helper reads
    assert _fingerprints(base.replace("np.arange(3.0)", "np.arange(3.0) + 1")) != same  # array data, not code
    assert _fingerprints(base.replace("x + C", "x - C")) != same  # the helper's bytecode
    assert _fingerprints(base + "# a comment\n") == same  # the probe has no file: text outside the code is not seen
    closure = "def make(k):\n    def f(x):\n        return x * k\n    return f\nf = make({})\n"
    assert _fingerprints(closure.format(2)) != _fingerprints(closure.format(3))


def test_the_engine_fingerprint_covers_the_engine_files(tmp_path, monkeypatch):
    import shutil

    from services import fingerprint

    root = Path(__file__).resolve().parents[1]
    for pkg in fingerprint.ENGINE_PACKAGES:
        shutil.copytree(root / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(fingerprint, "ROOT", tmp_path)
    fingerprint.engine_fingerprint.cache_clear()
    try:
        before = engine_fingerprint()
        frames = tmp_path / "sweep" / "frames.py"  # Python code after the kernel: metrics and tables
        frames.write_text(frames.read_text() + "\n# edited\n")
        fingerprint.engine_fingerprint.cache_clear()
        assert engine_fingerprint() != before
    finally:
        fingerprint.engine_fingerprint.cache_clear()
