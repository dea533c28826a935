"""Event bus and tracer.

Each phase (and window) gets a fresh ``EventBus``; execution talks only
through it.  The fast engine publishes *batches* (a polars DataFrame of many
events of one type); the reference engine publishes single events.  Either
way the bus counts every delivery, which the container-reduction benchmark
reports.

The ``Tracer`` subscribes to the bus and keeps what ``event_tracing`` asks for
under a retention policy:

- ``trade_complete``: an event is kept once the trade it belongs to is closed
  (events of a position still open at the end are dropped and counted);
- ``sliding_window``: the last ``sliding_window_size`` events per combination;
- ``minimal``: nothing is kept, only counts.

The runner's sink (``sweep.tracesink``) takes kept events away in batches and
writes them out, so memory stays flat however many events a sweep traces.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

import polars as pl

EVENT_TYPES = ("FILL", "POSITION_OPEN", "POSITION_CLOSE", "PORTFOLIO_UPDATE", "SIGNAL")


class EventBus:
    """Synchronous publish/subscribe for one phase; counts deliveries."""

    def __init__(self, name: str = "phase") -> None:
        self.name = name
        self._subs: dict[str, list[Callable]] = defaultdict(list)
        self._keyed: dict[tuple, list[Callable]] = defaultdict(list)
        self.published = 0  # events put on the bus
        self.delivered = 0  # handler invocations x events
        self.closed = False

    def subscribe(self, event_type: str, handler: Callable, key=None) -> None:
        """Call ``handler(payload)`` for events of ``event_type`` (only those sent with ``key``, if given)."""
        if key is None:
            self._subs[event_type].append(handler)
        else:
            self._keyed[(event_type, key)].append(handler)

    def publish(self, event_type: str, payload, key=None, count: int = 1) -> None:
        """Deliver one event (or a batch of ``count`` events) to its subscribers."""
        if self.closed:
            raise RuntimeError(f"event bus {self.name!r} is closed")
        self.published += count
        handlers = self._subs.get(event_type, ())
        keyed = self._keyed.get((event_type, key), ()) if key is not None else ()
        for h in handlers:
            h(payload)
        for h in keyed:
            h(payload)
        self.delivered += count * (len(handlers) + len(keyed))

    def publish_batch(self, event_type: str, frame: pl.DataFrame) -> None:
        if frame.height:
            self.publish(event_type, frame, count=frame.height)

    def close(self) -> None:
        """Tear the bus down: no more events; subscribers are released."""
        self.closed = True
        self._subs.clear()
        self._keyed.clear()


class Tracer:
    """Keeps traced event batches under a retention policy; see the module docs.

    Batches may arrive split by event type; each event carries a ``seq``
    number (time order within a combination), and ``settle()`` - called after
    each group of batches - applies the policy in that order.
    """

    def __init__(self, bus: EventBus, types, retention: str = "trade_complete", window: int = 1000) -> None:
        self.types = tuple(t for t in types if t in EVENT_TYPES)
        self.retention = retention
        self.window = window
        self.kept: list[pl.DataFrame] = []
        self.kept_rows = 0
        self.inbox: list[pl.DataFrame] = []
        self.pending = pl.DataFrame()
        self.seen = 0
        self.dropped = 0
        for t in self.types:
            bus.subscribe(t, self._on_batch)

    def _on_batch(self, frame: pl.DataFrame) -> None:
        self.seen += frame.height
        if self.retention == "minimal":
            self.dropped += frame.height
        else:
            self.inbox.append(frame)

    def settle(self) -> None:
        """Apply the retention policy to what arrived since the last call."""
        if not self.inbox:
            return
        new = pl.concat(self.inbox, how="diagonal_relaxed")
        self.inbox = []
        if self.retention == "sliding_window":
            merged = pl.concat([*self.kept, new], how="diagonal_relaxed") if self.kept else new
            kept = merged.sort("seq").group_by("combo_id", maintain_order=True).tail(self.window)
            self.dropped += merged.height - kept.height
            self.kept, self.kept_rows = [kept], kept.height
            return
        # trade_complete: per combination, everything up to its last POSITION_CLOSE is complete
        frame = pl.concat([self.pending, new], how="diagonal_relaxed") if self.pending.height else new
        frame = frame.sort(["combo_id", "seq"])
        last = (
            frame.filter(pl.col("event") == "POSITION_CLOSE")
            .group_by("combo_id")
            .agg(pl.col("seq").max().alias("_last"))
        )
        joined = frame.join(last, on="combo_id", how="left")
        done = joined.filter(pl.col("_last").is_not_null() & (pl.col("seq") <= pl.col("_last"))).drop("_last")
        self.pending = joined.filter(pl.col("_last").is_null() | (pl.col("seq") > pl.col("_last"))).drop("_last")
        if done.height:
            self.kept.append(done)
            self.kept_rows += done.height

    def take_kept(self, final: bool = False) -> list[pl.DataFrame]:
        """Hand over the events kept so far (a sink writes them out) and forget them here.

        A sliding window needs its events until the end, so it hands over only when ``final``.
        """
        if self.retention == "sliding_window" and not final:
            return []
        out, self.kept, self.kept_rows = self.kept, [], 0
        return out

    def drop_pending(self) -> None:
        """End of the run: events of trades that never closed are dropped (and counted)."""
        self.dropped += self.pending.height
        self.pending = pl.DataFrame()

    def events(self) -> pl.DataFrame:
        """All kept events in (combination, time) order; events of still-open trades count as dropped."""
        self.settle()
        self.drop_pending()
        kept = self.take_kept(final=True)
        return pl.concat(kept, how="diagonal_relaxed").sort(["combo_id", "seq"]) if kept else pl.DataFrame()
