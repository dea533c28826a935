"""Config loading: grid detection, ranges, categoricals, sections."""

from __future__ import annotations

import pytest

from sweep import load_config
from sweep.grid import expand_range
from sweep.yamlio import parse_yaml


def strat(params, **extra):
    return {"strategies": [{"type": "ma_crossover", "parameters": params, **extra}]}


def axes(cfg, i=0):
    return {a.name: a.values for a in cfg.strategies[i].axes}


def test_scalar_list_range_detection():
    cfg = load_config(strat({"fast": 5, "slow": [50, 20, 20], "kind": ["ema", "sma"]}))
    a = axes(cfg)
    assert a["fast"] == (5,)
    assert a["slow"] == (20, 50)  # sorted, duplicates dropped
    assert a["kind"] == ("sma", "ema")  # ordered by code (declaration order)


def test_inclusive_int_range():
    cfg = load_config(strat({"fast": {"start": 5, "stop": 50, "step": 5}}))
    assert axes(cfg)["fast"] == tuple(range(5, 55, 5))


def test_range_stop_off_grid_is_not_included():
    assert expand_range({"start": 1, "stop": 10, "step": 4}, ()) == [1, 5, 9]


def test_float_range_without_drift():
    cfg = load_config(
        {
            "strategies": [
                {"type": "momentum", "parameters": {"signal_threshold": {"start": 0.1, "stop": 0.3, "step": 0.1}}}
            ]
        }
    )
    assert axes(cfg)["signal_threshold"] == (0.1, 0.2, 0.3)
    long = expand_range({"start": 0.0, "stop": 1.0, "step": 0.01}, ())
    assert len(long) == 101 and long[-1] == 1.0 and long[37] == 0.37


def test_float_param_accepts_ints_and_exponents():
    data, _ = parse_yaml("x: 1e-3\ny: 2\n")
    assert data == {"x": 0.001, "y": 2}
    cfg = load_config({"strategies": [{"type": "momentum", "parameters": {"signal_threshold": [0, 1e-3]}}]})
    assert axes(cfg)["signal_threshold"] == (0.0, 0.001)


def test_categorical_encoding_round_trip():
    cfg = load_config(strat({"kind": ["ema", "sma"]}))
    axis = next(a for a in cfg.strategies[0].axes if a.name == "kind")
    assert axis.codes() == [0.0, 1.0]
    assert [axis.param.decode(c) for c in axis.codes()] == ["sma", "ema"]


def test_defaults_fill_missing_parameters():
    cfg = load_config(strat({"fast": [5, 10]}))
    assert axes(cfg)["slow"] == (30,)


def test_sections_and_settings_grids():
    cfg = load_config(
        {
            **strat({"fast": [5, 10]}),
            "risk": [{"type": "stop_loss", "parameters": {"pct": [0.02, 0.05]}}],
            "portfolio": {"position_size": [0.5, 1.0], "allow_short": True},
            "execution": {"commission": {"rate": [0.0, 0.001]}, "slippage": 2},
        }
    )
    assert cfg.portfolio.value("position_size") == [0.5, 1.0]
    assert cfg.portfolio.value("allow_short") is True
    assert cfg.execution.value("commission.rate") == [0.0, 0.001]
    assert cfg.execution.value("slippage.bps") == 2.0
    assert cfg.risk[0].axes[0].values == (0.02, 0.05)


def test_missing_data_means_sample_and_says_so():
    cfg = load_config(strat({}))
    assert cfg.data.is_sample and cfg.data.synthetic is not None
    assert "built-in synthetic sample" in cfg.data.describe()


def test_workflow_forms():
    assert load_config({**strat({}), "workflow": "backtest"}).workflow.base_pattern == "backtest"
    wf = load_config({**strat({}), "workflow": {"type": "optimization", "base_pattern": "full_backtest"}}).workflow
    assert (wf.type, wf.base_pattern) == ("optimization", "backtest")
    tt = load_config({**strat({}), "workflow": {"type": "train_test", "split": 0.6}}).workflow
    assert tt.options == {"split": 0.6}


def test_tracing_keys_and_overrides():
    cfg = load_config(
        {
            **strat({}),
            "workflow": "train_test",
            "event_tracing": True,
            "retention_policy": "sliding_window",
            "sliding_window_size": 50,
            "results_storage": "memory",
            "phase_overrides": {"test": {"event_tracing": ["FILL"]}},
        }
    )
    assert cfg.tracing.event_tracing[0] == "FILL" and len(cfg.tracing.event_tracing) == 5
    assert cfg.tracing.retention_policy == "sliding_window" and cfg.tracing.sliding_window_size == 50
    assert cfg.phase_overrides["test"].event_tracing == ("FILL",)
    assert cfg.phase_overrides["test"].results_storage == "memory"


def test_config_hash_ignores_key_order():
    a = load_config({"name": "x", **strat({"fast": [5, 10], "slow": [20, 30]})})
    b = load_config(
        {**{"strategies": [{"parameters": {"slow": [30, 20], "fast": [10, 5]}, "type": "ma_crossover"}]}, "name": "x"}
    )
    assert a.config_hash == b.config_hash


def test_errors_are_value_errors():
    with pytest.raises(ValueError):
        load_config(strat({"fast": -1}))


def test_yaml_lines_are_tracked():
    data, lines = parse_yaml("a:\n  b:\n    - 1\n    - 2\n")
    assert lines.line(("a", "b", 1)) == 4
    assert lines.line(("a", "b")) == 2
    assert lines.line(("a", "missing")) == 1  # falls back to the nearest parent
