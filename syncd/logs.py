"""Structured logs: structlog configured once, with pure processors that redact secrets and personal data.

JSON lines on stdout when it is not a terminal (journald, docker): every event. A readable console when it is, in
the layout `syncd logs` prints (`time level event key=value ...`, see syncd.logformat); there, at info level, the
per-page and per-delivery lines (`page_ingested`, `delivery_done`, `delivery_skipped`, `delivery_waiting`) are
counted instead of printed and said as `ingest_summary` and one `delivery_summary` per destination every few
seconds (the daemon calls `log_summary`), while everything else (start, ready, warnings, errors) shows at once; at
debug level the console shows every line. Timestamps are
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
import time
import traceback
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, Literal, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from syncd.logformat import Entry, render, use_color
from syncd.redact import MASK, NOTHING, Redactor

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
__all__ = [
    "MASK",
    "SUMMARY",
    "RedactSecrets",
    "configure",
    "drop_personal_data",
    "get_logger",
    "log_summary",
    "processors",
]
SUMMARISED = frozenset({"page_ingested", "delivery_done", "delivery_skipped", "delivery_waiting"})
SUMMARY_SECONDS = 5.0  # how often the console says what the summarised lines would have said

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


class Summary:
    """The console's summary at info level: each per-page and per-delivery line is counted here instead of printed
    (while `active`), and `take` returns what they said since the last time, one record for the streams and one per
    destination. Thread-safe (structlog may be called from any thread)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.active = False
        self._clock = clock
        self._lock = threading.Lock()
        self._since = clock()
        self._pages: dict[str, int] = {}
        self._streams: set[str] = set()
        self._sinks: dict[str, dict[str, int]] = {}

    def __call__(self, logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
        event = event_dict.get("event")
        if not self.active or method != "info" or event not in SUMMARISED:
            return event_dict
        with self._lock:
            if event == "page_ingested":
                self._streams.add(str(event_dict.get("stream", "?")))
                self._add(self._pages, "pages", 1)
                for key in ("events", "new", "deliveries", "quarantined"):
                    self._add(self._pages, key, event_dict.get(key))
            else:
                counts = self._sinks.setdefault(str(event_dict.get("sink", "?")), {})
                outcome = {"delivery_done": "done", "delivery_skipped": "skipped"}.get(str(event), "waiting")
                self._add(counts, outcome, 1)
                if outcome != "waiting":
                    self._add(counts, "events", event_dict.get("events"))
        raise structlog.DropEvent

    @staticmethod
    def _add(counts: dict[str, int], key: str, value: Any) -> None:
        if isinstance(value, int) and not isinstance(value, bool):
            counts[key] = counts.get(key, 0) + value

    def take(self) -> list[tuple[str, dict[str, Any]]]:
        """What was counted since the last `take` (event name, keys), and start counting anew."""
        with self._lock:
            now = self._clock()
            over = round(now - self._since, 1)
            taken: list[tuple[str, dict[str, Any]]] = []
            if self._pages:
                streams = ",".join(sorted(self._streams))
                taken.append(("ingest_summary", {"streams": streams, **self._pages, "over_s": over}))
            for sink, counts in sorted(self._sinks.items()):
                taken.append(("delivery_summary", {"sink": sink, **counts, "over_s": over}))
            self._since, self._pages, self._streams, self._sinks = now, {}, set(), {}
            return taken


SUMMARY = Summary()


def log_summary() -> None:
    """Say what the console's summarised lines counted since the last call (nothing when there was nothing)."""
    log = get_logger()
    for event, keys in SUMMARY.take():
        log.info(event, **keys)


class ConsoleLine:
    """The console renderer: a record as `syncd logs` prints it, time first, identity keys first, no empty keys."""

    def __init__(self, *, color: bool) -> None:
        self.color = color

    def __call__(self, logger: WrappedLogger, method: str, event_dict: EventDict) -> str:
        return render(Entry("", dict(event_dict)), color=self.color)


def processors(
    secrets: Iterable[str] | Redactor, *, json: bool, summary: Summary | None = None, color: bool = False
) -> list[Processor]:
    """The chain: tracebacks are formatted to text BEFORE the redactor, and the rendered line is scrubbed again.
    With `summary` (the console at info), the lines it summarises are counted there instead of printed."""
    redactor = secrets if isinstance(secrets, Redactor) else Redactor(secrets)
    chain: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        *([summary] if summary is not None else []),
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
        _stringify_exceptions,
        structlog.processors.format_exc_info,
        drop_personal_data,
        RedactSecrets(redactor),
    ]
    if json:
        chain.append(structlog.processors.JSONRenderer(sort_keys=False))
    else:
        chain.append(ConsoleLine(color=color))
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
    SUMMARY.active = not json and LEVELS[level] == logging.INFO
    SUMMARY.take()  # counts from an earlier configuration are not this one's
    structlog.configure(
        processors=processors(
            _Outside.redactor, json=json, summary=None if json else SUMMARY, color=not json and use_color("auto", out)
        ),
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
