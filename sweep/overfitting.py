"""How likely is a phase's winner luck: the ``overfitting`` block of a phase summary.

For one ranking (a symbol and window of a phase that ranks combinations), from
every combination's per-block returns, read once in chunks:

- **trials**: combinations that ran, identical block-return series counted once;
- **deflated Sharpe ratio** of the best-ranked combination: trials N, variance
  of the trials' Sharpe ratios, T blocks, the best's skewness and non-excess
  kurtosis - all per block, not annualised - plus its probabilistic Sharpe
  ratio against 0 and the Sharpe the best of N skill-less trials reaches;
- **PBO** by CSCV over S partitions of the blocks (distinct trials only);
- **White's Reality Check and Hansen's SPA** p-values of the best against a
  flat benchmark (all combinations, stationary bootstrap, seeded).

These answer "is the winner better than holding cash?".  Given buy-and-hold's
block returns on the same blocks, ``vs_buy_and_hold`` answers "is it better
than just holding the asset over the same bars?": the Reality Check and SPA of
every combination against buy-and-hold (same bootstrap replicates), and the
deflated Sharpe of the best's excess returns over it (the trials' excess
Sharpe ratios give the variance).  PBO ranks trials by their own Sharpe and is
not repeated there.

A statistic that cannot be computed says why (fewer than 10 blocks, fewer
than S blocks, one combination) instead of showing NaN.  ``sentence`` turns a
block into the line the CLI prints.

Verdict, for each benchmark: each computable statistic passes at the 5% level
(deflated Sharpe >= 0.95, PBO <= 0.05, SPA p <= 0.05); all pass -> "unlikely
to be luck alone", none -> "consistent with luck", otherwise "mixed evidence".
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from services.limits import LUCK_CHUNK_BYTES, MIN_LUCK_BLOCKS

from .stats.cscv import partition_bounds, partition_sums, pbo
from .stats.dsr import expected_max_sharpe, probabilistic_sharpe, row_moments
from .stats.spa import SPAStream

MIN_BLOCKS = MIN_LUCK_BLOCKS
CHUNK_BYTES = LUCK_CHUNK_BYTES
DSR_PASS, PBO_PASS, SPA_PASS = 0.95, 0.05, 0.05
HIST_BINS = 24


def chunk_rows(n_blocks: int) -> int:
    """Combinations per chunk: about CHUNK_BYTES of block returns, 64 to 4096 rows."""
    return int(min(4096, max(64, CHUNK_BYTES // (8 * max(1, n_blocks)))))


def _clean(mat: np.ndarray) -> tuple[np.ndarray, int]:
    """Non-finite block returns (an account wiped out) become 0; -0.0 becomes 0.0 so equal rows hash equal."""
    bad = ~np.isfinite(mat)
    n_bad = int(bad.any(axis=1).sum())
    out = np.where(bad, 0.0, mat) + 0.0
    return np.ascontiguousarray(out), n_bad


def _moments(mat: np.ndarray) -> np.ndarray:
    """(4, rows): mean, Sharpe, skewness, kurtosis of each row (see ``row_moments``)."""
    mom = np.empty((4, mat.shape[0]))
    row_moments(mat, mat.view(np.uint64), mom, np.empty(mat.shape[0], dtype=np.uint64))
    return mom


def _best_moments(mom: np.ndarray, k: int) -> dict:
    return {"block_sharpe": float(mom[1, k]), "skew": float(mom[2, k]), "kurtosis": float(mom[3, k])}


class _Scan:
    """One pass over the block returns: moments, distinct trials, CSCV partition sums, SPA.

    With ``hold`` (buy-and-hold's block returns) also the moments of every distinct
    trial's excess returns over it, and the SPA against it on the same replicates.
    """

    def __init__(
        self,
        n_blocks: int,
        partitions: int,
        reps: int,
        bootstrap_block: float,
        seed: int,
        best_id: int,
        hold: np.ndarray | None = None,
    ):
        self.t = n_blocks
        self.bounds = partition_bounds(n_blocks, partitions) if n_blocks >= partitions else None
        self.hold = None if hold is None else _clean(np.atleast_2d(hold))[0][0]
        benchmarks = {"flat": None} if hold is None else {"flat": None, "buy_and_hold": self.hold}
        self.spa = SPAStream(n_blocks, reps, bootstrap_block, seed, benchmarks=benchmarks)
        self.best_id = best_id
        self.best: dict | None = None
        self.best_excess: dict | None = None
        self.seen: set[int] = set()
        self.sharpes: list[np.ndarray] = []
        self.excess_sharpes: list[np.ndarray] = []
        self.sums: list[np.ndarray] = []
        self.sumsq: list[np.ndarray] = []
        self.rows = 0
        self.nonfinite = 0

    def add(self, ids: np.ndarray, mat: np.ndarray) -> None:
        mat, bad = _clean(mat)
        self.nonfinite += bad
        self.rows += len(ids)
        mom = np.empty((4, len(ids)))
        hashes = np.empty(len(ids), dtype=np.uint64)
        row_moments(mat, mat.view(np.uint64), mom, hashes)
        hit = np.flatnonzero(ids == self.best_id)
        if hit.size:
            self.best = _best_moments(mom, int(hit[0]))
            if self.hold is not None:
                self.best_excess = _best_moments(_moments(mat[hit[:1]] - self.hold), 0)
        _, first = np.unique(hashes, return_index=True)
        fresh = np.array([int(hashes[i]) not in self.seen for i in first], dtype=bool)
        keep = np.sort(first[fresh])
        self.seen.update(int(h) for h in hashes[keep])
        if keep.size == 0:
            return
        d = mat[keep]
        self.sharpes.append(mom[1, keep])
        if self.hold is not None:  # the distinct trials' Sharpe ratios of excess returns over buy-and-hold
            self.excess_sharpes.append(_moments(d - self.hold)[1])
        if self.bounds is not None:
            s, q = partition_sums(d, self.bounds)
            self.sums.append(s)
            self.sumsq.append(q)
        self.spa.add(d.T)

    @property
    def trials(self) -> int:
        return len(self.seen)


def _histogram(logits: np.ndarray) -> dict:
    finite = logits[np.isfinite(logits)]
    if finite.size == 0:
        return {"edges": [], "counts": []}
    counts, edges = np.histogram(finite, bins=HIST_BINS)
    return {"edges": [round(float(e), 6) for e in edges], "counts": counts.astype(int).tolist()}


def _deflated(sharpes: list[np.ndarray], trials: int, n_blocks: int, best: dict, why: dict) -> tuple:
    """(deflated Sharpe or None, the ``dsr`` details or None) of the best against the trials' Sharpe ratios."""
    if trials < 2:
        why["deflated_sharpe"] = "every combination gave the same block returns: one distinct trial"
        return None, None
    var = float(np.var(np.concatenate(sharpes), ddof=1))
    sr0 = expected_max_sharpe(trials, var)
    sr, g3, g4 = best.get("block_sharpe", np.nan), best.get("skew", np.nan), best.get("kurtosis", np.nan)
    dsr = probabilistic_sharpe(sr, n_blocks, g3, g4, sr0)
    details = {
        "trials": trials,
        "trial_sharpe_variance": var,
        "expected_max_sharpe": sr0,
        "best_sharpe": sr,
        "skew": g3,
        "kurtosis": g4,
        "periods": int(n_blocks),
        "psr": probabilistic_sharpe(sr, n_blocks, g3, g4, 0.0),
    }
    if math.isnan(dsr):
        why["deflated_sharpe"] = "the best's skewness and kurtosis leave no valid normal approximation"
        return None, details
    return dsr, details


def _versus_hold(scan: _Scan | None, n_blocks: int, seed: int, reasons: dict) -> dict:
    """The ``vs_buy_and_hold`` part of a block (``reasons``: why nothing could be computed, if so)."""
    out: dict = {"deflated_sharpe": None, "spa_p": None, "reality_check_p": None, "not_computable": dict(reasons)}
    if scan is None:
        out["verdict"] = verdict(out)
        return out
    hold = scan.hold
    sd = float(np.std(hold, ddof=1)) if hold.size > 1 else 0.0
    out["benchmark"] = {
        "return": float(np.prod(1.0 + hold) - 1.0),
        "block_sharpe": float(np.mean(hold) / sd) if sd > 0 else 0.0,
    }
    dsr, details = _deflated(scan.excess_sharpes, scan.trials, n_blocks, scan.best_excess or {}, out["not_computable"])
    out["deflated_sharpe"] = dsr
    if details is not None:
        out["dsr"] = details
    res = scan.spa.result("buy_and_hold")
    out["spa_p"], out["reality_check_p"] = res["spa_p"], res["reality_check_p"]
    out["spa"] = {**res, "seed": int(seed)}
    out["verdict"] = verdict(out)
    return out


def evaluate(
    chunks: Iterable[tuple[np.ndarray, np.ndarray]],
    *,
    n_blocks: int,
    rows: int,
    best_id: int | None,
    settings,
    seed: int,
    block_label: str,
    hold: np.ndarray | None = None,
) -> dict:
    """The overfitting block of one ranking from its block-return chunks (see the module docstring).

    ``rows`` is how many combinations the ranking holds, ``best_id`` its
    top-ranked combination; ``settings`` an ``OverfittingConfig``; ``hold``
    buy-and-hold's return in each of the ``n_blocks`` blocks (``vs_buy_and_hold``
    is left out without it).
    """
    out: dict = {
        "block": block_label,
        "blocks": int(n_blocks),
        "combinations": int(rows),
        "trials": None,
        "deflated_sharpe": None,
        "pbo": None,
        "spa_p": None,
        "reality_check_p": None,
        "not_computable": {},
    }
    why = out["not_computable"]
    if rows < 2 or best_id is None:
        reason = "only one combination ran: nothing was selected, so there is no selection bias to measure"
        why.update(dict.fromkeys(("deflated_sharpe", "pbo", "spa"), reason))
    elif n_blocks < MIN_BLOCKS:
        reason = (
            f"block {block_label} gives {n_blocks} block(s) of returns; these statistics need at least "
            f"{MIN_BLOCKS} (a block at most a tenth of the data): use a shorter overfitting.block or more data"
        )
        why.update(dict.fromkeys(("deflated_sharpe", "pbo", "spa"), reason))
    if why:
        if hold is not None:
            out["vs_buy_and_hold"] = _versus_hold(None, n_blocks, seed, {k: why[k] for k in ("deflated_sharpe", "spa")})
        return out
    s = settings.partitions
    bb = settings.bootstrap_block or max(1.0, float(int(math.sqrt(n_blocks))))
    scan = _Scan(n_blocks, s, settings.reps, bb, seed, int(best_id), hold)
    for ids, mat in chunks:
        scan.add(ids, mat)
    out["trials"] = scan.trials
    out["nonfinite_combinations"] = scan.nonfinite
    best = scan.best or {}
    out["best"] = {"combo_id": int(best_id), **best}
    # deflated Sharpe ratio of the best
    out["deflated_sharpe"], details = _deflated(scan.sharpes, scan.trials, n_blocks, best, why)
    if details is not None:
        out["dsr"] = details
    # probability of backtest overfitting
    if scan.bounds is None:
        why["pbo"] = f"{n_blocks} blocks are fewer than the {s} CSCV partitions: lower overfitting.partitions"
    elif scan.trials < 2:
        why["pbo"] = "one distinct trial: nothing to select among"
    else:
        r = pbo(np.concatenate(scan.sums), np.concatenate(scan.sumsq), np.diff(scan.bounds), seed)
        out["pbo"] = r["pbo"]
        out["cscv"] = {
            "partitions": s,
            "splits": r["splits"],
            "splits_total": r["splits_total"],
            "degradation_slope": r["degradation_slope"],
            "prob_oos_loss": r["prob_oos_loss"],
            "logit_histogram": _histogram(r["logits"]),
        }
    # Reality Check / SPA
    res = scan.spa.result()
    out["spa_p"], out["reality_check_p"] = res["spa_p"], res["reality_check_p"]
    out["spa"] = {**res, "seed": int(seed)}
    out["verdict"] = verdict(out)
    if hold is not None:
        out["vs_buy_and_hold"] = _versus_hold(scan, n_blocks, seed, {})
    return out


def verdict(block: dict) -> str:
    """'unlikely to be luck alone', 'mixed evidence' or 'consistent with luck' (see the module docstring).

    ``block`` is a ranking's block (against doing nothing) or its ``vs_buy_and_hold`` part.
    """
    passed = []
    if block.get("deflated_sharpe") is not None:
        passed.append(block["deflated_sharpe"] >= DSR_PASS)
    if block.get("pbo") is not None:
        passed.append(block["pbo"] <= PBO_PASS)
    if block.get("spa_p") is not None:
        passed.append(block["spa_p"] <= SPA_PASS)
    if not passed:
        return "not computable"
    if all(passed):
        return "unlikely to be luck alone"
    return "consistent with luck" if not any(passed) else "mixed evidence"


def _num(v, fmt: str = ".2f") -> str:
    return "n/a" if v is None else format(v, fmt)


def sentence(block: dict, metric: str, best_value) -> str:
    """One plain sentence, e.g. '500 combinations tried: best sharpe 2.63; beats doing nothing: deflated Sharpe
    0.34, PBO 0.8, SPA p = 0.7 - consistent with luck; beats buy-and-hold: deflated Sharpe 0.1, SPA p = 0.9 -
    consistent with luck.' (the buy-and-hold part only when the block has it)."""
    tried = f"{block['combinations']:,} combinations tried"
    if block.get("trials") is not None and block["trials"] < block["combinations"]:
        tried += f" ({block['trials']:,} distinct results)"
    value = "n/a" if best_value is None or not np.isfinite(best_value) else f"{best_value:.3g}"
    if block.get("verdict") in (None, "not computable"):
        reason = next(iter(block["not_computable"].values()), "")
        return f"{tried}: best {metric} {value}; luck statistics not computable - {reason}."
    flat = (
        f"beats doing nothing: deflated Sharpe {_num(block['deflated_sharpe'])}, PBO {_num(block['pbo'])}, "
        f"SPA p = {_num(block['spa_p'])} - {block['verdict']}"
    )
    hold = block.get("vs_buy_and_hold")
    if not hold:
        return f"{tried}: best {metric} {value}; {flat}."
    versus = (
        f"beats buy-and-hold: deflated Sharpe {_num(hold['deflated_sharpe'])}, SPA p = {_num(hold['spa_p'])} - "
        f"{hold['verdict']}"
    )
    return f"{tried}: best {metric} {value}; {flat}; {versus}."


def deflated_sharpe_of(mat: np.ndarray, block: dict) -> np.ndarray:
    """Deflated Sharpe of given combinations' block returns against a ranking's trials (NaN when unknown)."""
    d = block.get("dsr")
    out = np.full(mat.shape[0], np.nan)
    if not d:
        return out
    mat, _ = _clean(np.atleast_2d(mat))
    mom = _moments(mat)
    for k in range(mat.shape[0]):
        out[k] = probabilistic_sharpe(mom[1, k], mat.shape[1], mom[2, k], mom[3, k], d["expected_max_sharpe"])
    return out
