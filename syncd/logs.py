"""Structured logs: structlog configured once, with pure processors that redact secrets and personal data.

JSON lines on stdout when it is not a terminal (journald, docker), a readable console when it is. Timestamps are
ISO-8601 UTC. Event names and keys are stable snake_case (`page_ingested`, `delivery_done`; keys `stream`, `sink`,
`key`, ...). Personal data (names, e-mails, phones) only appears in debug-level lines; every configured secret value
is replaced wherever it would appear.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from typing import Any, Literal, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
MASK = "[redacted]"
PERSONAL_KEYS = frozenset(
    {"email", "old_email", "new_email", "name", "first_name", "last_name", "phone", "mobile", "address"}
)
SECRET_KEYS = frozenset({"token", "api_key", "api_secret", "apikey", "sha", "authorization", "password", "secret"})


class RedactSecrets:
    """Replace every configured secret value (and any value under a secret-looking key) with a mask."""

    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first, so a secret containing another is masked whole.
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def __call__(self, logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
        return {key: self._clean(key, value) for key, value in event_dict.items()}

    def _clean(self, key: str, value: Any) -> Any:
        if key.lower() in SECRET_KEYS and value not in (None, ""):
            return MASK
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, dict):
            return {k: self._clean(str(k), v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._clean(key, v) for v in value]
        if isinstance(value, BaseException):
            return self.scrub(f"{type(value).__name__}: {value}")
        return value

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text


def drop_personal_data(logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    """Personal data only at debug level: other levels lose the keys that carry it."""
    if method == "debug":
        return event_dict
    return {k: v for k, v in event_dict.items() if k not in PERSONAL_KEYS}


def _stringify_exceptions(logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    error = event_dict.get("error")
    if isinstance(error, BaseException):
        event_dict["error"] = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return event_dict


def processors(secrets: Iterable[str], *, json: bool) -> list[Processor]:
    chain: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
        _stringify_exceptions,
        drop_personal_data,
        RedactSecrets(secrets),
    ]
    if json:
        chain += [structlog.processors.format_exc_info, structlog.processors.JSONRenderer(sort_keys=False)]
    else:
        chain.append(structlog.dev.ConsoleRenderer(colors=_isatty(sys.stderr)))
    return chain


def configure(
    *,
    level: str = "info",
    fmt: Literal["auto", "json", "console"] = "auto",
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> None:
    """Configure structlog for the whole process (call once at start-up, and again after the config is read)."""
    out = stream or sys.stdout
    json = fmt == "json" or (fmt == "auto" and not _isatty(out))
    structlog.configure(
        processors=processors(secrets, json=json),
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    # Libraries that log through the stdlib (uvicorn, httpx) stay quiet unless something is wrong.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def get_logger(**bound: Any) -> structlog.typing.FilteringBoundLogger:
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(**bound)
    return logger
