"""Pictures of a run: the self-contained HTML report (``sweep report``) and its figures one by one (``res.plot``).

Plotly draws every chart (see the README for why); the report embeds
plotly.js once, so the file opens offline and makes no network request.

Example:
    >>> import sweep
    >>> res = sweep.run({"data": {"synthetic": {"bars": 3000, "timeframe": "5m"}}, "results_storage": "memory",
    ...                  "strategies": [{"type": "ma_crossover", "parameters": {"fast": [5, 10], "slow": [40, 80]}}]},
    ...                 progress=False)
    >>> fig = res.plot.heatmap("strategy.fast", "strategy.slow")
    >>> fig.data[0].type
    'heatmap'
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from services.errors import ConfigError

from ..faults import write_atomic
from . import figures
from .page import build


def write_report(res, out=None, agg: str = "max", top: int | None = None) -> Path:
    """Write the HTML report of an opened run (``sweep.open_results``; default file ``<run>/report.html``)."""
    if res.path is None:
        raise ConfigError(("report",), "the run has no folder", fix="run with results_storage: disk")
    if agg not in figures.AGGREGATIONS:
        raise ConfigError(
            ("--agg",), f"expected one of {', '.join(figures.AGGREGATIONS)}", value=agg, fix="e.g. --agg median"
        )
    text, _ = build(res, agg=agg, top=top)
    path = Path(out) if out else res.path / "report.html"
    write_atomic(path, text)
    return path


class Plots:
    """The report's figures of one run (plotly Figures: they display inline in Jupyter)."""

    def __init__(self, res) -> None:
        self.res = res

    def _m(self, phase):
        return self.res.table("metrics", phase)

    def heatmap(self, x: str, y: str, metric: str | None = None, agg: str = "max", phase: str | None = None):
        """``metric`` (default: the objective) over parameters ``x`` and ``y``, the others aggregated by ``agg``."""
        return figures.heatmap(self._m(phase), x, y, metric or self.res.objective[0], agg)

    def profile(self, param: str, metric: str | None = None, phase: str | None = None):
        return figures.profile(self._m(phase), param, metric or self.res.objective[0])

    def equity(self, combo_ids, symbol: str | None = None, phase: str | None = None):
        """Equity and drawdown of these combinations against buy-and-hold of the same bars."""
        ids = [int(combo_ids)] if isinstance(combo_ids, int) else [int(c) for c in combo_ids]
        curves = self.res.curves(ids, symbol=symbol, phase=phase)
        by = {f"combo {c}": curves.filter(pl.col("combo_id") == c).sort("bar") for c in ids}
        first = next(iter(by.values()))
        return figures.equity(by, first.select("timestamp", "close") if "close" in first.columns else None)

    def trades(self, combo_id: int, symbol: str | None = None, phase: str | None = None):
        """A combination's trades over the price."""
        eq = self.res.curves([combo_id], symbol=symbol, phase=phase).sort("bar")
        return figures.trades_over_price(eq, self.res.trades(combo_id, symbol, phase), f"combo {combo_id}")

    def pnl(self, combo_id: int, symbol: str | None = None, phase: str | None = None):
        return figures.pnl_histogram(self.res.trades(combo_id, symbol, phase), f"combo {combo_id}")

    def regimes(self, combo_ids, phase: str | None = None):
        ids = [int(c) for c in combo_ids]
        return figures.regimes(self.res.table("regimes", phase), ids, {c: f"combo {c}" for c in ids})

    def logits(self, phase: str | None = None):
        """CSCV's logit histogram of the phase's first luck block."""
        return figures.logit_histogram(self.res.overfitting(phase)[0])


__all__ = ["Plots", "write_report"]
