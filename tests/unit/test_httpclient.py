"""Classifying HTTP answers: redirects and pages that are not the API's own are transient and destination-wide;
errors say whether the call may have taken effect."""

from __future__ import annotations

import gc
import ssl
import weakref

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from syncd.errors import DestinationError, PermanentError, RateLimited, TransientError
from syncd.httpclient import bounded_request, foreign, is_html, make_client, status_error, tls_context, transport_error
from syncd.metrics import REGISTRY
from syncd.ratelimit import TICKET, Ticket
from syncd.sandbox.faults import error_page
from syncd.sandbox.server import ServerThread
from tests.support import free_port


def _answer(status: int, body: str = "", content_type: str = "text/plain", **headers: str) -> httpx.Response:
    return httpx.Response(status, content=body.encode(), headers={"content-type": content_type, **headers})


@pytest.mark.parametrize(
    ("response", "own", "expected"),
    [
        (_answer(301, error_page(301), "text/html", location="https://x.example/"), True, "a redirect to https://x"),
        (_answer(302, ""), True, "a redirect to nowhere (no Location)"),
        (_answer(404, error_page(404), "text/html"), True, "with an HTML page (404 Not Found)"),
        (_answer(400, "<!DOCTYPE html><p>blocked</p>", "application/octet-stream"), True, "with an HTML page"),
        (_answer(400, "gateway says no"), False, "with an answer that is not its API's (gateway says no)"),
        (_answer(404, "Object not found"), True, None),
        (_answer(422, '{"errors": []}', "application/json"), True, None),
    ],
)
def test_answers_that_are_not_the_apis_own(response: httpx.Response, own: bool, expected: str | None) -> None:
    """A redirect, an HTML page, or (by the caller's reading) a body that is not the envelope is a TransientError
    naming what came; the API's own answers are left to the status."""
    error = foreign("Api", response, own=own)
    if expected is None:
        assert error is None
    else:
        assert type(error) is TransientError
        assert expected in error.message


@pytest.mark.parametrize(
    ("status", "cls", "uncertain"),
    [
        (301, TransientError, False),
        (400, PermanentError, False),
        (401, DestinationError, False),
        (408, TransientError, False),
        (429, RateLimited, False),
        (500, TransientError, True),
        (502, TransientError, True),
        (503, TransientError, False),
        (504, TransientError, True),
    ],
)
def test_status_classes_and_whether_a_write_may_have_landed(status: int, cls: type, uncertain: bool) -> None:
    """The class of each status, and `uncertain` where the server may have applied the call before failing."""
    error = status_error("Api", status, "detail")
    assert type(error) is cls
    assert error.uncertain is uncertain


@pytest.mark.parametrize(
    ("exc", "uncertain"),
    [
        (httpx.ConnectError("refused"), False),
        (httpx.ConnectTimeout("slow"), False),
        (httpx.ReadTimeout("slow"), True),
        (httpx.RemoteProtocolError("cut"), True),
    ],
)
def test_a_call_that_never_left_is_certain_not_to_have_landed(exc: httpx.HTTPError, uncertain: bool) -> None:
    """Refused or unconnected calls were never seen by the server; a read timeout or a cut answer may have been."""
    assert transport_error("Api", exc).uncertain is uncertain


def test_html_is_recognised_by_content_type_or_by_its_start() -> None:
    """An HTML body is known by its content type, or by how it starts when the type says something else."""
    assert is_html(_answer(200, "x", "text/html; charset=utf-8"))
    assert is_html(_answer(200, "  <html><body>", "text/plain"))
    assert not is_html(_answer(200, '{"a": "<html>"}', "application/json"))


def _answering(status: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(lambda request: httpx.Response(status)), timeout=5)


async def test_each_call_counts_on_the_ticket_as_void_or_as_reaching_the_server() -> None:
    """A refused connection and a 429 certainly had no effect (void); any other answer, or a call cut off after it
    left, may have: the work's ticket says it sent nothing only while every call was void."""
    ticket = Ticket(calls=3)
    token = TICKET.set(ticket)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{free_port()}", timeout=5) as closed:
            with pytest.raises(TransientError):
                await bounded_request(closed, "Api", "POST", "/x")
        async with _answering(429) as throttled:
            await bounded_request(throttled, "Api", "POST", "http://api.test/x")
        assert (ticket.void, ticket.reached, ticket.sent_nothing) == (2, 0, False)  # one call let through unseen
        ticket.void += 1
        assert ticket.sent_nothing
        async with _answering(200) as answered:
            await bounded_request(answered, "Api", "POST", "http://api.test/x")
        assert (ticket.void, ticket.reached, ticket.sent_nothing) == (3, 1, False)
    finally:
        TICKET.reset(token)


async def test_every_client_shares_one_tls_context_that_verifies_certificates() -> None:
    """Clients built by make_client use one process-wide TLS context (built once, not once per client), and it
    still verifies certificates and host names."""
    first = make_client("https://api.example.com", timeout=5)
    second = make_client("http://127.0.0.1:9", timeout=5)
    try:
        contexts = [client._transport._pool._ssl_context for client in (first, second)]  # type: ignore[attr-defined]
    finally:
        await first.aclose()
        await second.aclose()
    assert contexts[0] is contexts[1] is tls_context()
    assert tls_context().verify_mode == ssl.CERT_REQUIRED
    assert tls_context().check_hostname


async def test_an_answer_is_freed_when_the_caller_drops_it_not_left_to_the_cyclic_gc() -> None:
    """A call's answer (a Firehose page is ~100 KB) is freed by reference counting the moment its caller drops it:
    httpx's spent stream no longer points back at it, so a rare cyclic GC holds no bodies; the body stays readable."""
    page = b'{"items": []}' * 1000
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=page))
    async with httpx.AsyncClient(transport=transport, timeout=5) as client:
        response = await bounded_request(client, "Api", "GET", "http://api.test/x")
        assert response.content == page
        assert [chunk async for chunk in response.aiter_bytes()] == [page]
        gone = weakref.ref(response)
        gc.disable()
        try:
            del response
            assert gone() is None
        finally:
            gc.enable()


async def _echo(request: Request) -> JSONResponse:
    answer = JSONResponse(
        {"headers": dict(request.headers), "query": dict(request.query_params), "body": (await request.body()).decode()}
    )
    answer.set_cookie("session", "from-the-server")
    return answer


async def test_a_call_sends_the_clients_headers_and_its_own_and_keeps_no_cookie() -> None:
    """Each call carries the client's headers (credentials, User-Agent) with its own on top, its query and JSON
    body, is counted once in syncd_http_requests; a cookie the server sets is never sent back."""
    app = Starlette(routes=[Route("/v1/echo", _echo, methods=["GET", "PUT"])])
    with ServerThread(app) as server:
        client = make_client(f"{server.url}/v1/", timeout=10.0, headers={"Api-Key": "k"})

        def counted() -> float:
            return REGISTRY.get_sample_value("syncd_http_requests_total", {"api": "echo", "status": "200"}) or 0

        before = counted()
        try:
            first = await bounded_request(client, "Echo", "GET", "/echo", params={"q": "a b"})
            second = await bounded_request(
                client, "Echo", "PUT", "echo", json={"name": "Zoë"}, headers={"accept": "text/plain"}
            )
        finally:
            await client.aclose()
    assert "session=from-the-server" in first.headers["set-cookie"]
    sent = [answer.json() for answer in (first, second)]
    assert sent[0]["query"] == {"q": "a b"}
    assert sent[1]["body"] == '{"name":"Zoë"}' and sent[1]["headers"]["content-type"] == "application/json"
    assert [s["headers"]["accept"] for s in sent] == ["application/json", "text/plain"]
    assert all(s["headers"]["api-key"] == "k" and s["headers"]["user-agent"].startswith("syncd/") for s in sent)
    assert all("cookie" not in s["headers"] for s in sent)
    assert counted() == before + 2
