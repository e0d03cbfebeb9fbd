"""The SALESmanago simulator: an ASGI app that answers `POST /api/{method}` as SALESmanago's JSON API does.

Per call: the rate limit (when set; answered as 429, 503 or a `success: false` limit message, per the `throttle`
knob), the method (404 when unknown), the content type (415 unless JSON), the JSON body (400 when unparseable, not
an object, or carrying what a strict JSON parser refuses: NaN/Infinity, or a lone UTF-16 surrogate in a string),
authentication (HTTP 200 `"Not authenticated…"`), then the method itself (api.py).

Methods: `contact/upsert`, `contact/batchupsert`, `contact/delete`, `contact/basic`, `contact/hasContact`,
`contact/list` and `contact/listById` (contacts keyed `id`, with their `contactExtEvents`), and the external events:
`[v2/]contact/addContactExtEvent`, `contact/batchAddContactExtEvent`, `[v2/]contact/updateContactExtEvent`,
`[v2/]contact/deleteContactExtEvent`.

Control routes under `/_sandbox/` (no auth):
- the shared fault routes (faults.py);
- `GET /_sandbox/state`: counts (see `SalesmanagoSandbox.state`);
- `GET /_sandbox/contacts`: every contact the account holds;
- `GET /_sandbox/events[?email=…|contactId=…]`: every external event, or one contact's (in the order added; each
  with its `eventId`, `contactId`, the contact's current `email`, `owner` and the fields as stored, dates in ms);
- `POST /_sandbox/credentials` `{"api_secret": "..." | null, "owners": [...]}`: rotate or revoke (null) the secret,
  replace the account's users;
- `GET|POST /_sandbox/rules` `{"reject_emails": [...]}`: e-mails refused as invalid until the list drops them;
- `GET|POST /_sandbox/behaviour` `{knob: reading, …, "rate": "10/s" | null}`: the readings of behaviour.py.

Thread-safe: the account and the counters change only under one lock, which `state()` takes too.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from syncd.sandbox.faults import FaultMiddleware, FaultPlan, fault_routes
from syncd.sandbox.ratelimit import RollingWindow, Verdict
from syncd.sandbox.salesmanago.api import Account
from syncd.sandbox.salesmanago.auth import auth_failure
from syncd.sandbox.salesmanago.behaviour import Behaviour
from syncd.sandbox.salesmanago.fields import Refused
from syncd.units import Rate

LIMIT_MESSAGE = "API calls limit exceeded, try again later"
_ACCOUNT = "account"  # the rate limit's key: the simulator holds one account
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # json.loads pairs valid surrogates: any left is lone

Answer = tuple[int, dict[str, Any], dict[str, str]]  # HTTP status, body, headers


def failure(*messages: str) -> dict[str, Any]:
    return {"success": False, "message": list(messages)}


class SalesmanagoSandbox:
    """One simulated SALESmanago account served as an ASGI app (`app`, wrapped by the fault middleware)."""

    def __init__(
        self,
        *,
        client_id: str,
        api_secret: str,
        owners: Iterable[str],
        rate: Rate | None = None,
        clock: Callable[[], float] = time.time,
        max_clock_skew: float = 24 * 3600,
    ) -> None:
        self.client_id = client_id
        self._api_secret: str | None = api_secret
        self._clock = clock
        self._max_skew = max_clock_skew
        self._lock = threading.Lock()
        self._account = Account(frozenset(owner.lower() for owner in owners), clock)
        self._account.behaviour = Behaviour(rate=rate)
        self._window = RollingWindow(rate, clock)
        self._by_method: Counter[str] = Counter()
        self._by_status: Counter[str] = Counter()
        self._throttled = 0
        self._failed = 0
        self.faults = FaultPlan()
        routes = [
            Route("/api/{method:path}", self._api, methods=["POST"]),
            Route("/_sandbox/state", self._state, methods=["GET"]),
            Route("/_sandbox/contacts", self._contacts, methods=["GET"]),
            Route("/_sandbox/events", self._events, methods=["GET"]),
            Route("/_sandbox/credentials", self._credentials, methods=["POST"]),
            Route("/_sandbox/rules", self._rules, methods=["GET", "POST"]),
            Route("/_sandbox/behaviour", self._behaviour, methods=["GET", "POST"]),
            *fault_routes(self.faults),
        ]
        self.app = FaultMiddleware(Starlette(routes=routes), self.faults)

    def state(self) -> dict[str, Any]:
        """Counts for tests: live and soft-deleted contacts, external events held and deleted, requests by API
        method and by HTTP status, throttled calls, `success: false` replies, and how many upserts each e-mail
        received (duplicates show)."""
        with self._lock:
            live, deleted = self._account.contacts.counts()
            return {
                "contacts": live,
                "deleted": deleted,
                "events": len(self._account.events),
                "events_deleted": self._account.events.deleted,
                "requests_by_method": dict(self._by_method),
                "requests_by_status": dict(self._by_status),
                "throttled": self._throttled,
                "failed": self._failed,
                "writes_per_email": dict(self._account.writes),
            }

    async def _api(self, request: Request) -> Response:
        raw = await request.body()
        with self._lock:
            status, body, headers = self._answer(
                request.path_params["method"], request.headers.get("content-type", ""), raw
            )
            self._by_status[str(status)] += 1
            self._failed += not body["success"]
        return JSONResponse(body, status, headers=headers)

    def _answer(self, method: str, content_type: str, raw: bytes) -> Answer:
        self._by_method[method] += 1
        verdict = self._window.hit(_ACCOUNT)
        if not verdict.allowed:
            self._throttled += 1
            return self._throttle(verdict)
        if not self._account.knows(method):
            return 404, failure(f"Unknown API method: {method}"), {}
        if content_type.split(";", maxsplit=1)[0].strip().lower() != "application/json":
            return 415, failure("Content-Type must be application/json"), {}
        try:
            body = json.loads(raw, parse_constant=_no_constant)
        except ValueError:
            return 400, failure("The request body is not valid JSON"), {}
        if _has_lone_surrogate(body):
            return 400, failure("The request body is not valid JSON: a string holds a lone surrogate"), {}
        if not isinstance(body, dict):
            return 400, failure("The request body must be a JSON object"), {}
        problem = auth_failure(
            body,
            client_id=self.client_id,
            api_secret=self._api_secret,
            owners=self._account.owners,
            now=self._clock(),
            max_skew=self._max_skew,
        )
        if problem is not None:
            return 200, failure(problem), {}
        try:
            return 200, self._account.call(method, body, body["owner"].lower()), {}
        except Refused as exc:
            return 200, failure(*exc.messages), {}

    def _throttle(self, verdict: Verdict) -> Answer:
        throttle = self._account.behaviour.throttle
        if throttle == "message":
            return 200, failure(LIMIT_MESSAGE), {}
        return int(throttle), failure(LIMIT_MESSAGE), {"Retry-After": str(verdict.reset)}

    async def _state(self, request: Request) -> Response:
        return JSONResponse(self.state())

    async def _contacts(self, request: Request) -> Response:
        with self._lock:
            return JSONResponse({"contacts": [contact.dump() for contact in self._account.contacts.contacts()]})

    async def _events(self, request: Request) -> Response:
        query = request.query_params
        unknown = set(query) - {"email", "contactId"}
        if unknown or len(query) > 1:
            return _control_error("filter by at most one of email or contactId")
        with self._lock:
            found = self._account.event_dumps(email=query.get("email"), contact_id=query.get("contactId"))
            return JSONResponse({"events": found})

    async def _credentials(self, request: Request) -> Response:
        data = await _control_body(request, {"api_secret", "owners"})
        if isinstance(data, Response):
            return data
        secret, owners = data.get("api_secret"), data.get("owners")
        if secret is not None and not isinstance(secret, str):
            return _control_error("api_secret must be a string or null")
        if owners is not None and not _strings(owners):
            return _control_error("owners must be a list of e-mails")
        with self._lock:
            if "api_secret" in data:
                self._api_secret = secret
            if owners is not None:
                self._account.owners = frozenset(owner.lower() for owner in owners)
            owners_now = sorted(self._account.owners)
            return JSONResponse({"api_secret_set": self._api_secret is not None, "owners": owners_now})

    async def _rules(self, request: Request) -> Response:
        if request.method == "POST":
            data = await _control_body(request, {"reject_emails"})
            if isinstance(data, Response):
                return data
            emails = data.get("reject_emails", [])
            if not _strings(emails):
                return _control_error("reject_emails must be a list of e-mails")
            with self._lock:
                self._account.reject = frozenset(email.lower() for email in emails)
        with self._lock:
            return JSONResponse({"reject_emails": sorted(self._account.reject)})

    async def _behaviour(self, request: Request) -> Response:
        if request.method == "POST":
            data = await _control_body(request, None)
            if isinstance(data, Response):
                return data
            with self._lock:
                try:
                    behaviour = self._account.behaviour.updated(data)
                except ValueError as exc:
                    return _control_error(str(exc))
                if behaviour.rate != self._account.behaviour.rate:
                    self._window = RollingWindow(behaviour.rate, self._clock)
                self._account.behaviour = behaviour
        with self._lock:
            return JSONResponse(self._account.behaviour.to_json())


async def _control_body(request: Request, allowed: set[str] | None) -> dict[str, Any] | Response:
    """The JSON object a control route received, or the 400 answer to give instead."""
    try:
        data = json.loads(await request.body())
    except ValueError:
        return _control_error("the body is not valid JSON")
    if not isinstance(data, dict):
        return _control_error("the body must be a JSON object")
    unknown = set(data) - allowed if allowed is not None else set()
    if unknown:
        return _control_error(f"unknown keys: {', '.join(sorted(unknown))}")
    return data


def _control_error(message: str) -> Response:
    return JSONResponse({"error": message}, 400)


def _no_constant(name: str) -> None:
    """NaN, Infinity and -Infinity are not JSON: a strict parser refuses them."""
    raise ValueError(f"{name} is not a JSON value")


def _has_lone_surrogate(value: object) -> bool:
    if isinstance(value, str):
        return _LONE_SURROGATE.search(value) is not None
    if isinstance(value, dict):
        return any(_has_lone_surrogate(key) or _has_lone_surrogate(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(item) for item in value)
    return False


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)
