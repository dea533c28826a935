"""What a run's manifest records: its key, package versions, and a config that reloads anywhere."""

from __future__ import annotations

import hashlib
import platform
from pathlib import Path

import numpy as np
import polars as pl

from containers.data import Universe
from containers.feature_hub import FeatureHub
from services.fingerprint import code_fingerprint, combine, engine_fingerprint

from . import __version__
from .config import SweepConfig
from .expander import Plan


def run_key(cfg: SweepConfig, plan: Plan, universes: list[Universe], engine: str) -> str:
    """Same key = same results: config, engine, package version, data and all the code (``plan_code``)."""
    h = hashlib.blake2b(digest_size=10)
    h.update(cfg.config_hash.encode())
    h.update(engine.encode())
    h.update(__version__.encode())
    for u in universes:
        h.update(u.fingerprint().encode())
    h.update(plan_code(plan).encode())
    return h.hexdigest()


def indicator_code(texts) -> list[str]:
    """Code fingerprints of the indicators behind feature ``texts``: kernel, state size and warm-up rules."""
    specs = {n[1].name: n[1] for n in FeatureHub(sorted(texts)).nodes()} if texts else {}
    return [
        f"{name}:{code_fingerprint(s.kernel)}:{code_fingerprint(s.state_size)}:{code_fingerprint(s.warmup)}"
        for name, s in sorted(specs.items())
    ]


def plan_code(plan: Plan) -> str:
    """The code a plan's results depend on: the engine's files, every service it uses and every indicator.

    The run key, the Ray plan key and the manifest use it; an edit of a
    constant, of a helper a service calls or of an indicator changes it.
    """
    services = sorted(
        f"{sp.entry.spec.role}:{sp.entry.spec.name}:{code_fingerprint(sp.entry.spec.func)}"
        for sp in (*plan.strategies, *plan.classifiers, *plan.risk)
    )
    return combine(engine_fingerprint(), *services, *indicator_code(plan.features))


def versions() -> dict:
    import numba

    return {
        "sweep": __version__,
        "numpy": np.__version__,
        "numba": numba.__version__,
        "polars": pl.__version__,
        "python": platform.python_version(),
    }


def _data(data: dict) -> dict | None:
    if data.get("is_sample"):
        return None  # no `data:`: the built-in sample
    if data.get("synthetic"):
        out = {"synthetic": {k: list(v) if isinstance(v, (list, tuple)) else v for k, v in data["synthetic"].items()}}
    else:
        files = data["files"]
        if len(files) == 1 and files[0][0] is None:
            out = {"path": files[0][1]}
        else:
            out = {"paths": {sym: path for sym, path in files}}
    for k in ("start", "end", "timeframe", "symbol_column"):
        if data.get(k):
            out[k] = data[k]
    if data.get("symbols"):
        out["symbols"] = list(data["symbols"])
    return out


def _entries(items: list[dict]) -> list[dict]:
    keys = ("type", "parameters", "constraints", "active_regimes")
    return [{k: e[k] for k in keys if e.get(k)} for e in items]


def _nested(flat: dict) -> dict:
    """{"commission.rate": x} -> {"commission": {"rate": x}}."""
    out: dict = {}
    for k, v in flat.items():
        if "." in k:
            group, sub = k.split(".", 1)
            out.setdefault(group, {})[sub] = v
        else:
            out[k] = v
    return out


def raw_config(cfg: SweepConfig) -> dict:
    """A dict ``load_config`` accepts from any folder: the normalised config with absolute paths."""
    n = cfg.normalized
    wf = n["workflow"]
    raw = {
        "name": n["name"],
        "strategies": _entries(n["strategies"]),
        "portfolio": _nested(n["portfolio"]),
        "execution": _nested(n["execution"]),
        "workflow": {
            "type": wf["type"],
            **({"base_pattern": wf["base_pattern"]} if wf["type"] != wf["base_pattern"] else {}),
            **wf["options"],
        },
        "objective": n["objective"],
        "seed": n["seed"],
        "overfitting": {k: v for k, v in n["overfitting"].items() if v is not None},
        "min_trades": n["min_trades"],
        "top_k": cfg.top_k,
        "keep": list(cfg.keep),
        "chunk_size": cfg.chunk_size,
        "max_combinations": cfg.max_combinations,
        **{k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in n["tracing"].items()},
    }
    data = _data(n["data"])
    if data is not None:
        raw["data"] = data
    if n["classifiers"]:
        raw["classifiers"] = _entries(n["classifiers"])
    if n["risk"]:
        raw["risk"] = _entries(n["risk"])
    if n["phase_overrides"]:
        raw["phase_overrides"] = {
            k: {kk: (list(vv) if isinstance(vv, (list, tuple)) else vv) for kk, vv in v.items()}
            for k, v in n["phase_overrides"].items()
        }
    if cfg.score_from is not None:
        raw["score_from"] = cfg.score_from
    if cfg.pattern_dirs:  # a workflow from the config's own patterns: absolute folders
        raw["patterns"] = list(cfg.pattern_dirs)
    if cfg.plugins:
        base = Path(cfg.base_dir)
        raw["plugins"] = [str((base / p).resolve()) if (base / p).exists() else p for p in cfg.plugins]
    return raw
