"""The configuration file: one TOML document, decoded into frozen, typed objects and validated at start-up.

Every problem is reported as a `ConfigError` naming the file and the dotted key (`sell.poll_interval`), and stops
start-up with exit code 78. Secrets (`env:NAME`, `file:PATH`, `credential:NAME` or a literal) are resolved here,
once, into `Secret` objects whose text form never shows the value.
"""

from __future__ import annotations

import ipaddress
import os
import re
import stat
import types
import unicodedata
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints
from urllib.parse import urlsplit

import msgspec

from syncd.errors import ConfigError
from syncd.events import STREAM_KINDS
from syncd.units import Rate, parse_duration, parse_rate, parse_size

DEFAULT_PATH = Path("/etc/syncd/syncd.toml")
RETENTION = 72 * 3600.0  # Sell keeps Firehose events this long (seconds); an older position answers 410
CUSTOM_PREFIX = "custom."  # a Sell custom field, by its name, in a [sinks.<name>.fields] row


@dataclass(frozen=True, slots=True)
class FieldMapping:
    """One row of a `[sinks.<name>.fields]` table."""

    sell: str  # the Sell field path
    target: str  # the destination key
    config_key: str  # where it is written in the config, for error messages

    @property
    def custom_name(self) -> str | None:
        return self.sell[len(CUSTOM_PREFIX) :] if self.sell.startswith(CUSTOM_PREFIX) else None


def parse_fields(sink: str, table: Mapping[str, str]) -> list[FieldMapping]:
    """The mapping rows of one destination, in file order (what `SinkConfig.mapping` gives)."""
    return [
        FieldMapping(sell.strip(), target.strip(), f'sinks.{sink}.fields."{sell}"') for sell, target in table.items()
    ]


class ConfigWarning(UserWarning):
    """A configuration that works but deserves attention (for example a secrets file others can read)."""


class Duration(float):
    """Seconds; written in the file as a number or a string such as "500ms", "5s", "2m"."""


class Size(int):
    """Bytes; written in the file as a number or a string such as "500MB", "2GB", "1GiB"."""


class Secret:
    """A credential. Its text form is masked; `.value` is the only way to the real thing."""

    __slots__ = ("source", "value")

    def __init__(self, value: str, source: str = "literal") -> None:
        self.value = value
        self.source = source

    def __repr__(self) -> str:
        return f"Secret(<{self.source}>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other.value == self.value

    def __hash__(self) -> int:
        return hash(self.value)


def _dec_hook(type_: type, obj: Any) -> Any:
    if type_ is Duration:
        return Duration(parse_duration(obj))
    if type_ is Size:
        return Size(parse_size(obj))
    if type_ is Rate:
        if not isinstance(obj, str):
            raise ValueError('expected a rate string such as "10/s" or "180/min"')
        return parse_rate(obj)
    if type_ is Secret:
        if not isinstance(obj, str) or not obj:
            raise ValueError("expected a non-empty string: a literal, env:NAME, file:PATH or credential:NAME")
        return Secret(obj, "unresolved")
    raise NotImplementedError(type_)


class _Section(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


class StateConfig(_Section, frozen=True):
    path: str = "syncd.db"  # relative paths are resolved against the config file's directory
    retention: Duration = Duration(7 * 86400)  # completed events are pruned after this long
    prune_interval: Duration = Duration(300)
    # Polling pauses only to protect the disk: when the file uses max_size bytes, or its filesystem has min_free
    # bytes left, finished events are pruned early, and polling pauses if that does not make room.
    max_size: Size = Size(5 * 10**9)
    min_free: Size = Size(500 * 10**6)
    # No longer used (a destination's backlog never stops polling): accepted with a warning, so older files start.
    max_pending: int | None = None


class SellConfig(_Section, frozen=True):
    token: Secret
    base_url: str = "https://api.getbase.com"
    streams: list[str] = msgspec.field(default_factory=lambda: ["leads", "contacts"])
    # A stream read for the first time: from the oldest retained event ("tail"), from now on ("top"), or every
    # record Sell holds read through the Core API, then the stream from where that began ("backfill").
    start: Literal["tail", "top", "backfill"] = "tail"
    # A stream whose position expired (410): re-read through the Core API and go on from the new head
    # ("backfill"), or stop it and keep readiness red until an operator acts ("stop").
    on_expired: Literal["stop", "backfill"] = "stop"
    # Warn (status, metrics, a log event) when a stream's oldest unread event is this close to Sell dropping it.
    expiry_warning: Duration = Duration(24 * 3600)
    poll_interval: Duration = Duration(5)
    page_limit: int = 100
    rate: Rate = Rate(10, 1)
    timeout: Duration = Duration(30)
    max_backoff: Duration = Duration(60)


class SinkConfig(_Section, frozen=True):
    base_url: str = ""  # SALESmanago's differs per account (app2, app3, www): required when enabled
    enabled: bool = True
    rate: Rate | None = None
    on_delete: Literal["delete", "tag", "ignore"] = "delete"
    fields: dict[str, str] = {}
    concurrency: int = 4  # keys in flight at once
    timeout: Duration = Duration(30)
    max_backoff: Duration = Duration(300)
    max_attempts: int | None = None  # None: retry transient failures forever
    delete_grace: Duration = Duration(0)  # extra wait before a delete, on top of every person stream reaching top
    # How long the destination may still finish a write after syncd gave up on it (a timeout, a crash): a key whose
    # write's outcome is unknown is written again with its latest state once this has passed (0: never).
    late_write_window: Duration = Duration(120)
    # Sell organisations (contacts with is_organization): written as destination contacts when they have an e-mail
    # ("contact"), or never ("skip").
    organisations: Literal["contact", "skip"] = "contact"
    # Several live Sell people with one e-mail share one destination contact, written from one owner at a time:
    # a contact before a lead, then the newest ("contact_first"), the record created last ("newest"), or none
    # while they share it ("skip").
    shared_email: Literal["newest", "contact_first", "skip"] = "contact_first"

    @property
    def name(self) -> str:
        raise NotImplementedError

    @property
    def mapping(self) -> list[FieldMapping]:
        """The `[sinks.<name>.fields]` rows, parsed (the one place they are read)."""
        return parse_fields(self.name, self.fields)


class SalesmanagoTags(_Section, frozen=True):
    always: list[str] = msgspec.field(default_factory=lambda: ["ZENDESK_SELL"])
    lead: list[str] = msgspec.field(default_factory=lambda: ["LEAD"])
    contact: list[str] = msgspec.field(default_factory=lambda: ["CONTACT"])
    organisation: list[str] = msgspec.field(default_factory=lambda: ["ORGANISATION"])  # instead of `contact`
    customer: list[str] = msgspec.field(default_factory=lambda: ["CUSTOMER"])
    deleted: list[str] = msgspec.field(default_factory=lambda: ["DELETED_IN_SELL"])  # added when on_delete = "tag"
    # Sell tags not copied to SALESmanago (exact names); the tags feedback writes on Sell records are never copied.
    skip: list[str] = []


# SALESmanago's external event types (case-sensitive), the older 13 first.
SALESMANAGO_EVENT_TYPES = (
    "PURCHASE", "CART", "VISIT", "PHONE_CALL", "OTHER", "RESERVATION", "CANCELLED", "ACTIVATION", "MEETING",
    "OFFER", "DOWNLOAD", "LOGIN", "TRANSACTION", "CANCELLATION", "RETURN", "SURVEY", "APP_STATUS", "APP_TYPE_WEB",
    "APP_TYPE_MANUAL", "APP_TYPE_RETENTION", "APP_TYPE_UPSALE", "LOAN_STATUS", "LOAN_ORDER", "FIRST_LOAN",
    "REPEATED_LOAN",
)  # fmt: skip
# A shop id as SALESmanago's own feeds take it: at most 36 of a-z 0-9 / _ - .
LOCATION = re.compile(r"^[a-z0-9/_.-]{1,36}$")


class SalesmanagoEventTypes(_Section, frozen=True):
    """The event types of one pipeline's deals; an unset one is the default's."""

    won: str | None = None
    lost: str | None = None
    created: str | None = None


class SalesmanagoEvents(_Section, frozen=True):
    """Which SALESmanago external event each Sell deal fact (and, optionally, each note) becomes ("" for none)."""

    won: str = "PURCHASE"
    lost: str = "CANCELLED"
    created: str = "OFFER"
    notes: str = ""  # off by default; e.g. "OTHER" for one event per note
    location: str = "zendesk_sell"
    shop_domain: str = ""
    pipelines: dict[str, SalesmanagoEventTypes] = {}  # by Sell pipeline id
    stages: dict[str, str] = {}  # Sell stage name or id -> the event a deal reaching it makes

    def types(self, pipeline_id: int | None) -> tuple[str, str, str]:
        """(won, lost, created) for a deal of that pipeline."""
        own = self.pipelines.get(str(pipeline_id)) if pipeline_id is not None else None
        if own is None:
            return self.won, self.lost, self.created
        return (
            self.won if own.won is None else own.won,
            self.lost if own.lost is None else own.lost,
            self.created if own.created is None else own.created,
        )


class SalesmanagoConfig(SinkConfig, frozen=True):
    client_id: str = ""
    api_secret: Secret | None = None
    owner: str = ""
    tags: SalesmanagoTags = SalesmanagoTags()
    events: SalesmanagoEvents = SalesmanagoEvents()
    rate: Rate | None = Rate(10, 1)
    batch_size: int = 100  # contacts per `contact/batchupsert` (Ontraport has no batch endpoint: no such key)

    @property
    def name(self) -> str:
        return "salesmanago"


class OntraportPurchases(_Section, frozen=True):
    """How won Sell deals and their orders become Ontraport purchase history (logged, never charged)."""

    enabled: bool = True
    reversal: Literal["void", "refund"] = "void"  # what undoes a logged purchase Sell takes back
    on_deal_delete: Literal["reverse", "keep"] = "reverse"  # a deleted won deal's purchases
    deal_product: str = "Zendesk Sell deal"  # the product a won deal without line items is logged as
    currency: str = ""  # the account's currency (ISO 4217); deals in another are refused. "": not checked
    referrer_field: str = ""  # a Sell custom field (the deal's, else its contact's) with the partner's e-mail
    product_limit: int = 50_000  # products the account may hold; a warning as it nears them
    settle: Duration = Duration(5)  # a won deal is logged once its orders and line items had this long to arrive


class OntraportNotes(_Section, frozen=True):
    """How Sell notes on leads, contacts and deals become Ontraport notes on the contact."""

    enabled: bool = True
    author: int = 1  # the Ontraport user id notes are written by (1: the account owner)


class OntraportConfig(SinkConfig, frozen=True):
    base_url: str = "https://api.ontraport.com"
    app_id: str = ""
    api_key: Secret | None = None
    rate: Rate | None = Rate(180, 60)
    external_id_field: str | None = None
    deleted_tag: str = "Deleted in Sell"  # used when on_delete = "tag"
    purchases: OntraportPurchases = OntraportPurchases()
    notes: OntraportNotes = OntraportNotes()

    @property
    def name(self) -> str:
        return "ontraport"


class SinksConfig(_Section, frozen=True):
    salesmanago: SalesmanagoConfig | None = None
    ontraport: OntraportConfig | None = None


FEEDBACK_OUTCOMES = ("delivered", "skipped", "dead", "deleted")  # what a destination's outcome of a person can be


class FeedbackSink(_Section, frozen=True):
    """What one destination's outcome of a lead or contact sets on the Sell record: a tag per outcome ("" for
    none; unset: `synced-<destination>` when delivered, `rejected-<destination>` when refused for good) and,
    optionally, a Sell custom field (text) that receives the latest status with its reason."""

    enabled: bool = True
    delivered: str | None = None
    skipped: str = ""
    dead: str | None = None
    deleted: str = ""
    field: str = ""

    def tag(self, sink: str, outcome: str) -> str:
        """The tag `outcome` (one of FEEDBACK_OUTCOMES) sets for destination `sink` ("" for none)."""
        if outcome == "delivered":
            return f"synced-{sink}" if self.delivered is None else self.delivered
        if outcome == "dead":
            return f"rejected-{sink}" if self.dead is None else self.dead
        return str(getattr(self, outcome))

    def tags(self, sink: str) -> dict[str, str]:
        """Every outcome's tag (outcome -> tag, "" for none)."""
        return {outcome: self.tag(sink, outcome) for outcome in FEEDBACK_OUTCOMES}


class FeedbackConfig(_Section, frozen=True):
    """Outcomes back to Sell: each lead's and contact's outcome in the destinations, written on it in Sell."""

    enabled: bool = False
    salesmanago: FeedbackSink | None = None
    ontraport: FeedbackSink | None = None
    rate: Rate = Rate(5, 1)  # feedback's own ceiling on Sell calls, inside Sell's limit (pollers are served first)
    concurrency: int = 2  # records written at once
    max_backoff: Duration = Duration(300)
    max_attempts: int | None = None  # None: retry transient failures forever
    # How long Sell may still finish a write after syncd gave up on it: the record is then written again.
    late_write_window: Duration = Duration(60)

    def destinations(self, enabled: list[str]) -> dict[str, FeedbackSink]:
        """The destinations whose outcomes are written back (of the `enabled` ones): all of them unless their
        table says `enabled = false`; none while feedback is off."""
        if not self.enabled:
            return {}
        found: dict[str, FeedbackSink] = {}
        for name in enabled:
            table = getattr(self, name, None)
            own = table if isinstance(table, FeedbackSink) else FeedbackSink()
            if own.enabled:
                found[name] = own
        return found


class SandboxConfig(_Section, frozen=True):
    sell_rate: Rate | None = Rate(10, 1)
    salesmanago_rate: Rate | None = None
    ontraport_rate: Rate | None = Rate(180, 60)
    retention: Duration = Duration(72 * 3600)


class LogConfig(_Section, frozen=True):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class HealthConfig(_Section, frozen=True):
    enabled: bool = True
    listen: str = "127.0.0.1:9187"


class RunConfig(_Section, frozen=True):
    shutdown_timeout: Duration = Duration(30)


class ConfigFile(_Section, frozen=True):
    """What the file may hold: its top-level tables (any other key is refused)."""

    sell: SellConfig
    state: StateConfig = StateConfig()
    sinks: SinksConfig = SinksConfig()
    feedback: FeedbackConfig = FeedbackConfig()
    sandbox: SandboxConfig = SandboxConfig()
    log: LogConfig = LogConfig()
    health: HealthConfig = HealthConfig()
    run: RunConfig = RunConfig()


class Config(ConfigFile, frozen=True):
    """The configuration in use: the file's tables, and where they were read from."""

    source: str = ""  # the file this was read from (set by `loads`; the file cannot set it)

    def enabled_sinks(self) -> list[SalesmanagoConfig | OntraportConfig]:
        """The destinations that receive deliveries, in a stable order."""
        found: list[SalesmanagoConfig | OntraportConfig] = []
        if self.sinks.salesmanago is not None and self.sinks.salesmanago.enabled:
            found.append(self.sinks.salesmanago)
        if self.sinks.ontraport is not None and self.sinks.ontraport.enabled:
            found.append(self.sinks.ontraport)
        return found

    def feedback_destinations(self) -> dict[str, FeedbackSink]:
        """The enabled destinations whose outcomes are written back to Sell (none while `[feedback]` is off)."""
        return self.feedback.destinations([s.name for s in self.enabled_sinks()])

    def secret_values(self) -> list[str]:
        """Every resolved secret, for the log redaction processor."""
        return [s.value for s in _walk_secrets(self) if s.value]


def _walk_secrets(value: Any) -> Iterator[Secret]:
    if isinstance(value, Secret):
        yield value
    elif isinstance(value, msgspec.Struct):
        for name in value.__struct_fields__:
            yield from _walk_secrets(getattr(value, name))
    elif isinstance(value, dict):
        for item in value.values():
            yield from _walk_secrets(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _walk_secrets(item)


# ---------------------------------------------------------------------------------------------------------------
# loading


def find_config(explicit: str | None) -> Path:
    """The config file to use: `--config`, then `$SYNCD_CONFIG`, then /etc/syncd/syncd.toml."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("SYNCD_CONFIG")
    if env:
        return Path(env)
    return DEFAULT_PATH


_AT = re.compile(r"^(?P<msg>.*) - at `\$(?P<path>[^`]*)`$", re.DOTALL)


_FIELD = re.compile(r"^Object (?P<what>contains unknown|missing required) field `(?P<field>[^`]+)`$")


def _explain(error: str) -> tuple[str, str | None]:
    """Turn msgspec's "<message> - at `$.sell.token`" into (message, "sell.token")."""
    match = _AT.match(error)
    message, key = (match.group("msg"), match.group("path").lstrip(".")) if match else (error, "")
    field = _FIELD.match(message)
    if field:
        key = f"{key}.{field.group('field')}" if key else field.group("field")
        message = "unknown key (check its spelling)" if field.group("what") == "contains unknown" else "required"
    if message.startswith("Invalid enum value") and key:
        allowed = allowed_values(key)
        if allowed:
            message = f"{message}; expected one of {', '.join(repr(v) for v in allowed)}"
    return message, key or None


def allowed_values(key: str) -> tuple[Any, ...]:
    """The values a Literal-typed key (`log.level`) accepts, found by walking the Config types along the dotted key;
    () when the key is not such a field."""
    kind: Any = Config
    for part in key.split("."):
        kind = _struct_of(kind)
        if kind is None:
            return ()
        hints = get_type_hints(kind)
        if part not in hints:
            return ()
        kind = hints[part]
    for member in (kind, *_union_members(kind)):
        if get_origin(member) is Literal:
            return get_args(member)
    return ()


def _union_members(kind: Any) -> tuple[Any, ...]:
    return get_args(kind) if get_origin(kind) in (Union, types.UnionType) else ()


def _struct_of(kind: Any) -> type[msgspec.Struct] | None:
    for member in (kind, *_union_members(kind)):
        if isinstance(member, type) and issubclass(member, msgspec.Struct):
            return member
    return None


def load(
    path: str | os.PathLike[str], *, environ: dict[str, str] | None = None, resolve_secrets: bool = True
) -> Config:
    """Read, decode, resolve and validate the config file at `path`. Without `resolve_secrets` (commands that
    only use the store), secrets stay unread: their `env:`, `file:` or `credential:` sources need not exist."""
    file = Path(path)
    where = str(file)
    try:
        text = file.read_bytes()
    except FileNotFoundError:
        raise ConfigError("the config file does not exist", path=where) from None
    except OSError as exc:
        raise ConfigError(f"cannot read the config file: {exc.strerror}", path=where) from None
    return loads(text, source=where, base_dir=file.parent, environ=environ, resolve_secrets=resolve_secrets)


def loads(
    text: bytes | str,
    *,
    source: str = "<config>",
    base_dir: Path | None = None,
    environ: dict[str, str] | None = None,
    resolve_secrets: bool = True,
) -> Config:
    """Decode and validate config text; `source` names it in errors (see `load` for `resolve_secrets`)."""
    try:
        # Decoded as ConfigFile, not Config: `source` is not a key of the file (decoded, it would be accepted and
        # silently overwritten).
        decoded = msgspec.toml.decode(text, type=ConfigFile, dec_hook=_dec_hook)
    except msgspec.ValidationError as exc:
        message, key = _explain(str(exc))
        raise ConfigError(message, path=source, key=key) from None
    except msgspec.DecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", path=source) from None
    raw = Config(**{name: getattr(decoded, name) for name in decoded.__struct_fields__}, source=source)
    env = os.environ if environ is None else environ
    base = base_dir or Path.cwd()
    resolved = _resolve_secrets(raw, source=source, environ=env, base_dir=base) if resolve_secrets else raw
    state_path = Path(resolved.state.path).expanduser()
    if not state_path.is_absolute():
        # Under systemd's StateDirectory= a relative state path lives there; otherwise next to the config file.
        state_dir = env.get("STATE_DIRECTORY", "").split(":")[0]
        state_path = ((Path(state_dir) if state_dir else base) / state_path).resolve()
    state = msgspec.structs.replace(resolved.state, path=str(state_path))
    config = msgspec.structs.replace(resolved, source=source, state=state)
    validate(config)
    return _feedback_tags_not_copied(config)


def _feedback_tags_not_copied(config: Config) -> Config:
    """The tags feedback writes on Sell records added to SALESmanago's `tags.skip`: syncd's own status tags are
    no person's, and never reach the marketing tool from Sell (SALESmanago copies Sell's tags)."""
    sm = config.sinks.salesmanago
    own = [tag for name, fed in config.feedback_destinations().items() for tag in fed.tags(name).values() if tag]
    if sm is None or not own:
        return config
    skip = list(dict.fromkeys([*sm.tags.skip, *own]))
    tags = msgspec.structs.replace(sm.tags, skip=skip)
    sinks = msgspec.structs.replace(config.sinks, salesmanago=msgspec.structs.replace(sm, tags=tags))
    return msgspec.structs.replace(config, sinks=sinks)


def _resolve_secrets(config: Config, *, source: str, environ: Any, base_dir: Path) -> Config:
    def resolve(secret: Secret | None, key: str) -> Secret | None:
        if secret is None:
            return None
        return resolve_secret(secret.value, key=key, source=source, environ=environ, base_dir=base_dir)

    sell = msgspec.structs.replace(config.sell, token=resolve(config.sell.token, "sell.token"))
    sinks = config.sinks
    if sinks.salesmanago is not None:
        sm = msgspec.structs.replace(
            sinks.salesmanago,
            api_secret=resolve(sinks.salesmanago.api_secret, "sinks.salesmanago.api_secret"),
        )
        sinks = msgspec.structs.replace(sinks, salesmanago=sm)
    if sinks.ontraport is not None:
        op = msgspec.structs.replace(
            sinks.ontraport, api_key=resolve(sinks.ontraport.api_key, "sinks.ontraport.api_key")
        )
        sinks = msgspec.structs.replace(sinks, ontraport=op)
    return msgspec.structs.replace(config, sell=sell, sinks=sinks)


def resolve_secret(text: str, *, key: str, source: str, environ: Any, base_dir: Path) -> Secret:
    """Resolve `env:NAME`, `file:PATH`, `credential:NAME` or a literal into a Secret: surrounding whitespace (the
    newline an editor or `echo` leaves) is stripped, and a value with a control character inside is refused."""
    scheme, _, rest = text.partition(":")
    if scheme == "env" and rest:
        value = environ.get(rest)
        if value is None or not value.strip():
            raise ConfigError(f"the environment variable {rest} is not set", path=source, key=key)
        return Secret(clean_secret(value, key=key, source=source, origin=f"${rest}"), f"env:{rest}")
    if scheme == "file" and rest:
        file = Path(rest)
        if not file.is_absolute():
            file = base_dir / file
        return Secret(_read_secret_file(file, key=key, source=source), f"file:{rest}")
    if scheme == "credential" and rest:
        directory = environ.get("CREDENTIALS_DIRECTORY")
        if not directory:
            raise ConfigError(
                f"credential:{rest} needs $CREDENTIALS_DIRECTORY (systemd LoadCredential=), which is not set",
                path=source,
                key=key,
            )
        return Secret(_read_secret_file(Path(directory) / rest, key=key, source=source), f"credential:{rest}")
    if not text.strip():
        raise ConfigError("expected a non-empty secret", path=source, key=key)
    return Secret(clean_secret(text, key=key, source=source, origin="the value"), "literal")


def clean_secret(value: str, *, key: str, source: str, origin: str) -> str:
    """`value` without surrounding whitespace; a control character left inside (a line break in the middle, a
    NUL, an escape) makes it unusable in any request, so it is refused, naming where it was read (`origin`) and
    where in it the character sits, never the value."""
    stripped = value.lstrip("\ufeff").strip()  # a byte-order mark an editor put first is no part of it
    for position, char in enumerate(stripped):
        if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp"):
            raise ConfigError(
                f"{origin} holds a control character (U+{ord(char):04X} at position {position + 1} of"
                f" {len(stripped)}); a credential is one line of printable text",
                path=source,
                key=key,
            )
    return stripped


def _read_secret_file(file: Path, *, key: str, source: str) -> str:
    try:
        info = file.stat()
        mode = info.st_mode
        raw = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"the secret file {file} is not UTF-8 text", path=source, key=key) from None
    except OSError as exc:
        raise ConfigError(f"cannot read the secret file {file}: {exc.strerror}", path=source, key=key) from None
    # Others must not read it; a group may read it only when it is one of ours (Kubernetes mounts secrets 0440
    # with the pod's group, systemd credentials are root-only anyway).
    foreign_group = mode & stat.S_IRGRP and info.st_gid not in {os.getegid(), *os.getgroups()}
    if mode & (stat.S_IROTH | stat.S_IWOTH | stat.S_IWGRP) or foreign_group:
        warnings.warn(
            f"{source}: {key}: the secret file {file} is readable by others (mode {stat.S_IMODE(mode):04o});"
            " chmod 600 it",
            ConfigWarning,
            stacklevel=2,
        )
    if not raw.strip():
        raise ConfigError(f"the secret file {file} is empty", path=source, key=key)
    return clean_secret(raw, key=key, source=source, origin=f"the secret file {file}")


# ---------------------------------------------------------------------------------------------------------------
# validation of what the types alone cannot say


def validate(config: Config) -> None:
    src = config.source

    def fail(key: str, message: str) -> None:
        raise ConfigError(message, path=src, key=key)

    sell = config.sell
    check_url(sell.base_url, key="sell.base_url", source=src)
    if not sell.streams:
        fail("sell.streams", "name at least one stream")
    for i, stream in enumerate(sell.streams):
        if stream not in STREAM_KINDS:
            fail(f"sell.streams[{i}]", f"unknown stream {stream!r}; expected one of {', '.join(STREAM_KINDS)}")
    if len(set(sell.streams)) != len(sell.streams):
        fail("sell.streams", "a stream is named twice")
    if not 0 < sell.expiry_warning < RETENTION:
        fail(
            "sell.expiry_warning",
            f"expected a duration above zero and below Sell's {RETENTION / 3600:.0f}-hour retention",
        )
    if not 1 <= sell.page_limit <= 100:
        fail("sell.page_limit", f"expected 1..100, got {sell.page_limit}")
    if config.state.max_pending is not None:
        warnings.warn(
            f"{src}: state.max_pending is no longer used and can be removed: a destination's backlog no longer stops"
            " polling; polling pauses only when the state file reaches state.max_size (or its disk state.min_free)",
            ConfigWarning,
            stacklevel=2,
        )
    if config.state.max_size < 10**6:
        fail("state.max_size", f"expected at least 1MB, got {config.state.max_size} bytes")
    if not config.state.path:
        fail("state.path", "expected a file path")
    if Path(config.state.path).is_dir():
        fail("state.path", f"{config.state.path} is a directory; name the database file in it (e.g. syncd.db)")
    for key, seconds in _positive_durations(config):
        if seconds <= 0:
            fail(key, "expected a duration above zero")
    header_values = [("sell.token", config.sell.token.value)]
    if config.sinks.ontraport is not None:
        op = config.sinks.ontraport
        header_values += [("sinks.ontraport.app_id", op.app_id)]
        header_values += [("sinks.ontraport.api_key", op.api_key.value)] if op.api_key is not None else []
    for key, value in header_values:
        # Sent in an HTTP header, which carries ASCII only: anything else could never be sent.
        if not value.isascii():
            fail(key, "expected ASCII characters only (it is sent in an HTTP header); check for a pasted look-alike")
    for sink in (config.sinks.salesmanago, config.sinks.ontraport):
        if sink is None:
            continue
        prefix = f"sinks.{sink.name}"
        if sink.base_url or sink.enabled:
            if not sink.base_url:
                fail(f"{prefix}.base_url", "required when the destination is enabled")
            check_url(sink.base_url, key=f"{prefix}.base_url", source=src)
        if sink.concurrency < 1:
            fail(f"{prefix}.concurrency", "expected at least 1")
        if isinstance(sink, SalesmanagoConfig) and sink.batch_size < 1:
            fail(f"{prefix}.batch_size", "expected at least 1")
        if sink.max_attempts is not None and sink.max_attempts < 1:
            fail(f"{prefix}.max_attempts", "expected at least 1 (or leave it out to retry forever)")
        for field_key in sink.fields:
            if not field_key.strip():
                fail(f"{prefix}.fields", "an empty Sell field name")
        if not sink.enabled:
            continue
        if isinstance(sink, SalesmanagoConfig):
            if not sink.client_id:
                fail(f"{prefix}.client_id", "required when the destination is enabled")
            if sink.api_secret is None:
                fail(f"{prefix}.api_secret", "required when the destination is enabled")
            if "@" not in sink.owner:
                fail(f"{prefix}.owner", "expected the e-mail of the SALESmanago user who owns the contacts")
            if sink.batch_size > 1000:
                fail(f"{prefix}.batch_size", "expected at most 1000")
            _validate_events(sink.events, f"{prefix}.events", fail)
        else:
            if not sink.app_id:
                fail(f"{prefix}.app_id", "required when the destination is enabled")
            if sink.api_key is None:
                fail(f"{prefix}.api_key", "required when the destination is enabled")
            _validate_ontraport_history(sink, prefix, fail)
    _validate_feedback(config.feedback, fail)
    host, _, port = config.health.listen.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        fail("health.listen", f"expected host:port, got {config.health.listen!r}")


def _positive_durations(config: Config) -> Iterator[tuple[str, float]]:
    """The durations that must be above zero: timeouts (0 would fail every call), backoff caps (0 would retry in
    a tight loop) and the prune interval (0 would prune in a tight loop)."""
    yield "sell.timeout", config.sell.timeout
    yield "sell.max_backoff", config.sell.max_backoff
    yield "state.prune_interval", config.state.prune_interval
    yield "feedback.max_backoff", config.feedback.max_backoff
    for sink in (config.sinks.salesmanago, config.sinks.ontraport):
        if sink is not None:
            yield f"sinks.{sink.name}.timeout", sink.timeout
            yield f"sinks.{sink.name}.max_backoff", sink.max_backoff


def _validate_events(events: SalesmanagoEvents, prefix: str, fail: Callable[[str, str], None]) -> None:
    def check_type(key: str, value: str | None, *, off: bool = True) -> None:
        if value is None or (off and value == ""):
            return
        if value not in SALESMANAGO_EVENT_TYPES:
            hint = (
                f"{value.upper()!r}"
                if value.upper() in SALESMANAGO_EVENT_TYPES
                else "one of " + ", ".join(SALESMANAGO_EVENT_TYPES)
            )
            fail(key, f"unknown SALESmanago event type {value!r}; expected {hint}" + (' or "" for none' if off else ""))

    for name in ("won", "lost", "created", "notes"):
        check_type(f"{prefix}.{name}", getattr(events, name))
    for pipeline, own in events.pipelines.items():
        # as a deal's pipeline id is written: digits, no leading zero (a "007" would never match pipeline 7)
        if not (pipeline.isascii() and pipeline.isdigit() and str(int(pipeline)) == pipeline):
            fail(f'{prefix}.pipelines."{pipeline}"', "expected a Sell pipeline id (digits, no leading zero)")
        for name in ("won", "lost", "created"):
            check_type(f'{prefix}.pipelines."{pipeline}".{name}', getattr(own, name))
    for stage, kind in events.stages.items():
        if not stage.strip():
            fail(f"{prefix}.stages", "an empty Sell stage name")
        check_type(f'{prefix}.stages."{stage}"', kind, off=False)
    if not LOCATION.match(events.location):
        fail(f"{prefix}.location", f"expected a shop id of at most 36 of a-z 0-9 / _ - . (got {events.location!r})")
    if len(events.shop_domain) > 255:
        fail(f"{prefix}.shop_domain", "expected at most 255 characters")


MAX_SELL_TEXT = 255  # Sell's limit on a tag's and a text value's length


def _validate_feedback(feedback: FeedbackConfig, fail: Callable[[str, str], None]) -> None:
    """The `[feedback]` table: limits, and tags and field names Sell can take."""
    if feedback.concurrency < 1:
        fail("feedback.concurrency", "expected at least 1")
    if feedback.max_attempts is not None and feedback.max_attempts < 1:
        fail("feedback.max_attempts", "expected at least 1 (or leave it out to retry forever)")
    if feedback.rate.count < 1:
        fail("feedback.rate", "expected at least one call per period")
    for name in ("salesmanago", "ontraport"):
        table = getattr(feedback, name)
        if table is None:
            continue
        for outcome, tag in table.tags(name).items():
            problem = _sell_text_problem(tag, "a tag")
            if problem is not None:
                fail(f"feedback.{name}.{outcome}", problem)
        if table.field:
            problem = _sell_text_problem(table.field, "a custom field name")
            if problem is not None:
                fail(f"feedback.{name}.field", problem)


def _sell_text_problem(text: str, what: str) -> str | None:
    """Why `text` cannot be a Sell tag or custom field name (None when it can; "" is "none" and always fine)."""
    if not text:
        return None
    if text != text.strip():
        return f"expected {what} without surrounding blanks, got {text!r}"
    if len(text) > MAX_SELL_TEXT:
        return f"expected {what} of at most {MAX_SELL_TEXT} characters"
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp") for c in text):
        return f"expected {what} of printable characters, got {text!r}"
    return None


_CURRENCY = re.compile(r"^[A-Z]{3}$")
MAX_ONTRAPORT_ID = 2**31 - 1  # Ontraport's ids are 32-bit


def _validate_ontraport_history(sink: OntraportConfig, prefix: str, fail: Callable[[str, str], None]) -> None:
    """The purchases and notes tables of an enabled Ontraport destination."""
    purchases, notes = sink.purchases, sink.notes
    if not purchases.deal_product.strip() or len(purchases.deal_product) > 255:
        fail(f"{prefix}.purchases.deal_product", "expected a product name of 1 to 255 characters")
    if purchases.currency and not _CURRENCY.match(purchases.currency):
        fail(
            f"{prefix}.purchases.currency",
            f'expected an ISO 4217 code such as "USD" (or ""), got {purchases.currency!r}',
        )
    if purchases.referrer_field != purchases.referrer_field.strip():
        fail(f"{prefix}.purchases.referrer_field", "a Sell custom field name without surrounding blanks")
    if purchases.product_limit < 1:
        fail(f"{prefix}.purchases.product_limit", "expected at least 1")
    if not 1 <= notes.author <= MAX_ONTRAPORT_ID:
        fail(f"{prefix}.notes.author", f"expected an Ontraport user id (1 to {MAX_ONTRAPORT_ID})")


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_url(url: str, *, key: str, source: str) -> None:
    """An http(s) URL; plain http only on loopback, so credentials never cross a network unencrypted."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"expected an http(s) URL, got {url!r}", path=source, key=key)
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ConfigError(
            f"plain http is only allowed on loopback; use https for {parts.hostname}", path=source, key=key
        )


def loopback_port(url: str) -> int | None:
    """The port of a loopback URL (for the sandbox), or None when the URL is not on loopback."""
    parts = urlsplit(url)
    if parts.hostname is None or not is_loopback_host(parts.hostname):
        return None
    if parts.port is not None:
        return parts.port
    return 443 if parts.scheme == "https" else 80
