"""The Monte Carlo ``resample`` phase: bootstrap the trades (or blocks of bar returns) of selected combinations.

The combinations resampled are the top-k of the selection phase - chosen
*in sample*, so bootstrap quantiles of their own in-sample returns are
optimistic.  Each row says where they were selected and what they were
resampled on, and carries their deflated Sharpe ratio against every
combination tried (from the selection phase's block returns).  With
``holdout:`` the selection sees only the first part of the bars and the
resampling uses the held-out rest.

- ``method: trades``: ``samples`` sequences of the combination's closed-trade
  returns drawn with replacement, compounded; Sharpe = mean / std of the drawn
  trade returns x sqrt(trades per year of the window);
- ``method: blocks``: moving blocks of ``block_size`` bar returns of its equity
  curve, drawn with replacement; Sharpe annualised with bars per year.

Samples are drawn in batches, so memory stays bounded whatever ``samples`` is.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from services.limits import MC_BATCH_CELLS

from .frames import collected_events_frame, trades_frame

BATCH_CELLS = MC_BATCH_CELLS
QUANTILES = (5, 50, 95)


def _path_stats(draws: np.ndarray, ann: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Total return, max drawdown and annualised Sharpe of each row of returns."""
    growth = np.cumprod(1.0 + draws, axis=1)
    peak = np.maximum(np.maximum.accumulate(growth, axis=1), 1.0)
    mdd = np.max(1.0 - growth / peak, axis=1)
    sd = draws.std(axis=1, ddof=1) if draws.shape[1] > 1 else np.zeros(draws.shape[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        sharpe = np.where(sd > 0, draws.mean(axis=1) / sd * ann, np.nan)
    return growth[:, -1] - 1.0, np.maximum(mdd, 0.0), sharpe


def _bootstrap(r: np.ndarray, samples: int, block: int, rng, ann: float):
    """Statistics of ``samples`` resampled paths of ``r`` (blocks of ``block`` consecutive values)."""
    n = r.size
    nb = max(1, math.ceil(n / block))
    per_batch = max(1, BATCH_CELLS // max(1, nb * block))
    parts = []
    for a in range(0, samples, per_batch):
        k = min(per_batch, samples - a)
        starts = rng.integers(0, max(1, n - block + 1), (k, nb))
        idx = (starts[:, :, None] + np.arange(block)[None, None, :]).reshape(k, -1)[:, :n]
        parts.append(_path_stats(r[np.minimum(idx, n - 1)], ann))
    return tuple(np.concatenate(x) for x in zip(*parts))


def resample_phase(run, universe, window, ids: np.ndarray, *, dsr: dict, selected_in: str, on: str) -> pl.DataFrame:
    """One row per combination: quantiles of total return, max drawdown and Sharpe, probability of loss.

    ``dsr`` maps combination id -> deflated Sharpe ratio from the selection
    phase; ``selected_in`` names that phase and ``on`` the bars resampled
    ("in_sample" or "holdout").
    """
    opts = run.cfg.workflow.options
    samples, method, block = int(opts["samples"]), opts["method"], int(opts["block_size"])
    res = run._simulate(universe, ids, window, record_events=method == "trades", record_equity=method == "blocks")
    trades = trades_frame(collected_events_frame(res, universe), universe) if method == "trades" else None
    years = (res.t_last - res.t_first + 1) / universe.bars_per_year
    run.progress.update(len(ids) * (res.t_last - res.t_first + 1))
    rows = []
    for row, cid in enumerate(ids):
        rng = np.random.default_rng([int(opts["seed"]), int(cid)])
        out = {
            "combo_id": int(cid),
            "symbol": universe.symbol,
            "method": method,
            "selected_in": selected_in,
            "resampled_on": on,
            "deflated_sharpe": dsr.get(int(cid)),
        }
        if method == "trades":
            r = trades.filter(pl.col("combo_id") == int(cid))["return"].to_numpy() if trades.height else np.zeros(0)
            if r.size == 0:
                rows.append({**out, "samples": 0, "trades": 0, "note": "no closed trades to resample"})
                continue
            ann = math.sqrt(r.size / years) if years > 0 else float("nan")
            total, mdd, sharpe = _bootstrap(r, samples, 1, rng, ann)
            out["trades"] = int(r.size)
        else:
            eq = res.equity[row]
            with np.errstate(divide="ignore", invalid="ignore"):
                r = np.nan_to_num(eq[1:] / eq[:-1] - 1.0, nan=0.0, posinf=0.0, neginf=0.0)
            total, mdd, sharpe = _bootstrap(r, samples, block, rng, math.sqrt(universe.bars_per_year))
        out["samples"] = samples
        for name, arr in (("total_return", total), ("max_drawdown", mdd), ("sharpe", sharpe)):
            ok = np.isfinite(arr)
            for q in QUANTILES:
                out[f"{name}_p{q}"] = float(np.percentile(arr[ok], q)) if ok.any() else None
            out[f"{name}_mean"] = float(arr[ok].mean()) if ok.any() else None
        out["prob_loss"] = float(np.mean(total < 0))
        rows.append(out)
    return pl.DataFrame(rows, infer_schema_length=None)
