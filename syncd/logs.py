"""Structured logs: structlog configured once, with pure processors that redact secrets and personal data.

JSON lines on stdout when it is not a terminal (journald, docker), a readable console when it is. Timestamps are
ISO-8601 UTC. Event names and keys are stable snake_case (`page_ingested`, `delivery_done`; keys `stream`, `sink`,
`key`, ...). Personal data (names, e-mails, phones) only appears in debug-level lines; every configured secret value
is replaced wherever it would appear: in any value, in a traceback (formatted before the redactor runs), in the
rendered line itself, in what the standard library's loggers (uvicorn, httpx) print, and in the traceback of an
exception nothing caught.
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, Literal, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from syncd.redact import MASK, NOTHING, Redactor

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
__all__ = ["MASK", "RedactSecrets", "configure", "drop_personal_data", "get_logger", "processors"]

PERSONAL_KEYS = frozenset(
    {"email", "old_email", "new_email", "name", "first_name", "last_name", "phone", "mobile", "address"}
)
SECRET_KEYS = frozenset({"token", "api_key", "api_secret", "apikey", "sha", "authorization", "password", "secret"})


class RedactSecrets:
    """Replace every configured secret value (and any value under a secret-looking key) with a mask."""

    def __init__(self, secrets: Iterable[str] | Redactor) -> None:
        self.scrub = secrets if isinstance(secrets, Redactor) else Redactor(secrets)

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


class ScrubRendered:
    """The last step: the rendered line itself, in case a secret reached it in a form no value showed."""

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor

    def __call__(self, logger: WrappedLogger, method: str, rendered: Any) -> Any:
        return self.redactor(rendered) if isinstance(rendered, str) else rendered


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


def processors(secrets: Iterable[str] | Redactor, *, json: bool) -> list[Processor]:
    """The chain: tracebacks are formatted to text BEFORE the redactor, and the rendered line is scrubbed again."""
    redactor = secrets if isinstance(secrets, Redactor) else Redactor(secrets)
    chain: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
        _stringify_exceptions,
        structlog.processors.format_exc_info,
        drop_personal_data,
        RedactSecrets(redactor),
    ]
    if json:
        chain.append(structlog.processors.JSONRenderer(sort_keys=False))
    else:
        chain.append(structlog.dev.ConsoleRenderer(colors=_isatty(sys.stderr)))
    chain.append(ScrubRendered(redactor))
    return chain


# ---------------------------------------------------------------------------------------------------------------
# outside structlog: the standard library's loggers, and exceptions nothing caught


class _Outside:
    """The secrets of the latest configure(), for what logs outside structlog (one per process)."""

    redactor: Redactor = NOTHING
    factory_installed = False


def _install_record_scrubber() -> None:
    """Records of the standard library's loggers are scrubbed as they are made, whichever handler prints them: a
    record revealing a secret gets its message (and traceback) formatted and redacted up front."""
    if _Outside.factory_installed:
        return
    base: Callable[..., logging.LogRecord] = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = base(*args, **kwargs)
        redactor = _Outside.redactor
        if not redactor:
            return record
        try:
            message = record.getMessage()
        except Exception:  # a malformed log call: leave it to the formatter to report
            return record
        if redactor.reveals(message):
            record.msg, record.args = redactor(message), None
        if record.exc_info and record.exc_info[1] is not None:
            text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            if redactor.reveals(text):
                record.exc_text = redactor(text)
        return record

    logging.setLogRecordFactory(factory)
    _Outside.factory_installed = True


def _excepthook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    """An exception nothing caught: its traceback as Python prints it, with every secret masked."""
    sys.stderr.write(_Outside.redactor("".join(traceback.format_exception(kind, exc, tb))))


def _thread_excepthook(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is not None:
        name = args.thread.name if args.thread is not None else "?"
        sys.stderr.write(f"Exception in thread {name}:\n")
        _excepthook(args.exc_type, args.exc_value, args.exc_traceback)


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
    _Outside.redactor = Redactor(secrets)
    _install_record_scrubber()
    sys.excepthook = _excepthook
    threading.excepthook = _thread_excepthook
    structlog.configure(
        processors=processors(_Outside.redactor, json=json),
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
