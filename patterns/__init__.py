"""Pattern rules as data: for each mode and workflow, which roles are shared,
which expand with parameters, which cascade (one per combination) and which
are stateless services.  The topology builder reads them; add your own by
putting a YAML file of the same shape in a folder and calling
``load_patterns(extra_dirs=[folder])`` (or listing it under ``patterns:`` in a
sweep config).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import yaml

HERE = Path(__file__).parent
SHARINGS = ("shared", "expand", "cascade")
ROLE_NAMES = ("data", "feature_hub", "execution", "signal_store", "strategy", "classifier", "risk", "portfolio")
OPTION_KINDS = ("int", "float", "bool", "choice")
# a phase: its name, which windows it scores (all | train | test, the workflow's split), the phase whose best
# it trades (uses) and how many (top; default the config's top_k), kind (simulate | resample), when (an option)
PHASE_KEYS = ("name", "windows", "uses", "top", "kind", "when")


class PatternError(ValueError):
    """A pattern file that does not follow the shape of the built-in ones."""


@attrs.frozen
class Role:
    name: str
    sharing: str
    stateless: bool = False


@attrs.frozen
class Pattern:
    name: str
    kind: str  # "mode" or "workflow"
    description: str
    aliases: tuple[str, ...]
    roles: tuple[Role, ...]
    phases: tuple[dict, ...]
    options: dict[str, dict]
    defaults: dict[str, Any]
    base_pattern: str | None
    source: str

    def role(self, name: str) -> Role | None:
        for r in self.roles:
            if r.name == name:
                return r
        return None


def _pattern_from(data: Any, source: str) -> Pattern:
    if not isinstance(data, dict):
        raise PatternError(f"{source}: a pattern file must be a mapping")
    name = data.get("name")
    kind = data.get("kind")
    if not isinstance(name, str) or kind not in ("mode", "workflow"):
        raise PatternError(f"{source}: needs `name:` and `kind: mode|workflow`")
    roles = []
    for rname, rule in (data.get("roles") or {}).items():
        if rname not in ROLE_NAMES:
            raise PatternError(f"{source}: unknown role {rname!r}; roles are {', '.join(ROLE_NAMES)}")
        if not isinstance(rule, dict) or rule.get("sharing") not in SHARINGS:
            raise PatternError(f"{source}: role {rname} needs sharing: {'|'.join(SHARINGS)}")
        roles.append(Role(rname, rule["sharing"], bool(rule.get("stateless", False))))
    if kind == "mode" and not roles:
        raise PatternError(f"{source}: a mode pattern must list its roles")
    phases = tuple(data.get("phases") or ({"name": name},))
    for ph in phases:
        if not isinstance(ph, dict) or not isinstance(ph.get("name"), str) or set(ph) - set(PHASE_KEYS):
            raise PatternError(f"{source}: a phase is a mapping with `name:` and some of {', '.join(PHASE_KEYS)}")
    options = data.get("options") or {}
    for oname, o in options.items():
        if not isinstance(o, dict) or o.get("kind") not in OPTION_KINDS:
            raise PatternError(f"{source}: option {oname} needs kind: {'|'.join(OPTION_KINDS)}")
    return Pattern(
        name=name,
        kind=kind,
        description=str(data.get("description", "")),
        aliases=tuple(data.get("aliases") or ()),
        roles=tuple(roles),
        phases=phases,
        options=dict(options),
        defaults=dict(data.get("defaults") or {}),
        base_pattern=data.get("base_pattern"),
        source=source,
    )


def load_patterns(extra_dirs=()) -> dict[str, Pattern]:
    """All patterns by name and alias: the shipped ones, then any in ``extra_dirs`` (which may override)."""
    key = tuple(str(d) for d in extra_dirs)
    stamp = tuple(
        (str(p), p.stat().st_mtime_ns) for f in (HERE, *map(Path, key)) for p in sorted(Path(f).glob("*.yaml"))
    )
    if _CACHE.get(key, (None,))[0] != stamp:
        _CACHE[key] = (stamp, _load(key))
    return dict(_CACHE[key][1])


_CACHE: dict[tuple, tuple] = {}  # folders -> (file stamps, patterns): pattern files are read once


def _load(extra_dirs) -> dict[str, Pattern]:
    out: dict[str, Pattern] = {}
    for folder in (HERE, *[Path(d) for d in extra_dirs]):
        for path in sorted(Path(folder).glob("*.yaml")):
            with open(path, encoding="utf-8") as fh:
                pattern = _pattern_from(yaml.safe_load(fh), str(path))
            out[pattern.name] = pattern
            for alias in pattern.aliases:
                out[alias] = pattern
    return out
