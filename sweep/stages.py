"""Where a run's wall time goes, by stage: ``sweep run --profile`` prints it, the benchmarks record it.

``stage("name")`` is a context manager that adds the wall time inside it to
the current run's tally (nested stages count in both; the report lists them
in the order they first ran).  It costs two clock reads.
"""

from __future__ import annotations

import time
from contextlib import contextmanager

_tally: dict[str, float] = {}


def reset() -> None:
    _tally.clear()


@contextmanager
def stage(name: str):
    t = time.perf_counter()
    try:
        yield
    finally:
        _tally[name] = _tally.get(name, 0.0) + time.perf_counter() - t


def add(name: str, seconds: float) -> None:
    _tally[name] = _tally.get(name, 0.0) + seconds


def tally() -> dict[str, float]:
    """Seconds per stage of the current run."""
    return dict(_tally)


def report(total: float) -> str:
    """A small table: stage, seconds, share of ``total``."""
    rows = [("stage", "seconds", "share")] + [(k, f"{v:.3f}", f"{v / total:.0%}") for k, v in _tally.items()]
    rows.append(("total (wall)", f"{total:.3f}", "100%"))
    w0, w1 = max(len(r[0]) for r in rows), max(len(r[1]) for r in rows)
    return "\n".join(f"  {a:<{w0}}  {b:>{w1}}  {c:>5}" for a, b, c in rows)
