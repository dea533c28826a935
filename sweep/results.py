"""Results store: ``results/<name>/<run_id>/`` written atomically, and ``RunResult`` to read it.

Layout::

    manifest.json            normalised config, its hash, run key, data fingerprints, versions, seed, status
    plan.json                the expanded plan (sweep expand --json, plus features and layout)
    <phase>/metrics.parquet  one row per combination (and symbol): id, hash, services, parameters, metrics
    <phase>/regimes.parquet  per-regime metrics (when classifiers are used)
    <phase>/trades.parquet   closed trades of the traced / top-k / kept combinations
    <phase>/equity.parquet   equity curves of the top-k and kept combinations
    <phase>/events.parquet   events as traced
    <phase>/block_returns.parquet  every combination's return per block (a day, say) of a ranking phase
    <phase>/phase_summary.json, aggregate_results.json
    <phase>/shards/          completed shards of an unfinished phase (what --resume continues from)

Every file is written to a temporary name in the same folder and renamed, so
a reader (or a resumed run) never sees half a file.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from containers.metrics import METRICS
from services.errors import SweepError

from .faults import atomic_path, checkpoint, write_atomic
from .summary import ranked

TABLE_NAMES = ("metrics", "regimes", "trades", "equity", "events", "block_returns", "signals")
PARQUET_COMPRESSION = "lz4"  # fast to write (what a user waits for); polars and duckdb read it


def write_json(path: Path, obj: Any) -> None:
    write_atomic(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return None if not np.isfinite(o) else float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def write_parquet(path: Path, frame: pl.DataFrame) -> None:
    with atomic_path(path) as tmp:
        frame.write_parquet(tmp, compression=PARQUET_COMPRESSION)


def clean_floats(obj):
    """JSON-safe copy: NaN/inf become None."""
    if isinstance(obj, dict):
        return {k: clean_floats(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean_floats(v) for v in obj]
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


TMP_GLOB = ".*.tmp"  # what an interrupted atomic write leaves behind


class ManifestError(SweepError, ValueError):
    """A run folder whose manifest cannot be read."""


class RunLockedError(SweepError, RuntimeError):
    """Another process is writing this run folder."""


class RunStore:
    """One run folder; knows which phases and shards are complete; one writer at a time (``lock``)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = None

    # ------------------------------------------------------------ one writer
    def lock(self) -> None:
        """Take the folder's lock (released by the OS when this process ends, however it ends)."""
        import fcntl
        import socket

        fh = open(self.path / ".lock", "a+")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.seek(0)
            who = fh.read().strip() or "another process"
            fh.close()
            raise RunLockedError(
                f"{self.path}: the run is being written by {who}.\n"
                "  Fix: wait for it to finish, or stop it and continue with `--resume`"
            ) from None
        fh.seek(0)
        fh.truncate()
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        fh.write(f"pid {os.getpid()} on {socket.gethostname()} since {stamp}")
        fh.flush()
        self._lock = fh

    def unlock(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def holder(self) -> str | None:
        """Who holds the lock now (None: nobody - a 'running' run without a holder was killed)."""
        import fcntl

        p = self.path / ".lock"
        if not p.exists():
            return None
        with open(p, "a+") as fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                fh.seek(0)
                return fh.read().strip() or "another process"
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        return None

    def remove_temporaries(self) -> int:
        """Delete what interrupted atomic writes left (``.<name>.<pid>.tmp``); returns how many."""
        n = 0
        for p in self.path.rglob(TMP_GLOB):
            if p.is_file():
                p.unlink(missing_ok=True)
                n += 1
        return n

    @classmethod
    def find(cls, root: Path, name: str, run_key: str) -> list[RunStore]:
        """Existing runs of ``name`` with this run key, newest first."""
        base = Path(root) / name
        if not base.is_dir():
            return []
        out = []
        for d in sorted(base.iterdir(), reverse=True):
            m = d / "manifest.json"
            if m.is_file():
                try:
                    if json.loads(m.read_text()).get("run_key") == run_key:
                        out.append(cls(d))
                except (OSError, ValueError):
                    continue
        return out

    @classmethod
    def create(cls, root: Path, name: str, config_hash: str) -> RunStore:
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
        base = Path(root) / name
        path = base / f"{stamp}-{config_hash[:8]}"
        k = 1
        while path.exists():
            k += 1
            path = base / f"{stamp}-{config_hash[:8]}-{k}"
        path.mkdir(parents=True)
        return cls(path)

    @property
    def manifest(self) -> dict:
        p = self.path / "manifest.json"
        if not p.is_file():
            return {}
        try:
            return json.loads(p.read_text())
        except ValueError:
            raise ManifestError(
                f"{p}: the manifest is not valid JSON: the run folder is damaged.\n"
                "  Fix: run the config again with --force (a new folder), or remove this folder"
            ) from None

    def update_manifest(self, **fields) -> None:
        m = self.manifest
        m.update(fields)
        write_json(self.path / "manifest.json", m)

    @property
    def complete(self) -> bool:
        return self.manifest.get("status") == "complete"

    def phase_dir(self, phase: str) -> Path:
        return self.path / phase

    def shard_path(self, phase: str, tag: str) -> Path:
        return self.phase_dir(phase) / "shards" / f"{tag}.parquet"

    def phase_complete(self, phase: str) -> bool:
        return self.manifest.get("phases", {}).get(phase) == "complete"

    def remove_shards(self, phase: str) -> None:
        """Delete a complete phase's shard files (markers first); a kill half-way is finished on resume."""
        d = self.phase_dir(phase) / "shards"
        if not d.is_dir():
            return
        for m in sorted(d.glob("*.done.json")):
            m.unlink(missing_ok=True)
            checkpoint(f"removed {m.name}")
        for p in sorted(d.rglob("*"), key=lambda x: len(x.parts), reverse=True):
            if p.is_dir():
                p.rmdir()
            else:
                p.unlink(missing_ok=True)
            checkpoint(f"removed {p.name}")
        d.rmdir()

    def mark_phase(self, phase: str, status: str) -> None:
        m = self.manifest
        m.setdefault("phases", {})[phase] = status
        write_json(self.path / "manifest.json", m)


class TableError(SweepError, ValueError):
    """A results table that cannot be read."""


def _read_table(path: Path) -> pl.DataFrame:
    if not path.exists():
        return pl.DataFrame()
    try:
        return pl.read_parquet(path)
    except Exception as exc:
        raise TableError(
            f"{path}: cannot read this Parquet file ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}).\n"
            "  Fix: the file is damaged; run the config again with --force (the other files are left as they are)"
        ) from None


class RunResult:
    """What a run produced, as polars DataFrames.

    Example:
        >>> from sweep import run
        >>> res = run({"data": {"synthetic": {"bars": 2000, "timeframe": "5m"}}, "results_storage": "memory",
        ...            "strategies": [{"type": "ma_crossover", "parameters": {"fast": [5, 10], "slow": [40]}}]},
        ...           progress=False)
        >>> res.metrics.height, res.best(1)["combo_id"].len()
        (2, 1)
    """

    def __init__(
        self,
        path: Path | None,
        phases: dict[str, dict],
        objective: tuple[str, str],
        main_phase: str,
        replay=None,
        manifest: dict | None = None,
        min_trades: int = 0,
    ) -> None:
        self.path = Path(path) if path else None
        self._phases = phases
        self.objective = objective
        self.main_phase = main_phase
        self._replay = replay
        self.manifest = manifest or {}
        self.min_trades = int(min_trades)

    # ---------------------------------------------------------- tables
    def table(self, name: str, phase: str | None = None) -> pl.DataFrame:
        """One table of a phase (metrics, regimes, trades, equity, events, block_returns), read on first use."""
        if name not in TABLE_NAMES:
            raise KeyError(f"no table {name!r}; tables: {', '.join(TABLE_NAMES)}")
        return self._table(name, phase)

    def _table(self, name: str, phase: str | None = None) -> pl.DataFrame:
        phase = phase or self.main_phase
        tables = self._phases.get(phase)
        if tables is None:
            raise KeyError(f"no phase {phase!r}; phases: {', '.join(self._phases)}")
        t = tables.get(name)
        if isinstance(t, Path):
            t = _read_table(t)
            tables[name] = t
        return t if t is not None else pl.DataFrame()

    @property
    def phases(self) -> list[str]:
        return list(self._phases)

    @property
    def metrics(self) -> pl.DataFrame:
        """One row per combination (and symbol) of the main phase."""
        return self._table("metrics")

    def phase(self, name: str) -> dict[str, pl.DataFrame]:
        """Every table of a phase (all are read: use ``table`` for one)."""
        return {k: self._table(k, name) for k in TABLE_NAMES}

    def summary(self, phase: str | None = None) -> dict:
        """The phase summary (phase_summary.json): counts, ranking rule, ``overfitting`` and ``out_of_sample``."""
        phase = phase or self.main_phase
        tables = self._phases.get(phase)
        if tables is None:
            raise KeyError(f"no phase {phase!r}; phases: {', '.join(self._phases)}")
        s = tables.get("summary")
        if isinstance(s, Path):
            s = json.loads(s.read_text()) if s.is_file() else {}
            tables["summary"] = s
        return s or {}

    def overfitting(self, phase: str | None = None) -> list[dict]:
        """The luck blocks of a phase: one per symbol and window (deflated Sharpe, PBO, SPA, sentence)."""
        return list(self.summary(phase).get("overfitting", []))

    @property
    def block_returns(self) -> pl.DataFrame:
        """Return of every combination per block (a day, say) of the main phase: the input of the luck statistics."""
        return self._table("block_returns")

    @property
    def regimes(self) -> pl.DataFrame:
        return self._table("regimes")

    @property
    def events(self) -> pl.DataFrame:
        return self._table("events")

    def best(self, n: int = 10, by: str | None = None, phase: str | None = None) -> pl.DataFrame:
        """Top ``n`` combinations by ``by`` (default: the config's objective); NaN and too few trades sort last."""
        metric = by or self.objective[0]
        direction = self.objective[1] if by is None else None
        m = self._table("metrics", phase)
        if metric not in m.columns:
            raise KeyError(f"no metric {metric!r}; metrics: {', '.join(c for c in m.columns if c in METRICS)}")
        return ranked(m, metric, direction or METRICS.get(metric, ("max",))[0], self.min_trades).head(n)

    def _detail(self, name: str, combo_id: int, symbol: str | None, phase: str | None) -> pl.DataFrame:
        t = self._table(name, phase)
        if t.height and "combo_id" in t.columns:
            sel = t.filter(pl.col("combo_id") == int(combo_id))
            if symbol is not None and "symbol" in sel.columns:
                sel = sel.filter(pl.col("symbol") == symbol)
            if sel.height:
                return sel
        if self._replay is None:
            return t.clear() if t.width else t
        return self._replay(name, int(combo_id), symbol, phase or self.main_phase)

    def trades(self, combo_id: int, symbol: str | None = None, phase: str | None = None) -> pl.DataFrame:
        """Closed trades of one combination (replayed from the config when they were not kept)."""
        return self._detail("trades", combo_id, symbol, phase)

    def equity(self, combo_id: int, symbol: str | None = None, phase: str | None = None) -> pl.DataFrame:
        """Equity curve of one combination (replayed when it was not kept)."""
        return self._detail("equity", combo_id, symbol, phase)

    def curves(self, combo_ids, symbol: str | None = None, phase: str | None = None, what: str = "equity"):
        """Equity curves (or trades) of several combinations: the kept ones read, the others replayed in one pass."""
        ids = sorted({int(c) for c in combo_ids})
        t = self._table(what, phase)
        have = t.filter(pl.col("combo_id").is_in(ids)) if t.height and "combo_id" in t.columns else t.clear()
        if symbol is not None and have.height and "symbol" in have.columns:
            have = have.filter(pl.col("symbol") == symbol)
        missing = sorted(set(ids) - set(have["combo_id"].to_list() if have.height else []))
        parts = [have] if have.height else []
        if missing and self._replay is not None:
            parts.append(self._replay(what, missing, symbol, phase or self.main_phase))
        parts = [p for p in parts if p.height]
        return pl.concat(parts, how="diagonal_relaxed") if parts else pl.DataFrame()

    @property
    def plot(self):
        """The report's figures one by one, for a notebook: ``res.plot.heatmap("strategy.fast", "strategy.slow")``."""
        from .report import Plots

        return Plots(self)

    def stats(self, combo_id: int, symbol: str | None = None, phase: str | None = None) -> pl.DataFrame:
        """The statistics sheet of one combination (``sweep.sheet``): section, statistic, value, unit, per symbol
        and window - its metrics, trade and drawdown statistics in bars and days, buy-and-hold of the same bars
        with beta and alpha against it, and monthly returns.  Trades and equity are replayed when not kept."""
        from .sheet import stats_sheet

        phase = phase or self.main_phase
        m = self._table("metrics", phase)
        rows = m.filter(pl.col("combo_id") == int(combo_id)) if m.height and "combo_id" in m.columns else m
        if symbol is not None and rows.height:
            rows = rows.filter(pl.col("symbol") == symbol)
        if not rows.height:
            from services.errors import ConfigError

            ids = f"0..{m['combo_id'].max()}" if m.height and "combo_id" in m.columns else "none"
            raise ConfigError(
                ("combo_id",),
                f"no combination {combo_id}{f' for {symbol}' if symbol else ''} in phase {phase!r} (ids: {ids})",
                value=combo_id,
                fix="use a combo_id from metrics.parquet (`sweep results DIR` lists the best)",
            )
        eq, tr = self.equity(combo_id, symbol, phase), self.trades(combo_id, symbol, phase)
        per_year = {
            (w["symbol"], w.get("window", 0)): w["bars_per_year"] for w in self.summary(phase).get("windows", [])
        }
        out = []
        for row in rows.iter_rows(named=True):
            sym, win = row.get("symbol"), row.get("window", 0)
            year = per_year.get((sym, win)) or next(iter(per_year.values()), 252.0)
            windowed = "window" in row
            sheet = stats_sheet(row, _part(eq, sym, win, windowed).sort("bar"), _part(tr, sym, win, windowed), year)
            out.append(sheet.with_columns(pl.lit(sym).alias("symbol"), pl.lit(win).alias("window")))
        return pl.concat(out)

    def __repr__(self) -> str:
        where = f" at {self.path}" if self.path else " (in memory)"
        return f"<RunResult {self.metrics.height} rows, phases {self.phases}{where}>"


def _part(t: pl.DataFrame, symbol, window, windowed: bool) -> pl.DataFrame:
    """The rows of one symbol (and window, in windowed phases) of a trades or equity table."""
    if not t.height:
        return t
    if "symbol" in t.columns:
        t = t.filter(pl.col("symbol") == symbol)
    return t.filter(pl.col("window") == window) if windowed and "window" in t.columns else t


def _status_of(run_dir: Path) -> str | None:
    try:
        return json.loads((run_dir / "manifest.json").read_text()).get("status")
    except (OSError, ValueError):
        return None


def open_results(path: str | Path, replay=None) -> RunResult:
    """Open a results folder: a run folder, or a sweep folder (its newest complete run).

    ``replay(manifest, run_dir, table, combo_id, symbol, phase)`` recomputes the
    trades or equity of a combination that was not kept (``sweep.open_results``
    passes the runner's); without it such requests return empty tables.
    """
    p = Path(path)
    if not (p / "manifest.json").is_file():
        runs = sorted((d for d in p.iterdir() if (d / "manifest.json").is_file()), reverse=True) if p.is_dir() else []
        done = [d for d in runs if _status_of(d) == "complete"]
        if not (done or runs):
            from services.errors import ConfigError

            raise ConfigError("<results>", f"no results in {str(p)!r}", fix="pass a folder written by `sweep run`")
        p = (done or runs)[0]
    manifest = RunStore(p).manifest
    phases = {}
    for name in manifest.get("phase_order", []):
        d = p / name
        phases[name] = {k: d / f"{k}.parquet" for k in TABLE_NAMES}
        phases[name]["summary"] = d / "phase_summary.json"
    obj = manifest.get("config", {}).get("objective", {"metric": "sharpe", "direction": "max"})

    def replayed(name, combo_id, symbol, phase):
        return replay(manifest, p, name, combo_id, symbol, phase)

    return RunResult(
        p,
        phases,
        (obj["metric"], obj["direction"]),
        manifest.get("main_phase", "backtest"),
        replay=replayed if replay is not None else None,
        manifest=manifest,
        min_trades=manifest.get("config", {}).get("min_trades", 0),
    )
