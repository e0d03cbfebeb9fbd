"""The pages a backfill asks for: each reaches back to the record stored last, so records deleted during the scan
can never make it skip one."""

from __future__ import annotations

import random

import pytest

from syncd.backfill.windows import FIRST, MAX_PER_PAGE, Window, covering, next_window, reaches_back, step_back


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        pytest.param(-1, Window(1, 100), id="nothing-stored"),
        pytest.param(99, Window(2, 99), id="after-the-first-page"),
        pytest.param(197, Window(3, 98), id="two-pages-of-98-reach-it"),
        pytest.param(0, Window(1, 100), id="the-first-record"),
        pytest.param(4999, Window(52, 98), id="not-at-a-boundary-of-100"),
    ],
)
def test_covering_starts_at_or_before_the_offset_and_reaches_furthest(offset: int, expected: Window) -> None:
    """The page chosen starts at or before the given list position and ends as far beyond it as a page can."""
    window = covering(offset)
    assert window == expected
    assert window.start <= max(offset, 0) < window.end


@pytest.mark.parametrize("offset", [0, 1, 99, 100, 150, 4321, 99_999, 123_456])
def test_no_page_size_reaches_further(offset: int) -> None:
    """No page of 50..100 records that starts at or before the offset ends later than the one chosen."""
    best = max(size * (offset // size + 1) for size in range(50, MAX_PER_PAGE + 1))
    assert covering(offset).end == best


def test_pages_hold_about_88_new_records_on_average() -> None:
    """Reaching back costs about an eighth of the requests of fixed pages of 100 (a figure, pinned loosely)."""
    offset, requests = -1, 0
    while offset < 100_000:
        offset = next_window(offset).end - 1
        requests += 1
    assert 80 < 100_000 / requests < 95


@pytest.mark.parametrize(
    ("window", "ids", "after", "trusted"),
    [
        pytest.param(FIRST, [5, 6], None, True, id="the-first-page"),
        pytest.param(Window(2, 99), [100, 101], 100, True, id="reaches-back-to-the-last-stored"),
        pytest.param(Window(2, 99), [98, 101], 100, True, id="reaches-before-it"),
        pytest.param(Window(2, 99), [101, 102], 100, False, id="starts-after-it"),
        pytest.param(Window(2, 99), [], 100, False, id="empty-beyond-the-first"),
        pytest.param(FIRST, [], None, True, id="an-empty-list"),
        pytest.param(FIRST, [101], 100, True, id="the-list-start-hides-nothing"),
    ],
)
def test_reaches_back(window: Window, ids: list[int], after: int | None, trusted: bool) -> None:
    """A page is trusted when its first record is the one stored last or earlier, or it starts the list."""
    assert reaches_back(window, ids, after) is trusted


def test_step_back_starts_ever_earlier_down_to_the_first_page() -> None:
    """Each failed check starts the next try twice as far back, never before the first record."""
    window = Window(30, 99)
    starts = [step_back(window, attempt).start for attempt in range(1, 14)]
    assert starts == sorted(starts, reverse=True)
    assert all(start <= window.start - 2**attempt or start == 0 for attempt, start in enumerate(starts, 1))
    assert step_back(window, 20) == FIRST


def scan(records: list[int], rng: random.Random, deletions: float) -> tuple[set[int], set[int], int]:
    """Read `records` (ascending ids) the way a backfill does while records are deleted between requests: the ids
    stored, the ids that were deleted during the scan, and the requests made."""
    live = list(records)
    seen: set[int] = set()
    deleted: set[int] = set()
    offset, after, requests, attempts = -1, None, 0, 0
    window = next_window(offset)
    while True:
        if rng.random() < deletions and live:
            deleted.add(live.pop(rng.randrange(len(live))))
        page = live[window.start : window.end]
        requests += 1
        if not reaches_back(window, page, after):
            attempts += 1
            window = step_back(window, attempts)
            continue
        attempts = 0
        seen.update(i for i in page if after is None or i > after)
        offset = window.start + len(page) - 1
        after = max([*page, after or 0])
        if window.end >= len(live):
            return seen, deleted, requests
        window = next_window(offset)


@pytest.mark.parametrize("seed", range(20))
def test_records_deleted_during_a_scan_never_make_it_skip_a_live_one(seed: int) -> None:
    """Whatever is deleted between two requests, every record still live at the end was read (with fixed pages of
    100 the record after each page boundary that follows a deletion would be skipped)."""
    rng = random.Random(seed)
    records = sorted(rng.sample(range(1, 10**6), 3000))
    seen, deleted, requests = scan(records, rng, deletions=0.3)
    assert set(records) - deleted <= seen
    assert requests < 3000 / 50


def test_fixed_pages_would_skip_the_record_after_a_boundary() -> None:
    """The failure the reaching back prevents: with fixed pages of 100, deleting a record already read moves the
    next page's first record into the page read before, and it is never seen."""
    live = list(range(1, 301))
    seen = set(live[0:100])
    live.remove(50)  # deleted after the first page was read
    seen.update(live[100:200])
    assert 101 not in seen and 101 in live
    assert not reaches_back(Window(2, 100), live[100:200], 100)
