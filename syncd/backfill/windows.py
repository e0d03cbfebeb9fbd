"""Which page to ask for next when reading a Core API list in id order, so that no record is ever skipped. Pure.

Sell's v2 lists page by number (`page=N&per_page=M`: the records at list positions (N-1)*M ... N*M-1, counted when
the request is served). Reading `sort_by=id:asc` keeps records created during the scan at the end (new ids are
higher), but a record deleted from a page already read moves every later record one place back: read with fixed
pages, the record at the next page's first position slips into the page already read and is never seen. So every
page after the first must reach back to the last record already stored: its window starts at or before that
record's position, which takes a page size that puts a page boundary there (`next_window`, about 88 records a
request on average instead of 100). The page is accepted only when its first record is the one stored last or an
earlier one (`reaches_back`): then every record between the two was in it. If not, records were deleted before it and it
may have skipped some: the scan steps back (`step_back`) and asks again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

MAX_PER_PAGE = 100  # Sell's v2 lists serve at most 100 records a page
MIN_PER_PAGE = 50  # smaller pages cost more requests than they save


@dataclass(frozen=True, slots=True)
class Window:
    """One page request: `page` (from 1) of `per_page` records, the list positions [start, end)."""

    page: int
    per_page: int

    @property
    def start(self) -> int:
        return (self.page - 1) * self.per_page

    @property
    def end(self) -> int:
        return self.page * self.per_page


FIRST = Window(1, MAX_PER_PAGE)


def covering(offset: int, *, low: int = MIN_PER_PAGE, high: int = MAX_PER_PAGE) -> Window:
    """The page that starts at or before list position `offset` and reaches furthest beyond it (the smallest page
    size among equals); the first page when `offset` is negative."""
    if offset < 0:
        return Window(1, high)
    best = Window(offset // high + 1, high)
    for size in range(high - 1, low - 1, -1):
        candidate = Window(offset // size + 1, size)
        if candidate.end > best.end:
            best = candidate
    return best


def next_window(last_offset: int) -> Window:
    """The page to read after storing the record at list position `last_offset` (-1: nothing stored yet)."""
    return covering(last_offset)


def step_back(window: Window, attempt: int) -> Window:
    """After `window` failed its check `attempt` times (1, 2, ...): a page starting 2**attempt positions earlier."""
    return covering(window.start - 2**attempt)


def reaches_back(window: Window, ids: Sequence[int], after: int | None) -> bool:
    """Whether a page read with `window` (its records' ids, in list order) can be trusted after the id stored last
    (`after`, None before anything was stored): nothing can lie between `after` and its first record when that
    record is `after` or an earlier one, or when the page starts the list. An empty page beyond the first cannot
    be trusted (the list shrank under it)."""
    if not ids:
        return window.start == 0
    return after is None or window.start == 0 or ids[0] <= after
