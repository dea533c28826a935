"""Plugins: registered from YAML, verified at config time, checked by the kit."""

from __future__ import annotations

from pathlib import Path

import pytest
from numba import njit

import sweep
from services import strategy
from services.registry import load_plugin, registry, unregister
from sweep.cli import main
from sweep.errors import ConfigError, PluginError
from sweep.kit.properties import assert_properties, check, find

PLUGINS = Path(__file__).parent / "plugins"


def test_sample_plugin_from_plugins_list(tmp_path):
    cfg = {
        "plugins": [str(PLUGINS / "sample_plugin.py")],
        "strategies": [{"type": "slope_follow", "parameters": {"n": [5, 10, 20], "band": [0.0, 0.05]}}],
    }
    plan = sweep.expand(cfg)
    assert plan.combinations == 6
    assert "user_smooth_change(close,5)" in plan.features


def test_sample_plugin_by_module_reference(tmp_path):
    yaml = tmp_path / "c.yaml"
    yaml.write_text(
        "strategies:\n  - type: sample_plugin:slope_follow\n    parameters: {n: [5, 10]}\n"
        "classifiers:\n  - type: trend\n    parameters: {period: [10, 20]}\n"
    )
    (tmp_path / "sample_plugin.py").write_text((PLUGINS / "sample_plugin.py").read_text())
    plan = sweep.expand(yaml)
    assert plan.combinations == 4 and plan.strategies[0].entry.type == "slope_follow"


def test_sample_plugin_passes_the_kit():
    load_plugin(str(PLUGINS / "sample_plugin.py"))
    assert_properties("slope_follow", examples=10)
    assert_properties("indicator:user_smooth_change", examples=10)


def test_peeking_plugins_fail_naming_the_bar():
    load_plugin(str(PLUGINS / "peeking_plugin.py"))
    ind = check(find("indicator:peek_ahead"), examples=10)
    assert ind.results["no_lookahead"] == "fail" and ind.results["chunking"] == "fail"
    assert any("changed when only bar" in f and "1 bar(s) in the future" in f for f in ind.failures)
    svc = check(find("clairvoyant"), examples=10)
    assert svc.results["no_lookahead"] == "fail"
    with pytest.raises(AssertionError, match="looks ahead"):
        assert_properties("clairvoyant", examples=10)


def test_sweep_check_cli_exit_codes(capsys):
    plug = str(PLUGINS / "peeking_plugin.py")
    assert main(["check", "clairvoyant", "--plugins", plug, "--examples", "5"]) == 1
    out = capsys.readouterr().out
    assert "FAIL strategy 'clairvoyant'" in out and "looks ahead" in out
    assert main(["check", "momentum", "sma", "--examples", "5"]) == 0
    assert main(["check", "nonexistent_thing"]) == 2


def test_uncompiled_function_is_refused():
    with pytest.raises(PluginError, match="not numba-compiled"):

        @strategy(params=[])
        def plain(f, p, regime):
            return 0.0


def test_wrong_arity_is_refused():
    with pytest.raises(PluginError, match="takes 3 arguments"):

        @strategy(params=[])
        @njit
        def two_args(f, p):
            return 0.0


def test_name_clash_with_builtin_is_refused():
    with pytest.raises(PluginError, match="already registered"):

        @strategy(name="momentum", params=[])
        @njit
        def other(f, p, regime):
            return 0.0


@pytest.mark.parametrize(
    "fn,expect",
    [
        ("raises_strategy", "raised ValueError when called: boom"),
        ("float_classifier", "must return an integer regime"),
        ("unknown_feature_strategy", "unknown indicator 'nosuch'"),
        ("out_of_range_strategy", "outside [-1, 1]"),
    ],
)
def test_broken_plugins_reported_at_config_time(fn, expect):
    role = "classifiers" if "classifier" in fn else "strategies"
    cfg = {"plugins": [str(PLUGINS / "broken_plugins.py")], "strategies": [{"type": "momentum"}]}
    cfg[role] = [{"type": fn}]
    with pytest.raises(ConfigError) as info:
        sweep.load_config(cfg)
    msg = str(info.value)
    assert expect in msg and fn in msg and f"{role}[0].type" in msg


def test_services_command_lists_everything(capsys):
    assert main(["services", "--indicators"]) == 0
    out = capsys.readouterr().out
    for name in (
        "momentum",
        "ma_crossover",
        "mean_reversion",
        "breakout",
        "rsi_bands",
        "bollinger_bands",
        "volatility",
        "trend",
        "hmm",
        "max_position",
        "max_leverage",
        "max_drawdown",
        "stop_loss",
        "take_profit",
        "trailing_stop",
        "regimes: bear, bull",
        "lookback_period",
        "default",
    ):
        assert name in out


def test_unregister_helper():
    @strategy(name="tmp_strategy_for_test", params=[])
    @njit
    def tmp(f, p, regime):
        return 0.0

    assert "tmp_strategy_for_test" in registry("strategy")
    unregister("strategy", "tmp_strategy_for_test")
    assert "tmp_strategy_for_test" not in registry("strategy")


@pytest.mark.parametrize("command", ["services", "check"])
def test_missing_plugin_on_the_command_line_is_a_clear_error(command, capsys):
    assert main([command, "--plugins", "no_such_plugin_module"]) == 2
    err = capsys.readouterr().err
    assert "--plugins[0]" in err and "no_such_plugin_module" in err and "Fix:" in err
    assert "Traceback" not in err
