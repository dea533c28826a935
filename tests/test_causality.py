"""No look-ahead can reach a run: streaming equivalence catches every planted leak, in `sweep check` and `sweep run`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from services.causality import find_leak, long_series
from sweep.cli import main
from sweep.kit.properties import check, find

PLUGIN = str(Path(__file__).parent / "plugins" / "leaky_plugins.py")

# planted kernel -> (what the message says, how far ahead it reaches on every series, None: varies)
PLANTED = {
    "next_bar": ("looks ahead", 1),
    "normalised": ("looks ahead", None),
    "every_nth": ("looks ahead", 1),
    "above_300": ("looks ahead", 1),
    "after_pattern": ("looks ahead", 2),
    "centred": ("looks ahead", 5),
    "forgetful": ("depends on how the bars are chunked", 0),
    "unguarded": ("reads past the bars it was given", None),
}


@pytest.fixture(scope="module")
def leaky():
    from services.registry import load_plugin

    load_plugin(PLUGIN)
    from services.registry import indicator_registry

    return indicator_registry()


def test_long_series_cover_levels_flats_gaps_and_patterns():
    series = long_series(0)
    assert [label for label, _ in series] == ["level 1", "level 100", "level 300", "level 5000"]
    for (_, d), level in zip(series, (1.0, 100.0, 300.0, 5000.0)):
        o, h, lo, c, v = d
        assert d.shape == (5, 5000) and (h >= np.maximum(o, c)).all() and (lo <= np.minimum(o, c)).all()
        assert (c > level).any() and (c < level).any()  # crosses its level
        assert (np.diff(c) == 0).sum() > 20  # flat stretches
        assert np.abs(np.diff(np.log(c))).max() > 0.02  # gaps


@pytest.mark.parametrize("name", sorted(PLANTED))
def test_find_leak_names_the_bar_and_the_reach(leaky, name):
    from sweep.kit.streaming import indicator_leak

    spec = leaky[name]
    params = np.array([float(p.default) for p in spec.params])
    found = [indicator_leak(spec, params, d[[3]]) for _, d in long_series(1)]
    caught = [f for f in found if f is not None]
    assert caught, name
    want, reach = PLANTED[name]
    if reach is not None:
        assert {f.reach for f in caught} == {reach}
    if name == "every_nth":
        assert all(f.bar % 500 == 499 for f in caught)  # a 500th bar (the first, unless it is flat there)
    if name == "above_300":
        assert found[0] is None and found[1] is None  # series around 1 and 100 never trigger it
    assert want in caught[0].describe(name)


def test_builtins_are_streaming_equivalent():
    from services.registry import indicator_registry
    from sweep.kit.streaming import indicator_leak

    for name, spec in sorted(indicator_registry().items()):
        if not spec.builtin:
            continue
        params = np.array([float(p.encode(p.default)) if p.kind != "duration" else 20.0 for p in spec.params])
        for _, d in long_series(3):
            x = d[[{"open": 0, "high": 1, "low": 2, "close": 3, "volume": 4}.get(i, 3) for i in spec.inputs]]
            assert indicator_leak(spec, params, x) is None, name


def test_a_causal_kernel_with_a_wrong_reach_is_not_blamed():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 300))
    from services.registry import indicator_registry

    sma = indicator_registry()["sma"]
    assert find_leak(sma.kernel, np.array([7.0]), sma.state_size(7), x, 1) is None


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sweep_check_catches_every_planted_leak_on_every_seed(leaky, seed, capsys):
    names = [f"indicator:{n}" for n in sorted(PLANTED)] + ["rides_above_300"]
    assert main(["check", *names, "--plugins", PLUGIN, "--examples", "6", "--seed", str(seed)]) == 1
    out = capsys.readouterr().out
    assert f"0 of {len(names)} passed" in out
    for n in PLANTED:
        assert f"FAIL indicator {n!r}" in out
    assert "strategy 'rides_above_300' looks ahead through indicator 'above_300'" in out


def test_kit_names_out_of_bounds_reads_and_bool_returns(leaky):
    r = check(find("reads_too_far"), examples=6)
    assert r.results["streaming"] == "fail" and any("reads f[2] but declares 1" in f for f in r.failures)
    r = check(find("boolean_signal"), examples=6)
    assert r.results["bounds"] == "fail" and any("returned a bool" in f for f in r.failures)


def _config(tmp_path: Path, name: str, body: str) -> Path:
    y = tmp_path / f"{name}.yaml"
    y.write_text(f"name: {name}\nplugins: [{PLUGIN}]\ndata: {{synthetic: {{bars: 6000, timeframe: 5m, price: 300}}}}\n")
    y.write_text(y.read_text() + body)
    return y


@pytest.mark.parametrize("name", sorted(PLANTED))
def test_sweep_run_refuses_every_planted_leak(tmp_path, capsys, name):
    y = _config(tmp_path, name, f"strategies:\n  - type: follow\n    parameters: {{indicator: {name}}}\n")
    assert main(["run", str(y), "--results-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"leaky_plugins.{name}" in err and PLANTED[name][0] in err and "Traceback" not in err
    assert "used by strategies[0] (follow)" in err or name == "unguarded"
    if PLANTED[name][1]:
        assert f"it reached {PLANTED[name][1]} bar(s) into the future" in err
    assert "Fix:" in err and not (tmp_path / "out").exists()  # nothing written


def test_no_lookahead_check_runs_and_the_manifest_says_so(tmp_path, capsys):
    y = _config(tmp_path, "forced", "strategies:\n  - type: rides_above_300\n")
    assert main(["run", str(y), "--results-dir", str(tmp_path), "--quiet", "--no-lookahead-check"]) == 0
    run_dir = next((tmp_path / "forced").iterdir())
    man = json.loads((run_dir / "manifest.json").read_text())
    assert man["lookahead_check"]["status"].startswith("skipped")
    honest = _config(tmp_path, "honest", "strategies:\n  - type: ma_crossover\n")
    assert main(["run", str(honest), "--results-dir", str(tmp_path), "--quiet"]) == 0
    run_dir = next((tmp_path / "honest").iterdir())
    check = json.loads((run_dir / "manifest.json").read_text())["lookahead_check"]
    assert check["status"] == "passed"


def test_sweep_run_names_out_of_bounds_reads_and_bools_at_config_time(tmp_path, capsys):
    for strat, want in (("reads_too_far", "reads f[2] but declares 1"), ("boolean_signal", "bool")):
        y = _config(tmp_path, strat, f"strategies:\n  - type: {strat}\n")
        assert main(["run", str(y), "--results-dir", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err
        assert want in err and "strategies[0].type" in err and "Traceback" not in err


def test_risk_validator_reading_undeclared_limits_is_named(tmp_path, capsys):
    y = _config(tmp_path, "risky", "strategies:\n  - type: ma_crossover\nrisk:\n  - type: reads_limits\n")
    assert main(["run", str(y), "--results-dir", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "reads limits[0] but declares none" in err and "risk[0].type" in err
    r = check(find("reads_limits"), examples=5)
    assert any("reads limits[0] but declares none" in f for f in r.failures)
