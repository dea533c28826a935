"""Event bus and tracer.

Each phase (and window) gets a fresh ``EventBus``; execution talks only
through it.  The fast engine publishes *batches* (``EventBatch``: numpy columns of many
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

import numpy as np

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

    def publish_batch(self, event_type: str, batch) -> None:
        """Deliver a batch (an EventBatch, or a DataFrame) of events of one type, counted by its height."""
        if batch.height:
            self.publish(event_type, batch, count=batch.height)

    def close(self) -> None:
        """Tear the bus down: no more events; subscribers are released."""
        self.closed = True
        self._subs.clear()
        self._keyed.clear()


class EventBatch:
    """Kernel events as numpy columns: the combination, a sequence number and the columns (EV_COLUMNS x events).

    Within a batch the events of one combination are in time order; ``seq``
    orders any two events of one combination.
    """

    __slots__ = ("owner", "seq", "cols")

    def __init__(self, owner: np.ndarray, seq: np.ndarray, cols: np.ndarray) -> None:
        self.owner, self.seq, self.cols = owner, seq, cols

    @property
    def kinds(self) -> np.ndarray:
        return self.cols[0]

    def __len__(self) -> int:
        return int(self.owner.shape[0])

    @property
    def height(self) -> int:  # the bus counts batches by their height
        return len(self)

    def take(self, index) -> EventBatch:
        """The events at ``index`` (a boolean mask or positions); the columns stay C-contiguous rows."""
        index = np.asarray(index)
        if index.dtype == np.bool_:
            return EventBatch(self.owner[index], self.seq[index], np.compress(index, self.cols, axis=1))
        # (cols[:, index] would come back column-major: every later row read would copy it)
        return EventBatch(self.owner[index], self.seq[index], np.take(self.cols, index, axis=1))

    @staticmethod
    def concat(batches: list[EventBatch]) -> EventBatch:
        if len(batches) == 1:
            return batches[0]
        return EventBatch(
            np.concatenate([b.owner for b in batches]),
            np.concatenate([b.seq for b in batches]),
            np.concatenate([b.cols for b in batches], axis=1),
        )

    def ordered(self) -> EventBatch:
        """By combination, then time: a stable sort on the combination keeps each one's events in time order.

        (Every batch is grouped by combination in time order, and batches are concatenated in time order.)
        """
        order = self.order()
        return self if order is None else self.take(order)

    def order(self) -> np.ndarray | None:
        """The positions that put the events in (combination, time) order; None when they already are."""
        if self.owner.size < 2 or (np.diff(self.owner) >= 0).all():
            return None
        return np.argsort(self.owner, kind="stable")

    def of_kind(self, code: float) -> EventView:
        return EventView(self, code)


class EventView:
    """The events of one type in a batch, without copying them: what the bus delivers per event type."""

    __slots__ = ("batch", "code", "height")

    def __init__(self, batch: EventBatch, code: float) -> None:
        self.batch, self.code = batch, code
        self.height = int(np.count_nonzero(batch.kinds == code))


def assemble(views: list) -> EventBatch | None:
    """The events of these views as one batch in time order: a batch seen for all its types is taken whole."""
    parts = assemble_parts(views)
    return EventBatch.concat(parts) if parts else None


def assemble_parts(views: list) -> list[EventBatch]:
    """The events of these views, one batch per batch they came from, in arrival order (no copy of whole ones)."""
    by_batch: dict[int, tuple] = {}
    for v in views:
        if not v.height:
            continue
        b, codes = by_batch.get(id(v.batch), (v.batch, set()))
        codes.add(v.code)
        by_batch[id(v.batch)] = (b, codes)
    parts = []
    for b, codes in by_batch.values():
        kinds = b.kinds
        whole = all(code in codes for code in np.unique(kinds))
        parts.append(b if whole else b.take(np.isin(kinds, list(codes))))
    return parts


def _group_starts(owner: np.ndarray) -> np.ndarray:
    """Positions where a new combination starts, in an owner-sorted array."""
    return np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]]) if owner.size else np.zeros(0, dtype=np.int64)


class Tracer:
    """Keeps traced event batches under a retention policy; see the module docs.

    Batches (``EventBatch``, numpy) may arrive split by event type; ``settle()``
    - called after each group of batches - applies the policy in (combination,
    sequence) order.
    """

    def __init__(self, bus: EventBus, types, retention: str = "trade_complete", window: int = 1000) -> None:
        self.types = tuple(t for t in types if t in EVENT_TYPES)
        self.retention = retention
        self.window = window
        self.kept: list[EventBatch] = []
        self.kept_rows = 0
        self.inbox: list[EventBatch] = []
        self.pending: EventBatch | None = None
        self.seen = 0
        self.dropped = 0
        for t in self.types:
            bus.subscribe(t, self._on_batch)

    def _on_batch(self, view: EventView) -> None:
        self.seen += view.height
        if self.retention == "minimal":
            self.dropped += view.height
        else:
            self.inbox.append(view)

    def settle(self) -> None:
        """Apply the retention policy to what arrived since the last call."""
        new = assemble(self.inbox)
        self.inbox = []
        if new is None:
            return
        if self.retention == "sliding_window":
            merged = EventBatch.concat([*self.kept, new]).ordered()
            starts = _group_starts(merged.owner)
            ends = np.r_[starts[1:], len(merged)]
            from_end = np.repeat(ends, np.diff(np.r_[starts, len(merged)])) - np.arange(len(merged))
            keep = from_end <= self.window
            self.dropped += int((~keep).sum())
            kept = merged.take(keep)
            self.kept, self.kept_rows = [kept], len(kept)
            return
        # trade_complete: per combination, everything up to its last POSITION_CLOSE is complete
        frame = EventBatch.concat([self.pending, new]) if self.pending is not None and len(self.pending) else new
        if not len(frame):
            return
        # the decision is made on the (combination, time) order, but the columns are gathered once, straight
        # into the kept and pending parts (sorting them first would copy every event twice)
        order = frame.order()
        owner = frame.owner if order is None else frame.owner[order]
        kinds = frame.kinds if order is None else frame.kinds[order]
        starts = _group_starts(owner)
        pos = np.arange(len(frame))
        is_close = kinds == 3.0  # POSITION_CLOSE
        last_close = np.maximum.reduceat(np.where(is_close, pos, -1), starts)
        sizes = np.diff(np.r_[starts, len(frame)])
        done = pos <= np.repeat(last_close, sizes)
        self.pending = frame.take(~done if order is None else order[~done])
        if done.any():
            kept = frame.take(done if order is None else order[done])
            self.kept.append(kept)
            self.kept_rows += len(kept)

    def take_kept(self, final: bool = False) -> list[EventBatch]:
        """Hand over the events kept so far (a sink writes them out) and forget them here.

        A sliding window needs its events until the end, so it hands over only when ``final``.
        """
        if self.retention == "sliding_window" and not final:
            return []
        out, self.kept, self.kept_rows = self.kept, [], 0
        return out

    def drop_pending(self) -> None:
        """End of the run: events of trades that never closed are dropped (and counted)."""
        if self.pending is not None:
            self.dropped += len(self.pending)
        self.pending = None
