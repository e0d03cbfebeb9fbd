"""The log processors: secrets redacted everywhere, personal data only at debug level, stable JSON lines."""

from __future__ import annotations

import io
import json

import pytest
import structlog

from syncd.logs import MASK, RedactSecrets, Summary, configure, drop_personal_data
from tests.support import FakeClock

SECRET = "s3cr3t-token-value"


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (
            {"event": "poll_failed", "error": f"401 for token {SECRET}"},
            {"event": "poll_failed", "error": f"401 for token {MASK}"},
        ),
        ({"event": "x", "url": f"https://api/?k={SECRET}&z=1"}, {"event": "x", "url": f"https://api/?k={MASK}&z=1"}),
        ({"event": "x", "nested": {"deep": [f"a{SECRET}b", 3]}}, {"event": "x", "nested": {"deep": [f"a{MASK}b", 3]}}),
        ({"event": "x", "api_key": "anything-at-all"}, {"event": "x", "api_key": MASK}),
        ({"event": "x", "token": ""}, {"event": "x", "token": ""}),
        ({"event": "x", "error": ValueError(f"bad {SECRET}")}, {"event": "x", "error": f"ValueError: bad {MASK}"}),
        ({"event": "x", "count": 3, "ok": True}, {"event": "x", "count": 3, "ok": True}),
    ],
)
def test_secrets_are_redacted_wherever_they_appear(event: dict[str, object], expected: dict[str, object]) -> None:
    """Every configured secret value is masked in any string, nested value or exception, and secret-named keys too."""
    assert RedactSecrets([SECRET, "abc"])(None, "info", dict(event)) == expected


def test_longer_secret_is_masked_whole_before_its_prefix() -> None:
    """A secret that contains another is masked as one, not left half-visible."""
    redact = RedactSecrets(["abcd", "abcdefgh"])
    assert redact(None, "info", {"event": "x", "v": "abcdefgh"})["v"] == MASK


@pytest.mark.parametrize(
    ("method", "kept"),
    [("debug", True), ("info", False), ("warning", False), ("error", False)],
)
def test_personal_data_only_at_debug(method: str, kept: bool) -> None:
    """Names, e-mails and phones survive only in debug lines."""
    event = {"event": "delivery_done", "email": "ada@example.org", "first_name": "Ada", "key": "lead:1"}
    out = drop_personal_data(None, method, dict(event))
    assert ("email" in out) is kept
    assert ("first_name" in out) is kept
    assert out["key"] == "lead:1"


def test_configured_json_lines_carry_level_iso_utc_time_and_no_secret() -> None:
    """A configured logger writes one JSON object per line with level, an ISO-8601 UTC `ts`, and no secret."""
    out = io.StringIO()
    configure(level="info", fmt="json", secrets=[SECRET], stream=out)
    try:
        log = structlog.get_logger()
        log.debug("hidden", email="ada@example.org")
        log.warning("poll_failed", error=f"refused {SECRET}", email="ada@example.org", stream="leads")
    finally:
        structlog.reset_defaults()
    [line] = out.getvalue().splitlines()
    entry = json.loads(line)
    assert entry["event"] == "poll_failed"
    assert entry["level"] == "warning"
    assert entry["ts"].endswith("Z")
    assert entry["stream"] == "leads"
    assert SECRET not in line
    assert "ada@example.org" not in line


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_a_traceback_is_redacted_too(fmt: str) -> None:
    """log.exception: the formatted traceback (the exception's message in it, a local's repr) carries no secret."""
    out = io.StringIO()
    configure(level="info", fmt=fmt, secrets=[SECRET], stream=out)  # type: ignore[arg-type]
    try:
        try:
            raise RuntimeError(f"Illegal header value b'Bearer {SECRET}\\n'")
        except RuntimeError:
            structlog.get_logger().exception("writer_crashed")
    finally:
        structlog.reset_defaults()
    text = out.getvalue()
    assert "RuntimeError" in text and "Traceback" in text
    assert SECRET not in text
    assert MASK in text


def test_a_secret_in_any_written_form_is_masked_in_the_rendered_line() -> None:
    """A secret holding quotes, backslashes or non-ASCII is masked in the JSON line however JSON escaped it."""
    odd = 'we"ird\\sécret'
    out = io.StringIO()
    configure(level="info", fmt="json", secrets=[odd], stream=out)
    try:
        structlog.get_logger().warning("poll_failed", error=f"echoed {odd}", url=f"/x?k={odd}")
        structlog.get_logger().warning("poll_failed", error=repr(odd))
    finally:
        structlog.reset_defaults()
    text = out.getvalue()
    for form in (odd, json.dumps(odd)[1:-1], repr(odd)[1:-1]):
        assert form not in text
    assert text.count(MASK) == 3


def test_standard_library_loggers_and_uncaught_exceptions_are_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    """What uvicorn or httpx log through `logging`, and the traceback of an exception nothing caught, are masked."""
    import logging
    import sys

    out = io.StringIO()
    configure(level="info", fmt="json", secrets=[SECRET], stream=out)
    handler = logging.StreamHandler(out)
    logger = logging.getLogger("uvicorn.error.test")
    logger.addHandler(handler)
    try:
        logger.error("request failed for %s", f"Bearer {SECRET}")
        try:
            raise ValueError(f"bad {SECRET}")
        except ValueError:
            logger.exception("in the app")
            sys.excepthook(*sys.exc_info())  # type: ignore[arg-type]
    finally:
        logger.removeHandler(handler)
        configure(level="info", fmt="json", secrets=[], stream=io.StringIO())
        structlog.reset_defaults()
    printed = out.getvalue() + capsys.readouterr().err
    assert "request failed for Bearer" in printed and "ValueError" in printed
    assert SECRET not in printed


def test_the_console_summary_counts_what_it_drops_and_starts_anew() -> None:
    """Active (a console at info), per-page and per-delivery lines are dropped and counted per stream set and per
    destination; take() says it once and resets; other events and other levels pass through."""
    clock = FakeClock(100.0)
    summary = Summary(clock)
    summary.active = True
    lines = [
        ("info", {"event": "page_ingested", "stream": "leads", "events": 100, "new": 98, "deliveries": 196}),
        ("info", {"event": "page_ingested", "stream": "contacts", "events": 5, "new": 5, "deliveries": 10}),
        ("info", {"event": "delivery_done", "sink": "ontraport", "events": 2}),
        ("info", {"event": "delivery_skipped", "sink": "ontraport", "events": 1, "reason": "no e-mail"}),
        ("info", {"event": "delivery_waiting", "sink": "salesmanago", "on": "contact:1"}),
    ]
    for method, record in lines:
        with pytest.raises(structlog.DropEvent):
            summary(None, method, record)
    assert summary(None, "warning", {"event": "delivery_done", "sink": "x"}) == {"event": "delivery_done", "sink": "x"}
    assert summary(None, "info", {"event": "daemon_ready"}) == {"event": "daemon_ready"}
    clock.advance(5.0)
    assert summary.take() == [
        ("ingest_summary", {"streams": "contacts,leads", "pages": 2, "events": 105, "new": 103, "deliveries": 206,
                            "over_s": 5.0}),
        ("delivery_summary", {"sink": "ontraport", "done": 1, "events": 3, "skipped": 1, "over_s": 5.0}),
        ("delivery_summary", {"sink": "salesmanago", "waiting": 1, "over_s": 5.0}),
    ]  # fmt: skip
    assert summary.take() == []
    summary.active = False
    assert summary(None, "info", {"event": "delivery_done"}) == {"event": "delivery_done"}
