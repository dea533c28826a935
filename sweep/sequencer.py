"""Phases and windows of a workflow, built once per run: the schedule (orchestration only: no events here).

A workflow's pattern file lists its phases (``patterns/*.yaml``): each has a
name, which windows it scores, the phase whose best combinations it trades
(``uses``), how many (``top``), its kind (``simulate`` or ``resample``) and
an option that switches it on (``when``).  This module turns the workflow's
split into windows - a window is a range of bars to *score*; features always
stream from the first bar, so bars before a window only warm indicators up
(they are past data, so nothing leaks):

- ``all``: one window over all bars (backtest, optimization, signal modes);
- ``train`` / ``test`` for train_test: the first ``split`` of the bars / the rest;
- for walk_forward: train windows of ``train`` bars (rolling, or anchored at
  bar 0), each followed by a test window of ``test`` bars; windows advance by
  ``step`` (default: test; shorter is refused by the config);
- for monte_carlo: all bars, or with ``holdout`` the first part (``train``)
  and the held-out rest (``test``).

``Schedule.build`` makes the phases of every universe once; everything else
reads them from it.
"""

from __future__ import annotations

import attrs

from patterns import load_patterns
from services.errors import ConfigError

from .config import SweepConfig


@attrs.frozen
class Window:
    index: int
    start: int
    stop: int  # exclusive

    @property
    def label(self) -> str:
        return f"window_{self.index}"


@attrs.frozen
class Phase:
    name: str
    windows: tuple[Window, ...]
    select_from: str | None = None  # run the best combinations of this phase (per window)
    top: int | None = None  # how many of them (None: all combinations)
    kind: str = "simulate"  # or "resample"

    @property
    def windowed(self) -> bool:
        return len(self.windows) > 1


def _splits(cfg: SweepConfig, n_bars: int) -> dict[str, tuple[Window, ...]]:
    """The workflow's windows by name: all, and train / test where it splits the bars."""
    wf = cfg.workflow
    out = {"all": (Window(0, 0, n_bars),)}
    if wf.type == "train_test" or (wf.type == "monte_carlo" and float(wf.options.get("holdout", 0.0)) > 0.0):
        share = wf.options["split"] if wf.type == "train_test" else 1.0 - float(wf.options["holdout"])
        split = max(2, min(n_bars - 2, int(n_bars * share)))
        out["train"], out["test"] = (Window(0, 0, split),), (Window(0, split, n_bars),)
    elif wf.type == "walk_forward":
        o = wf.options
        train, test = int(o["train"]), int(o["test"])
        step = int(o["step"]) or test
        trains, tests, k, s = [], [], 0, 0
        while s + train + test <= n_bars:
            trains.append(Window(k, 0 if o["anchored"] else s, s + train))
            tests.append(Window(k, s + train, s + train + test))
            k, s = k + 1, s + step
        if not trains:
            raise ConfigError(
                ("workflow",),
                f"walk-forward needs train + test = {train + test} bars, the data has {n_bars}",
                fix="shorten workflow.train/workflow.test or use more data",
            )
        out["train"], out["test"] = tuple(trains), tuple(tests)
    else:  # no split: the train windows are all bars, and there are no test windows
        out["train"], out["test"] = out["all"], out["all"]
    return out


def phases_for(cfg: SweepConfig, n_bars: int) -> list[Phase]:
    """The phases of ``cfg``'s workflow for a universe of ``n_bars`` bars, as its pattern file lists them."""
    pattern = load_patterns(cfg.pattern_dirs)[cfg.workflow.type]
    windows = _splits(cfg, n_bars)
    out = []
    for ph in pattern.phases:
        if ph.get("when") and not cfg.workflow.options.get(ph["when"]):
            continue
        uses = ph.get("uses")
        top = int(ph["top"]) if "top" in ph else max(1, cfg.top_k)
        kind = ph.get("kind", "simulate")
        out.append(Phase(ph["name"], windows[ph.get("windows", "all")], uses, top if uses else None, kind))
    return out


@attrs.frozen(eq=False)
class Schedule:
    """Every universe's phases, made once per run (universe -> phases -> windows)."""

    by_symbol: dict

    @classmethod
    def build(cls, cfg: SweepConfig, universes) -> Schedule:
        return cls({u.symbol: tuple(phases_for(cfg, u.n)) for u in universes})

    def phases(self, universe) -> tuple[Phase, ...]:
        return self.by_symbol[universe.symbol]

    def phase(self, universe, name: str) -> Phase:
        return next(p for p in self.phases(universe) if p.name == name)

    @property
    def names(self) -> list[str]:
        """Phase names, in order (the same for every universe)."""
        return [p.name for p in next(iter(self.by_symbol.values()))]
