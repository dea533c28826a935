"""Phases and windows of a workflow (orchestration only: no events here).

A window is a range of bars to *score*; features always stream from the
first bar, so bars before a window only warm indicators up (they are past
data, so nothing leaks).  Each window gets fresh containers and a fresh bus.

- backtest / signal modes / optimization: one phase, one window over all bars;
- train_test: ``train`` on the first ``split`` of the bars, ``test`` on the
  rest for the top-k of train;
- walk_forward: train windows of ``train`` bars (rolling, or anchored at bar
  0), each followed by a test window of ``test`` bars trading the best
  combination of that train window; windows advance by ``step`` (default: test);
- monte_carlo: ``backtest`` over all bars, then ``resample`` bootstraps the
  trades (or blocks of returns) of the top-k; with ``holdout`` the backtest
  selects on the first part of the bars only, ``test`` trades the top-k on the
  held-out rest and ``resample`` bootstraps those held-out results.
"""

from __future__ import annotations

import attrs

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


def phases_for(cfg: SweepConfig, n_bars: int) -> list[Phase]:
    """The phases of ``cfg``'s workflow for a universe of ``n_bars`` bars."""
    wf = cfg.workflow
    whole = (Window(0, 0, n_bars),)
    if wf.type == "train_test":
        split = max(2, min(n_bars - 2, int(n_bars * wf.options["split"])))
        return [
            Phase("train", (Window(0, 0, split),)),
            Phase("test", (Window(0, split, n_bars),), select_from="train", top=max(1, cfg.top_k)),
        ]
    if wf.type == "walk_forward":
        o = wf.options
        train, test = int(o["train"]), int(o["test"])
        step = int(o["step"]) or test
        trains, tests = [], []
        k, s = 0, 0
        while s + train + test <= n_bars:
            a = 0 if o["anchored"] else s
            trains.append(Window(k, a, s + train))
            tests.append(Window(k, s + train, s + train + test))
            k += 1
            s += step
        if not trains:
            from services.errors import ConfigError

            raise ConfigError(
                ("workflow",),
                f"walk-forward needs train + test = {train + test} bars, the data has {n_bars}",
                fix="shorten workflow.train/workflow.test or use more data",
            )
        return [Phase("train", tuple(trains)), Phase("test", tuple(tests), select_from="train", top=1)]
    if wf.type == "monte_carlo":
        top = max(1, cfg.top_k)
        hold = float(wf.options.get("holdout", 0.0))
        if hold > 0.0:
            split = max(2, min(n_bars - 2, int(n_bars * (1.0 - hold))))
            rest = (Window(0, split, n_bars),)
            return [
                Phase("backtest", (Window(0, 0, split),)),
                Phase("test", rest, select_from="backtest", top=top),
                Phase("resample", rest, select_from="backtest", top=top, kind="resample"),
            ]
        return [
            Phase("backtest", whole),
            Phase("resample", whole, select_from="backtest", top=top, kind="resample"),
        ]
    name = "optimize" if wf.type == "optimization" else wf.type
    return [Phase(name, whole)]
