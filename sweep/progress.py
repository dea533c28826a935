"""Progress of a run: a bar on a terminal (tqdm), plain log lines otherwise."""

from __future__ import annotations

import os
import sys
import time


class Progress:
    """Counts bar-combinations (and shards) done against a total; shows rate and ETA."""

    def __init__(
        self, total: int, label: str = "sweep", enabled: bool = True, stream=None, every: float = 5.0, bar: bool = True
    ):
        self.total = max(1, int(total))
        self.done = 0
        self.shards_done = 0
        self.shards_total = 0
        self.label = label
        self.stream = stream or sys.stderr
        self.every = float(os.environ.get("SWEEP_PROGRESS_EVERY", every))  # seconds between log lines
        self.start = time.perf_counter()
        self._last = self.start
        self._bar = None
        self.enabled = enabled
        if enabled and bar and getattr(self.stream, "isatty", lambda: False)():
            from tqdm import tqdm

            self._bar = tqdm(
                total=self.total,
                unit="bar-combos",
                unit_scale=True,
                desc=label,
                file=self.stream,
                dynamic_ncols=True,
                smoothing=0.1,
            )

    def shards(self, n: int) -> None:
        """``n`` more shards to count (a window's)."""
        self.shards_total += int(n)

    def update(self, n: int, shards: int = 0) -> None:
        self.done += int(n)
        self.shards_done += int(shards)
        if not self.enabled:
            return
        if self._bar is not None:
            if shards:
                self._bar.set_postfix_str(f"shards {self.shards_done}/{self.shards_total}", refresh=False)
            self._bar.update(int(n))
            return
        now = time.perf_counter()
        if now - self._last >= self.every:
            self._last = now
            self.stream.write(self.line() + "\n")
            self.stream.flush()

    def line(self) -> str:
        el = time.perf_counter() - self.start
        rate = self.done / el if el > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else float("nan")
        return (
            f"[{self.label}] {self.done:,}/{self.total:,} bar-combos ({100 * self.done / self.total:.0f}%), "
            f"{rate / 1e6:.1f}M/s, ETA {eta:.0f}s"
            + (f", shards {self.shards_done}/{self.shards_total}" if self.shards_total else "")
        )

    def note(self, text: str) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.write(text, file=self.stream)
        else:
            self.stream.write(text + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self._bar is not None:
            if self.done >= self.total and self._bar.n < self.total:
                self._bar.update(self.total - self._bar.n)  # end at 100 % (rounding of the counts)
            self._bar.close()
            self._bar = None
