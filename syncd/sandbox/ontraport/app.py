"""The Ontraport API simulator: HTTP over loopback, answering as the public Ontraport REST API does (as its official
SDK, the SDK's tests and production connectors show it).

`OntraportSandbox(app_id=..., api_key=...).app` is a Starlette app (fault injection included) that answers under
`/1/` like api.ontraport.com: `Api-Key`/`Api-Appid` authentication, form (PHP-style nesting) or JSON bodies, the
`{"code": 0, "data": ..., "account_id": 50}` envelope with string values, short plain-text errors (or the JSON
envelope the reference claims, as a behaviour switch), and a rolling per-account rate limit whose `X-Rate-Limit-*`
headers ride on every answer. The account itself lives in `OntraportModel`; every invoice e-mail any account sends
is also counted process-wide and, when `$SYNCD_SANDBOX_INVOICE_LOG` names a file, appended to it (a test suite's
guard that nothing e-mails an invoice).

Control routes under `/_sandbox/` (no authentication): the shared fault routes; `GET state`, `GET contacts` (each
as the API answers it, plus `"tags": [names]` when it carries tags), `GET notes`, `GET products`, `GET purchases`
(purchases and transactions), `GET invoices` (`{"emailed": n, "invoices": [...]}`: every invoice e-mail sent);
`POST credentials` `{"api_key": ..., "app_id": ..., "forbidden": false}`; `POST rules` `{"reject_emails": [...]}`;
`GET behaviour` (each switch's value and what it does) and `POST behaviour` `{"rate": "180/min" | null, ...}` with
the switches of `behaviour.Behaviour`; `POST fields` `{"fields": [{"field": "f1600", "alias": ..., "type": ...}]}`.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from syncd.sandbox.faults import FaultMiddleware, FaultPlan, fault_routes
from syncd.sandbox.ontraport.api import Handler, Reply, api_routes
from syncd.sandbox.ontraport.behaviour import DESCRIPTIONS, Behaviour
from syncd.sandbox.ontraport.behaviour import KEYS as BEHAVIOUR_KEYS
from syncd.sandbox.ontraport.errors import ApiError, NotFound
from syncd.sandbox.ontraport.fields import DEFAULT_CUSTOM_FIELDS, FieldDef, custom_field_from_json
from syncd.sandbox.ontraport.forms import BodyError, request_params
from syncd.sandbox.ontraport.model import CONTACT, NOTE, PRODUCT, PURCHASE, TRANSACTION, OntraportModel
from syncd.sandbox.ontraport.tags import TagBook
from syncd.sandbox.ratelimit import RollingWindow, Verdict
from syncd.units import Rate, parse_rate

log = logging.getLogger(__name__)
DEFAULT_RATE = Rate(180, 60)  # Ontraport's published limit: 180 requests per minute per account


def _per(rate: Rate) -> str:
    named = {1.0: "second", 60.0: "minute", 3600.0: "hour"}
    return named.get(rate.period, f"{rate.period:g} seconds")


class OntraportSandbox:
    """One simulated Ontraport account served as an ASGI app."""

    def __init__(
        self,
        *,
        app_id: str,
        api_key: str,
        rate: Rate | None = DEFAULT_RATE,
        clock: Callable[[], float] = time.time,
        account_id: int = 50,
        custom_fields: Iterable[FieldDef] = DEFAULT_CUSTOM_FIELDS,
    ) -> None:
        self.account_id = account_id
        self.model = OntraportModel(clock=clock, custom_fields=custom_fields)
        self.plan = FaultPlan()
        self._clock = clock
        self._lock = threading.Lock()
        self._app_id = app_id
        self._api_key: str | None = api_key
        self._forbidden = False
        self._rate = rate
        self._settings = Behaviour()
        self._limiter = RollingWindow(rate, clock)
        self._requests: dict[str, Counter[str]] = {}
        self._rate_limited = 0
        self.tags = TagBook()
        self._routes: dict[tuple[str, str], Handler] = api_routes(self.model, lambda: self.behaviour, self.tags)
        self.app = Starlette(
            routes=[
                *fault_routes(self.plan),
                *self._control_routes(),
                Route("/1/{rest:path}", self._api, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
            ],
            middleware=[Middleware(FaultMiddleware, plan=self.plan)],
        )

    # ------------------------------------------------------------------------------------------------ knobs

    @property
    def note_shape(self) -> str:
        return self.behaviour.note_shape

    @property
    def behaviour(self) -> Behaviour:
        with self._lock:
            return self._settings

    def configure(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Change `rate` and the switches of `Behaviour`; a bad value raises ValueError and changes nothing."""
        unknown = set(changes) - {"rate"} - BEHAVIOUR_KEYS
        if unknown:
            raise ValueError(f"unknown behaviour keys: {', '.join(sorted(unknown))}")
        rate = changes.get("rate")
        if rate is not None and not isinstance(rate, str | Rate):
            raise ValueError('rate must be a string such as "180/min", or null')
        new_rate = parse_rate(rate) if isinstance(rate, str) else rate
        with self._lock:
            settings = self._settings.changed({k: v for k, v in changes.items() if k != "rate"})
            if "rate" in changes:
                self._rate = new_rate
                self._limiter = RollingWindow(new_rate, self._clock)
            self._settings = settings
            self.model.behaviour = settings
            return self._behaviour()

    def _behaviour(self) -> dict[str, Any]:
        return {"rate": str(self._rate) if self._rate is not None else None, **self._settings.as_json()}

    def set_credentials(self, *, api_key: str | None, app_id: str | None = None, forbidden: bool = False) -> None:
        """Rotate (a new key), revoke (None or "") or forbid (403) the account's API access."""
        with self._lock:
            self._api_key = api_key or None
            if app_id:
                self._app_id = app_id
            self._forbidden = forbidden

    def reject_emails(self, emails: Iterable[str]) -> list[str]:
        """Writes carrying these e-mails answer 422 until the list is replaced (a poison record)."""
        return self.model.reject_emails(emails)

    def add_fields(self, fields: Iterable[FieldDef]) -> None:
        self.model.add_fields(fields)

    # ------------------------------------------------------------------------------------------------ state

    def state(self) -> dict[str, Any]:
        """What `GET /_sandbox/state` answers (safe to call from any thread)."""
        with self._lock:
            requests = {endpoint: dict(sorted(counts.items())) for endpoint, counts in sorted(self._requests.items())}
            rate_limited = self._rate_limited
            behaviour = self._behaviour()
        return {**self.model.tally(), "requests": requests, "rate_limited": rate_limited, "behaviour": behaviour}

    def _with_tags(self, contact: dict[str, Any]) -> dict[str, Any]:
        """A contact as the API answers it, plus `tags` (names) when it carries any."""
        names = self.tags.names_of(int(contact["id"]))
        return {**contact, "tags": names} if names else contact

    # ------------------------------------------------------------------------------------------------ the API

    def _rate_headers(self, verdict: Verdict) -> dict[str, str]:
        if self._rate is None:
            return {}
        return {
            "X-Rate-Limit-Limit": str(verdict.limit),
            "X-Rate-Limit-Remaining": str(verdict.remaining),
            "X-Rate-Limit-Reset": str(verdict.reset),
        }

    def _error(self, status: int, message: str, headers: Mapping[str, str]) -> Response:
        as_json = self.behaviour.json_errors
        if as_json:
            body = {"code": 1, "message": message, "account_id": self.account_id}
            return JSONResponse(body, status, headers=dict(headers))
        return PlainTextResponse(message, status, headers=dict(headers))

    def _authorised(self, request: Request) -> int:
        """0 when the call may proceed, else the status to refuse it with."""
        key = request.headers.get("api-key", "")
        app_id = request.headers.get("api-appid", "")
        with self._lock:
            expected_key, expected_app, forbidden = self._api_key, self._app_id, self._forbidden
        if expected_key is None or not (
            hmac.compare_digest(key.encode(), expected_key.encode())
            and hmac.compare_digest(app_id.encode(), expected_app.encode())
        ):
            return 401
        return 403 if forbidden else 0

    async def _api(self, request: Request) -> Response:
        endpoint = f"{request.method} {request.url.path}"
        response = await self._answer(request)
        with self._lock:
            self._requests.setdefault(endpoint, Counter())[str(response.status_code)] += 1
            if response.status_code == 429:
                self._rate_limited += 1
        return response

    async def _answer(self, request: Request) -> Response:
        with self._lock:
            verdict = self._limiter.hit(str(self.account_id))
            rate = self._rate
            headers = self._rate_headers(verdict)
        if not verdict.allowed and rate is not None:
            text = (
                "Too Many Requests - You have exceeded your maximum rate limit of "
                f"{int(rate.count)} requests per {_per(rate)}."
            )
            return self._error(429, text, headers)
        refused = self._authorised(request)
        if refused:
            return self._error(refused, "Unauthorized" if refused == 401 else "Forbidden", headers)
        handler = self._routes.get((request.method if request.method != "HEAD" else "GET", _route_key(request)))
        if handler is None:
            return self._error(404, "Unknown endpoint", headers)
        try:
            body = await request.body() if request.method in ("POST", "PUT", "DELETE", "PATCH") else b""
            params = request_params(request.url.query, request.headers.get("content-type", ""), body)
            reply = handler(params)
        except NotFound as exc:
            return self._error(self.behaviour.not_found_status, exc.message, headers)
        except ApiError as exc:
            return self._error(exc.status, exc.message, headers)
        except BodyError:
            return self._error(400, "Invalid request body", headers)
        except Exception:
            log.exception("ontraport sandbox: unexpected error answering %s %s", request.method, request.url.path)
            return self._error(500, "Internal Server Error", headers)
        return JSONResponse(self._envelope(reply), headers=headers)

    def _envelope(self, reply: Reply) -> dict[str, Any]:
        body: dict[str, Any] = {"code": 0}
        if reply.has_data:
            body["data"] = reply.data
        body["account_id"] = self.account_id
        if reply.listing:
            body["misc"] = []
        return body

    # ------------------------------------------------------------------------------------------------ control

    def _control_routes(self) -> list[Route]:
        def listing(name: str, *object_ids: int) -> Callable[[Request], Any]:
            async def handler(request: Request) -> Response:
                keys = {PURCHASE: "purchases", TRANSACTION: "transactions"}
                if object_ids == (CONTACT,):
                    return JSONResponse({name: [self._with_tags(c) for c in self.model.all(CONTACT)]})
                if len(object_ids) == 1:
                    return JSONResponse({name: self.model.all(object_ids[0])})
                return JSONResponse({keys[i]: self.model.all(i) for i in object_ids})

            return handler

        async def state(request: Request) -> Response:
            return JSONResponse(self.state())

        async def invoices(request: Request) -> Response:
            sent = self.model.emailed_invoices()
            return JSONResponse({"emailed": len(sent), "invoices": sent})

        async def credentials(request: Request) -> Response:
            data = await _json_object(request)
            with self._lock:
                key = data.get("api_key", self._api_key)
            app_id, forbidden = data.get("app_id"), data.get("forbidden", False)
            if not isinstance(key, str | None) or not isinstance(app_id, str | None) or not isinstance(forbidden, bool):
                raise ValueError("api_key and app_id must be strings (api_key null to revoke), forbidden a boolean")
            self.set_credentials(api_key=key, app_id=app_id, forbidden=forbidden)
            return JSONResponse({"revoked": not key, "forbidden": forbidden})

        async def rules(request: Request) -> Response:
            emails = (await _json_object(request)).get("reject_emails", [])
            if not isinstance(emails, list) or not all(isinstance(e, str) for e in emails):
                raise ValueError("reject_emails must be a list of strings")
            return JSONResponse({"reject_emails": self.reject_emails(emails)})

        async def behaviour(request: Request) -> Response:
            return JSONResponse(self.configure(await _json_object(request)))

        async def switches(request: Request) -> Response:
            with self._lock:
                current = self._behaviour()
            return JSONResponse({"behaviour": current, "switches": DESCRIPTIONS})

        async def fields(request: Request) -> Response:
            data = await _json_object(request)
            items = data.get("fields", [data])
            if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
                raise ValueError('expected {"fields": [{"field": "f1600", ...}]}')
            added = [custom_field_from_json(item) for item in items]
            self.add_fields(added)
            return JSONResponse({"fields": [f.key for f in added]})

        return [
            Route("/_sandbox/state", state, methods=["GET"]),
            Route("/_sandbox/contacts", listing("contacts", CONTACT), methods=["GET"]),
            Route("/_sandbox/notes", listing("notes", NOTE), methods=["GET"]),
            Route("/_sandbox/products", listing("products", PRODUCT), methods=["GET"]),
            Route("/_sandbox/purchases", listing("purchases", PURCHASE, TRANSACTION), methods=["GET"]),
            Route("/_sandbox/invoices", invoices, methods=["GET"]),
            Route("/_sandbox/credentials", _refusing_bad_input(credentials), methods=["POST"]),
            Route("/_sandbox/rules", _refusing_bad_input(rules), methods=["POST"]),
            Route("/_sandbox/behaviour", _refusing_bad_input(behaviour), methods=["POST"]),
            Route("/_sandbox/behaviour", switches, methods=["GET"]),
            Route("/_sandbox/fields", _refusing_bad_input(fields), methods=["POST"]),
        ]


def _route_key(request: Request) -> str:
    return request.url.path.removeprefix("/1/").strip("/").lower()


async def _json_object(request: Request) -> dict[str, Any]:
    data = await request.json()  # ValueError when not JSON
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    return data


def _refusing_bad_input(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """A control route that answers 400 with the reason when its input is unusable."""

    async def guarded(request: Request) -> Response:
        try:
            return await handler(request)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, 400)

    return guarded
