"""The auto-expander: seed numbers, counts, ids, hashes, features (examples + hypothesis properties)."""

from __future__ import annotations

import itertools
import json
import random
import subprocess
import sys

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import sweep
from sweep.cli import main

SEED_JSON = {
    "combinations": 24,
    "strategy_combinations": 6,
    "classifier_combinations": 4,
    "unique_features": 7,
    "containers": {"naive": 75, "stateless": 27},
    "reduction": 0.64,
    "services": {"strategy": 6, "classifier": 4},
}


# ------------------------------------------------------------------ examples


def test_seed_example_numbers(examples):
    plan = sweep.expand(examples / "seed.yaml")
    assert plan.combinations == 24
    assert plan.strategy_combinations == 6 and plan.classifier_combinations == 4
    assert plan.naive.total == 75 and plan.stateless.total == 27
    assert plan.naive.containers == {
        "data": 1,
        "feature_hub": 1,
        "execution": 1,
        "strategy": 24,
        "classifier": 24,
        "portfolio": 24,
    }
    assert plan.stateless.containers == {"data": 1, "feature_hub": 1, "execution": 1, "portfolio": 24}
    assert plan.services() == {"strategy": 6, "classifier": 4}
    assert round(plan.reduction() * 100) == 64
    assert plan.outer == "classifier"  # 4 classifier combinations < 6 strategy combinations


def test_seed_json_has_exactly_the_keys(examples, capsys):
    assert main(["expand", str(examples / "seed.yaml"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data == SEED_JSON


def test_seed_human_output(examples, capsys):
    assert main(["expand", str(examples / "seed.yaml")]) == 0
    out = capsys.readouterr().out
    for text in (
        "Combinations: 24",
        "momentum",
        "hmm",
        "Unique features: 7",
        "(64% fewer)",
        "6 strategy, 4 classifier",
        "Memory estimate",
        "built-in synthetic sample",
    ):
        assert text in out


def test_seed_hashes_are_pinned(examples):
    # Same config -> same ids and hashes on any machine: pinned golden values.
    plan = sweep.expand(examples / "seed.yaml")
    hashes = plan.hashes()
    assert hashes[0] == "61b24181843f320b"
    assert hashes[23] == "b7e2f805c9f8afa6"
    assert plan.combination(23)["classifier_params"] == {"model_type": "svm", "lookback_days": 60}


def test_hashes_stable_across_processes(examples):
    code = f"import sweep,json;print(json.dumps(sweep.expand({str(examples / 'seed.yaml')!r}).hashes()))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == sweep.expand(examples / "seed.yaml").hashes()


def test_ma_grid_shares_moving_averages():
    plan = sweep.expand(
        {
            "strategies": [
                {
                    "type": "ma_crossover",
                    "parameters": {
                        "fast": {"start": 5, "stop": 50, "step": 5},
                        "slow": {"start": 60, "stop": 240, "step": 20},
                    },
                }
            ]
        }
    )
    assert plan.combinations == 100
    assert len(plan.features) == 20  # 10 fast + 10 slow SMAs, not 200
    assert plan.naive_feature_count == 200


def test_entries_add_and_roles_multiply():
    plan = sweep.expand(
        {
            "strategies": [
                {"type": "momentum", "parameters": {"lookback_period": [10, 20]}},
                {"type": "ma_crossover", "parameters": {"fast": [5, 10], "slow": [20, 40, 60]}},
            ],
            "classifiers": [
                {"type": "trend", "parameters": {"period": [10, 20]}},
                {"type": "volatility"},
            ],
            "risk": [
                {"type": "stop_loss", "parameters": {"pct": [0.02, 0.05]}},
                {"type": "max_position", "parameters": {"limit": [0.5, 1.0]}},
            ],
            "portfolio": {"position_size": [0.5, 1.0]},
            "execution": {"commission": {"rate": [0.0, 0.001]}},
        }
    )
    assert plan.strategy_combinations == 2 + 6
    assert plan.classifier_combinations == 2 + 1
    assert plan.combinations == 8 * 3 * 4 * 2 * 2
    assert plan.services() == {"strategy": 8, "classifier": 3, "risk": 4}
    assert len(set(plan.hashes())) == plan.combinations


def test_decompose_compose_round_trip():
    plan = sweep.expand(
        {
            "strategies": [{"type": "ma_crossover", "parameters": {"fast": [5, 10, 15]}}],
            "classifiers": [{"type": "trend", "parameters": {"period": [10, 20]}}],
            "portfolio": {"position_size": [0.5, 1.0]},
        }
    )
    ids = list(range(plan.combinations))
    d = plan.decompose(ids)
    assert list(plan.compose(d["strategy"], d["classifier"], d["risk"], d["portfolio"], d["execution"])) == ids


def test_constraints_prune_before_running():
    plan = sweep.expand(
        {
            "strategies": [
                {
                    "type": "ma_crossover",
                    "constraints": ["fast < slow", "kind == 'ema' or fast >= 10"],
                    "parameters": {"fast": [5, 10, 30], "slow": [10, 20], "kind": ["sma", "ema"]},
                }
            ]
        }
    )
    rows = [plan.combination(i)["strategy_params"] for i in range(plan.combinations)]
    assert all(r["fast"] < r["slow"] and (r["kind"] == "ema" or r["fast"] >= 10) for r in rows)
    assert len(rows) == 4  # (5,10,ema) (5,20,ema) (10,20,sma) (10,20,ema)


def test_duplicate_entries_do_not_duplicate_combinations():
    plan = sweep.expand(
        {
            "strategies": [
                {"type": "momentum", "parameters": {"lookback_period": [10, 20]}},
                {"type": "momentum", "parameters": {"lookback_period": [20, 30]}},
            ]
        }
    )
    assert plan.strategy_combinations == 3


def test_no_classifier_is_one_implicit_regime():
    plan = sweep.expand({"strategies": [{"type": "momentum", "parameters": {"lookback_period": [10, 20]}}]})
    assert plan.classifier_combinations == 1 and plan.combinations == 2
    assert "classifier" not in plan.naive.containers


# ---------------------------------------------------------------- properties

values = st.lists(st.integers(1, 60), min_size=1, max_size=6)
kinds = st.lists(st.sampled_from(["sma", "ema"]), min_size=1, max_size=2)


def _brute_force(fast, slow, kind, constrained):
    combos = set(itertools.product(sorted(set(fast)), sorted(set(slow)), sorted(set(kind))))
    if constrained:
        combos = {c for c in combos if c[0] < c[1]}
    return combos


@given(
    fast=values,
    slow=st.lists(st.integers(2, 80), min_size=1, max_size=6),
    kind=kinds,
    constrained=st.booleans(),
    periods=st.lists(st.integers(2, 40), min_size=1, max_size=4),
)
def test_count_is_product_minus_pruned(fast, slow, kind, constrained, periods):
    expected = _brute_force(fast, slow, kind, constrained)
    entry = {"type": "ma_crossover", "parameters": {"fast": fast, "slow": slow, "kind": kind}}
    if constrained:
        entry["constraints"] = ["fast < slow"]
    cfg = {"strategies": [entry], "classifiers": [{"type": "trend", "parameters": {"period": periods}}]}
    if not expected:
        try:
            sweep.expand(cfg, count_data=False)
        except sweep.ConfigError as err:
            assert "rule out every combination" in str(err)
            return
        raise AssertionError("an empty grid must be refused")
    plan = sweep.expand(cfg, count_data=False)
    assert plan.strategy_combinations == len(expected)
    assert plan.combinations == len(expected) * len(set(periods))
    got = (
        {
            (r["fast"], r["slow"], r["kind"])
            for r in (plan.combination(i)["strategy_params"] for i in range(plan.strategy_combinations * 1))
        }
        if plan.outer == "strategy"
        else None
    )
    if got is not None:
        assert got <= expected
    # no duplicates: every combination is distinct by content and by hash
    seen = {json.dumps(plan.combination(i), sort_keys=True) for i in range(plan.combinations)}
    assert len(seen) == plan.combinations
    assert len(set(plan.hashes())) == plan.combinations
    # unique features never exceed what each combination would compute alone
    assert len(plan.features) <= plan.naive_feature_count


def _shuffle(obj, rng):
    if isinstance(obj, dict):
        items = list(obj.items())
        rng.shuffle(items)
        return {k: _shuffle(v, rng) for k, v in items}
    if isinstance(obj, list):
        return [_shuffle(v, rng) for v in obj]
    return obj


@given(
    fast=values,
    lookback=st.lists(st.integers(1, 50), min_size=1, max_size=4),
    thr=st.lists(st.sampled_from([0.0, 0.005, 0.01, 0.02]), min_size=1, max_size=3),
    size=st.lists(st.sampled_from([0.25, 0.5, 1.0]), min_size=1, max_size=2),
    seed=st.integers(0, 10_000),
)
def test_ids_and_hashes_independent_of_key_order(fast, lookback, thr, size, seed):
    cfg = {
        "name": "p",
        "strategies": [
            {"type": "momentum", "parameters": {"lookback_period": lookback, "signal_threshold": thr}},
            {"type": "ma_crossover", "parameters": {"fast": fast, "slow": 90, "kind": ["sma", "ema"]}},
        ],
        "classifiers": [{"type": "volatility", "parameters": {"vol_window": [10, 20], "low_pct": 0.25}}],
        "portfolio": {"position_size": size, "initial_capital": 5000},
        "execution": {"commission": {"rate": 0.001, "minimum": 1.0}},
    }
    a = sweep.expand(cfg, count_data=False)
    rng = random.Random(seed)
    shuffled = _shuffle(cfg, rng)
    for entry in shuffled["strategies"]:  # list values in any order
        for v in entry["parameters"].values():
            if isinstance(v, list):
                rng.shuffle(v)
    b = sweep.expand(shuffled, count_data=False)
    assert a.combinations == b.combinations
    assert a.hashes() == b.hashes()
    assert a.config.config_hash == b.config.config_hash
    for i in range(0, a.combinations, max(1, a.combinations // 7)):
        assert a.combination(i) == b.combination(i)


@given(n=st.integers(1, 6), m=st.integers(1, 6))
def test_hash_depends_only_on_content(n, m):
    """A combination keeps its hash when other entries are added (its id may move)."""
    grid = {"type": "momentum", "parameters": {"lookback_period": list(range(1, n + 1))}}
    extra = {"type": "ma_crossover", "parameters": {"fast": list(range(2, 2 + m))}}
    alone = sweep.expand({"strategies": [grid]}, count_data=False)
    both = sweep.expand({"strategies": [extra, grid]}, count_data=False)
    by_params = {alone.combination(i)["strategy_params"]["lookback_period"]: h for i, h in enumerate(alone.hashes())}
    matched = 0
    for i, h in enumerate(both.hashes()):
        c = both.combination(i)
        if c["strategy"] == "momentum":
            assert by_params[c["strategy_params"]["lookback_period"]] == h
            matched += 1
    assert matched == n


def test_hash_is_the_same_at_every_grid_size():
    """One hash scheme: a combination of a 300,000-row entry hashes as it does alone (and as a settings row)."""
    small = sweep.expand(
        {"strategies": [{"type": "ma_crossover", "parameters": {"fast": [7], "slow": [333], "kind": ["ema"]}}]},
        count_data=False,
    )
    big = sweep.expand(
        {
            "strategies": [
                {
                    "type": "ma_crossover",
                    "parameters": {
                        "fast": {"start": 2, "stop": 301},
                        "slow": {"start": 2, "stop": 501},
                        "kind": ["sma", "ema"],
                    },
                }
            ]
        },
        count_data=False,
    )
    assert big.combinations == 300_000
    sp = big.strategies[0]
    names = [a.name for a in sp.axes]
    row = np.flatnonzero(
        (sp.codes[:, names.index("fast")] == 7)
        & (sp.codes[:, names.index("slow")] == 333)
        & (sp.codes[:, names.index("kind")] == sp.axes[names.index("kind")].param.encode("ema"))
    )
    assert row.size == 1
    assert big.combination(int(row[0]))["strategy_params"] == small.combination(0)["strategy_params"]
    assert big.hashes([int(row[0])]) == small.hashes()
    assert len(np.unique(big.hash_values(np.arange(big.combinations)))) == big.combinations


def test_user_pattern_file_changes_the_topology(tmp_path):
    (tmp_path / "pats").mkdir()
    (tmp_path / "pats" / "lean.yaml").write_text(
        "name: lean\nkind: mode\naliases: []\ndescription: classifiers shared, strategies expand\nroles:\n"
        "  data: {sharing: shared}\n  feature_hub: {sharing: shared}\n  execution: {sharing: shared}\n"
        "  strategy: {sharing: expand, stateless: true}\n  classifier: {sharing: shared}\n"
        "  portfolio: {sharing: cascade}\n"
    )
    y = tmp_path / "c.yaml"
    y.write_text(
        "patterns: [pats]\nworkflow: lean\n"
        "strategies:\n  - type: momentum\n"
        "    parameters: {lookback_period: [10, 20, 30], signal_threshold: [0.01, 0.02]}\n"
        "classifiers:\n  - type: hmm\n    parameters: {model_type: [hmm, svm], lookback_days: [30, 60]}\n"
    )
    plan = sweep.expand(y, count_data=False)
    assert plan.naive.containers == {
        "data": 1,
        "feature_hub": 1,
        "execution": 1,
        "strategy": 24,
        "classifier": 1,
        "portfolio": 24,
    }
    assert plan.stateless.containers["classifier"] == 1 and plan.services() == {"strategy": 6}
