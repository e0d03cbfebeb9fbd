"""The Sell sandbox's Firehose streams: append-only logs of encoded items, opaque positions, retention, paging.

A position is an absolute offset into a stream (how many items were ever appended before it), encoded as base64 text
as Sell's are. Items older than the retention window are dropped from the front; a position that points before the
oldest retained item has lost events and is answered 410 by the server. Reading a page is a slice: no work in
proportion to the stream's length.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

# Every Firehose stream the contract names (stream -> the `meta.type` of its items); the sandbox serves them all.
SELL_STREAMS: dict[str, str] = {
    "leads": "lead",
    "contacts": "contact",
    "deals": "deal",
    "notes": "note",
    "orders": "order",
    "line_items": "line_item",
    "stages": "stage",
    "custom_fields": "custom_field",
    "sources": "source",
    "products": "product",
    "associated_contacts": "associated_contact",
    "collaborations": "collaboration",
    "users": "user",
    "tasks": "task",
    "appointments": "appointment",
}
STREAM_OF = {kind: stream for stream, kind in SELL_STREAMS.items()}  # record type -> its stream

_POSITION = re.compile(r"^v1:(?P<stream>[a-z_]+):(?P<offset>\d{1,12})$")


class PositionError(ValueError):
    """The position is not one this sandbox issued for this stream."""


def encode_position(stream: str, offset: int) -> str:
    return base64.urlsafe_b64encode(f"v1:{stream}:{offset}".encode()).decode()


def decode_position(stream: str, text: str) -> int:
    """The offset an opaque position stands for; `PositionError` when it is garbage or another stream's."""
    try:
        plain = base64.urlsafe_b64decode(text.encode("ascii")).decode("ascii")
    except (binascii.Error, UnicodeError, ValueError):
        raise PositionError(f"not a position: {text[:40]!r}") from None
    match = _POSITION.match(plain)
    if match is None or match.group("stream") != stream:
        raise PositionError(f"not a position of the {stream} stream: {text[:40]!r}")
    return int(match.group("offset"))


@dataclass(frozen=True, slots=True)
class Slice:
    """What one read returns: encoded items and the offset to continue from."""

    items: list[bytes]
    next_offset: int
    duplicated: bool = False


class StreamLog:
    """One stream: encoded items in append order with their event times (epoch seconds)."""

    __slots__ = ("_items", "_start", "_times", "appended", "dropped", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self._items: list[bytes] = []
        self._times: list[float] = []
        self._start = 0  # index in _items of the oldest retained item (dropped ones are compacted away lazily)
        self.dropped = 0  # absolute offset of the oldest retained item
        self.appended = 0

    @property
    def tail(self) -> int:
        """Absolute offset of the oldest retained item."""
        return self.dropped

    @property
    def head(self) -> int:
        """Absolute offset just past the newest item."""
        return self.appended

    @property
    def retained(self) -> int:
        return self.head - self.tail

    def append(self, raw: bytes, event_time: float) -> None:
        self._items.append(raw)
        self._times.append(event_time)
        self.appended += 1

    def expire_before(self, cutoff: float) -> int:
        """Drop the leading items whose event time is before `cutoff`; how many were dropped."""
        index = self._start
        end = len(self._items)
        while index < end and self._times[index] < cutoff:
            index += 1
        return self._drop_to(index)

    def keep_newest(self, keep: int) -> int:
        """Drop all but the newest `keep` items; how many were dropped."""
        return self._drop_to(max(self._start, len(self._items) - max(keep, 0)))

    def _drop_to(self, index: int) -> int:
        count = index - self._start
        if count <= 0:
            return 0
        self._start = index
        self.dropped += count
        if self._start > 4096 and self._start * 2 > len(self._items):
            del self._items[: self._start]
            del self._times[: self._start]
            self._start = 0
        return count

    def read(self, start: int, count: int, *, duplicate: bool = False, limit: int = 100) -> Slice:
        """Up to `count` items from absolute offset `start` (tail <= start <= head).

        With `duplicate`, the item just before `start` (the previous page's last) comes again first, within `limit`.
        """
        index = self._start + (start - self.dropped)
        count = max(0, min(count, self.head - start))
        if duplicate and start > self.tail and count:
            fresh = count if count < limit else count - 1
            if fresh:
                return Slice(self._items[index - 1 : index + fresh], start + fresh, duplicated=True)
        return Slice(self._items[index : index + count], start + count)

    def all(self) -> list[bytes]:
        """Every retained item, oldest first."""
        return self._items[self._start :]
