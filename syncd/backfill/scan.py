"""Reading one Core API listing in id order, page after page, never skipping a record (syncd.backfill.windows says
which page to ask for), a few pages ahead of what is stored, with every failure retried or reported.

`Scanner.scan` hands each accepted page's new items, with the cursor to store after them, to the caller, which
stores the page and its cursor in one transaction before the next is taken: a scan that stopped (SIGKILL included)
goes on from the last page it stored and never asks again for one it finished.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import anyio
import anyio.abc

from state import Cursor
from syncd.backfill.windows import FIRST, Window, next_window, reaches_back, step_back
from syncd.errors import CallError, DestinationError, PermanentError, RateLimited
from syncd.logs import get_logger
from syncd.ratelimit import Limiter
from syncd.retry import RetryPolicy
from syncd.sell.core import Answer, CoreApi
from syncd.sell.snapshot import decode_collection, item_id

Sleep = Callable[[float], Awaitable[None]]
AHEAD = 2  # pages asked for beyond the one being stored (requests take longer than the limiter's slots)


class ScanFailed(Exception):
    """A listing cannot be read (a permanent refusal, or the account's credentials): the message says why."""

    def __init__(self, error: CallError) -> None:
        super().__init__(error.message)
        self.error = error


@dataclass(frozen=True, slots=True)
class Page:
    """An accepted page: its new raw items (ids above the last stored, in list order; `None` ids are items whose
    id cannot be read), when Sell served it, the cursor to store with it, and whether the listing ends here."""

    items: list[tuple[int | None, bytes]]
    date: str | None
    cursor: Cursor
    last: bool
    requests: int  # requests made for it (a page that had to step back took more than one)


@dataclass
class _Fetch:
    window: Window
    done: anyio.Event = field(default_factory=anyio.Event)
    answer: Answer | None = None
    error: CallError | None = None
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)


class Scanner:
    """Reads Core API listings through the shared limiter."""

    def __init__(
        self,
        api: CoreApi,
        limiter: Limiter,
        *,
        max_backoff: float,
        rng: random.Random | None = None,
        sleep: Sleep = anyio.sleep,
        ahead: int = AHEAD,
    ) -> None:
        self.api = api
        self.limiter = limiter
        self.policy = RetryPolicy(base=0.5, cap=max_backoff)
        self.rng = rng or random.Random()
        self._sleep = sleep
        self.ahead = ahead
        self._log = get_logger()

    async def get(self, path: str, params: Mapping[str, str], *, what: str) -> Answer:
        """One GET, retried with backoff while it fails transiently; ScanFailed when it cannot succeed."""
        failures = 0
        while True:
            try:
                return await self.api.get(path, params)
            except (PermanentError, DestinationError) as exc:
                raise ScanFailed(exc) from None
            except CallError as exc:
                failures += 1
                await self.back_off(exc, failures, what)

    async def back_off(self, exc: CallError, failures: int, what: str) -> None:
        delay = self.policy.backoff(failures, self.rng)
        if isinstance(exc, RateLimited):
            self.limiter.pause(delay)  # the token's limit is the pollers' too: hold everyone
        self._log.warning(
            "backfill_request_failed",
            part=what,
            error=exc.message,
            http_status=exc.http_status,
            attempt=failures,
            retry_in_s=round(delay, 3),
        )
        await self._sleep(delay)

    async def top_id(self, path: str, params: Mapping[str, str], *, what: str) -> int | None:
        """The highest id the listing holds now (one record, sorted by id descending), for progress."""
        answer = await self.get(path, {**params, "page": "1", "per_page": "1", "sort_by": "id:desc"}, what=what)
        try:
            page = decode_collection(answer.body)
        except CallError:
            return None
        return item_id(bytes(page.items[0])) if page.items else None

    async def scan(
        self,
        path: str,
        params: Mapping[str, str],
        cursor: Cursor,
        store: Callable[[Page], Awaitable[None]],
        *,
        what: str,
        top: Callable[[], int | None] = lambda: None,
    ) -> None:
        """Read the listing's pages after `cursor`, each accepted only once it reaches back to the record stored
        before it, and hand each to `store` (which stores it with its cursor) before taking the next. Pages are
        asked for ahead only once the listing has shown it has more than one, and not beyond `top()` (the highest
        id it held when the scan began, when known): a short listing costs no request it does not need."""
        failure: BaseException | None = None
        async with anyio.create_task_group() as tg:
            try:
                await self._scan(tg, path, params, cursor, store, what, top)
            except Exception as exc:  # raised here, not wrapped in the task group's ExceptionGroup
                failure = exc
            tg.cancel_scope.cancel()
        if failure is not None:
            raise failure

    async def _scan(
        self,
        tg: anyio.abc.TaskGroup,
        path: str,
        params: Mapping[str, str],
        cursor: Cursor,
        store: Callable[[Page], Awaitable[None]],
        what: str,
        top: Callable[[], int | None],
    ) -> None:
        window = next_window(cursor.offset) if cursor.offset >= 0 else FIRST
        after = cursor.record_id
        attempts = 0
        requests = 0
        warm = cursor.offset >= 0  # a listing that had more than one page: worth asking ahead
        planned: deque[_Fetch] = deque()

        def plan(first: Window) -> None:
            for fetch in planned:
                fetch.scope.cancel()
            planned.clear()
            planned.append(self._start(tg, path, params, first))

        plan(window)
        while True:
            highest = top()
            near_end = highest is not None and after is not None and after >= highest
            while warm and not near_end and len(planned) <= self.ahead:
                planned.append(self._start(tg, path, params, next_window(planned[-1].window.end - 1)))
            fetch = planned[0]
            await fetch.done.wait()
            requests += 1
            if fetch.error is not None:
                attempts += 1
                error = fetch.error
                if isinstance(error, PermanentError | DestinationError):
                    raise ScanFailed(error)
                await self.back_off(error, attempts, what)
                plan(fetch.window)
                continue
            assert fetch.answer is not None
            try:
                page = decode_collection(fetch.answer.body)
            except CallError as exc:  # a 200 that is not a list (a proxy's page): retried like a 5xx
                attempts += 1
                await self.back_off(exc, attempts, what)
                plan(fetch.window)
                continue
            raw = [bytes(item) for item in page.items]
            ids = [item_id(item) for item in raw]
            known = [i for i in ids if i is not None]
            if not reaches_back(fetch.window, known, after):
                # Records were deleted before this page: it may start past one never seen. Reach further back.
                attempts += 1
                self._log.info("backfill_page_shifted", part=what, page=fetch.window.page, attempt=attempts)
                plan(step_back(fetch.window, attempts))
                continue
            attempts = 0
            planned.popleft()
            last_offset = fetch.window.start + len(raw) - 1
            new = [(i, item) for i, item in zip(ids, raw, strict=True) if i is None or after is None or i > after]
            seen = max(known, default=after)
            after = seen if after is None or (seen is not None and seen > after) else after
            await store(Page(new, fetch.answer.date, Cursor(last_offset, after), not page.more, requests))
            requests = 0
            if not page.more:
                return
            warm = True
            if not planned or len(raw) < fetch.window.per_page or last_offset != fetch.window.end - 1:
                plan(next_window(last_offset))  # nothing planned, or a short page: what followed starts too late

    def _start(self, tg: anyio.abc.TaskGroup, path: str, params: Mapping[str, str], window: Window) -> _Fetch:
        fetch = _Fetch(window)
        query = {**params, "page": str(window.page), "per_page": str(window.per_page), "sort_by": "id:asc"}
        tg.start_soon(self._fetch, fetch, path, query)
        return fetch

    async def _fetch(self, fetch: _Fetch, path: str, query: Mapping[str, str]) -> None:
        with fetch.scope:
            try:
                fetch.answer = await self.api.get(path, query)
            except CallError as exc:
                fetch.error = exc
        fetch.done.set()
