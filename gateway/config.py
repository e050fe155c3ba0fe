"""Configuration: one TOML file, every key overridable by `LAPOR_<SECTION>__<KEY>` environment variables.

The loader is strict on purpose: an operator who mistypes `auth_tokne` should learn it at start, by
name, rather than wonder later why signatures fail. Secrets are wrapped in `Secret` so they cannot
leak through `repr`, logs or error messages.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from gateway.affinity import check_setting
from gateway.pacing import DEFAULT_CHANNEL_RATES, DEFAULT_RECIPIENT_RATES, Pacer, parse_rates

ENV_PREFIX = "LAPOR_"
T = typing.TypeVar("T")


class ConfigError(Exception):
    """A configuration problem, always naming the key it is about."""


class Secret:
    """A string that never shows itself: `str()`/`repr()` give `'***'`; use `.reveal()`."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret('***')" if self._value else "Secret('')"

    __str__ = __repr__


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = ""
    max_body_bytes: int = 65536
    """Largest webhook body accepted (providers send far less; more is an attack or a bug)."""
    request_timeout_seconds: float = 30.0
    """A webhook body not fully received by then is refused with 408 (a stalled client holds nothing)."""
    cpu_affinity: str = "auto"
    """Where the threads run: "auto" keeps a SQLite gateway's on one CPU (see gateway/affinity.py);
    "off"; or a CPU number, one per process when several run on one machine."""

    def __post_init__(self) -> None:
        problem = check_setting(self.cpu_affinity)
        if problem:
            raise ConfigError(problem)


@dataclass(frozen=True)
class DatabaseConfig:
    url: str = "sqlite+aiosqlite:///var/lapor.db"
    pool_size: int = 10
    sqlite_synchronous: str = "FULL"
    """FULL survives power loss; NORMAL only process crashes. Group commit keeps FULL affordable."""


@dataclass(frozen=True)
class IntakeConfig:
    keywords: list[str] = field(default_factory=lambda: ["LaporHendi", "LaporSemar", "Lapor"])
    default_region: str = "ID"
    reminder_minutes: int = 30
    expire_hours: int = 24
    max_batch: int = 256
    """Messages committed together at most (group commit under load)."""
    writers: int = 1
    """Ingest transactions in flight per process. One is fastest on SQLite (one file lock) and on
    PostgreSQL too (measured: 1,100 msg/s with 1, 800 with 2, 500 with 4 in one process): under load
    one writer commits big batches, several split them, and each transaction costs ~12 round trips of
    CPU. More only pay against a distant database whose round trips dominate."""
    sender_per_minute: float = 20.0
    """Messages per minute one sender may send before the bot stops answering each one (0: no limit)."""
    sender_burst: int = 10
    """Messages a sender may send at once before that rate applies."""

    def __post_init__(self) -> None:
        if self.writers < 1 or self.max_batch < 1:
            raise ConfigError("intake.writers and intake.max_batch must be 1 or more")


@dataclass(frozen=True)
class OutboxConfig:
    max_attempts: int = 8
    base_delay_seconds: float = 2.0
    max_delay_seconds: float = 900.0
    lease_seconds: float = 60.0
    batch_size: int = 200
    """Rows claimed in one transaction at most. Claims take what the free slots and the queue ahead
    of them have room for (concurrency + concurrency / 2 at most); a claim on PostgreSQL costs several
    round trips, so a small cap, not the rows, would bound msg/s (50 held it near 50 / claim time)."""
    concurrency: int = 100
    """Sends in flight per process. Each waits on the provider, so this bounds msg/s at about
    concurrency / provider latency: 20 gave ~200 msg/s against a 50 ms provider (bench/drain.py)."""
    poll_seconds: float = 1.0
    channel_rates: list[str] = field(default_factory=list)
    """`channel=messages_per_second` per process, on top of the defaults in gateway.pacing
    (telegram=30, twilio_whatsapp=80, whatsapp_cloud=80); `twilio_sms=0.5`-style slower values too."""
    recipient_rates: list[str] = field(default_factory=list)
    """`channel=messages_per_second` to one recipient, on top of the default telegram=1."""

    def __post_init__(self) -> None:
        for key in ("channel_rates", "recipient_rates"):
            try:
                parse_rates(getattr(self, key), key)
            except ValueError as exc:
                raise ConfigError(str(exc)) from None

    def pacer(self) -> Pacer:
        return Pacer(
            {**DEFAULT_CHANNEL_RATES, **parse_rates(self.channel_rates, "channel_rates")},
            {**DEFAULT_RECIPIENT_RATES, **parse_rates(self.recipient_rates, "recipient_rates")},
        )


@dataclass(frozen=True)
class WorkerConfig:
    enabled: bool = True
    """Run the outbox dispatcher, conversation timers and media downloads in `lapor serve` itself.
    False on web-only processes: then `lapor worker` processes do that work."""


@dataclass(frozen=True)
class WorkflowConfig:
    """Deadlines in working days (Perwal Semarang 5/2023, SP4N-LAPOR!) and the escalation job."""

    verify_days: int = 3
    single_days: int = 5
    coordination_days: int = 10
    agency_days: int = 30
    close_after_days: int = 10
    reminder_hours: float = 24.0
    admin_after_days: int = 2
    rating_days: int = 7
    joint_leave: bool = True
    collective_leave: list[str] = field(default_factory=list)
    working_days: list[str] = field(default_factory=list)
    escalation_poll_seconds: float = 60.0
    staff_telegram_channel: str = "telegram"
    staff_whatsapp_channel: str = "whatsapp_cloud"


@dataclass(frozen=True)
class PrivacyConfig:
    key: Secret = field(default_factory=lambda: Secret(""))
    """Encrypts reporters' contacts; empty: a random key is created once in `key_file`."""
    previous_key: Secret = field(default_factory=lambda: Secret(""))
    """The key before a rotation: still decrypts, never encrypts."""
    key_file: str = "var/privacy.key"


@dataclass(frozen=True)
class DashboardConfig:
    enabled: bool = True
    session_secret: Secret = field(default_factory=lambda: Secret(""))
    admin_username: str = "admin"


@dataclass(frozen=True)
class Open311Config:
    """The Open311 GeoReport v2 API under /open311/v2/ (dashboard/open311.py)."""

    enabled: bool = True
    api_keys: list[str] = field(default_factory=list)
    """Keys allowed to POST service requests (`client=key` or a bare key); reading needs none."""
    jurisdiction_id: str = "semarangkota.go.id"
    notify_channel: str = ""
    """Adapter that sends status messages to a request's `phone` (e.g. twilio_sms); empty: none."""


@dataclass(frozen=True)
class Open311UpstreamConfig:
    """Forwarding complaints to an upstream Open311 GeoReport v2 server (SP4N-LAPOR!, the province):
    gateway/upstream.py. Off until `endpoint` and `api_key` are set."""

    endpoint: str = ""
    """The upstream's GeoReport v2 base URL, e.g. https://open311.example.go.id/open311/v2"""
    api_key: Secret = field(default_factory=lambda: Secret(""))
    jurisdiction_id: str = ""
    """Sent with every call when the upstream serves several jurisdictions; empty: not sent."""
    categories: list[str] = field(default_factory=list)
    """Our category slugs whose complaints are forwarded (once verified and forwarded here)."""
    service_codes: list[str] = field(default_factory=list)
    """`our_category=their_service_code` pairs; a category without a pair is sent as its own slug."""
    poll_seconds: float = 300.0
    """How often each forwarded request's status is pulled back from the upstream."""
    timeout_seconds: float = 30.0
    name: str = "SP4N-LAPOR!"
    """How the upstream is named in notes the citizen reads."""
    share_reporter_contact: bool = False
    """Send the reporter's name and phone number upstream; off: never any personal data."""

    def __post_init__(self) -> None:
        if self.endpoint and not self.endpoint.startswith(("https://", "http://")):
            raise ConfigError("open311_upstream.endpoint must be an http(s):// URL")
        for pair in self.service_codes:
            ours, _, theirs = pair.partition("=")
            if not ours.strip() or not theirs.strip():
                raise ConfigError(f"open311_upstream.service_codes: {pair!r} is not our_category=their_code")
        if self.poll_seconds <= 0 or self.timeout_seconds <= 0:
            raise ConfigError("open311_upstream.poll_seconds and timeout_seconds must be more than 0")

    @property
    def enabled(self) -> bool:
        return bool(self.endpoint and self.api_key)

    def service_code(self, category: str) -> str:
        for pair in self.service_codes:
            ours, _, theirs = pair.partition("=")
            if ours.strip() == category:
                return theirs.strip()
        return category


@dataclass(frozen=True)
class SimulatorConfig:
    enabled: bool = True


@dataclass(frozen=True)
class MediaConfig:
    directory: str = "var/media"
    max_bytes: int = 10 * 1024 * 1024


@dataclass(frozen=True)
class LoggingConfig:
    level: str = "INFO"
    json: bool = False


@dataclass(frozen=True)
class TwilioConfig:
    account_sid: str = ""
    auth_token: Secret = field(default_factory=lambda: Secret(""))
    sms_from: str = ""
    whatsapp_from: str = ""
    messaging_service_sid: str = ""
    api_base: str = "https://api.twilio.com"
    validate_signatures: bool = True
    whatsapp_templates: list[str] = field(default_factory=list)
    """`kind=ContentSid` pairs (`*` for any kind): WhatsApp messages of that kind go out as the approved
    template when the 24-hour customer service window is not known to be open."""

    @property
    def enabled(self) -> bool:
        return bool(self.account_sid and self.auth_token)


@dataclass(frozen=True)
class WhatsAppCloudConfig:
    phone_number_id: str = ""
    access_token: Secret = field(default_factory=lambda: Secret(""))
    app_secret: Secret = field(default_factory=lambda: Secret(""))
    verify_token: Secret = field(default_factory=lambda: Secret(""))
    api_base: str = "https://graph.facebook.com/v21.0"
    templates: list[str] = field(default_factory=list)
    """`kind=template_name` pairs (`*` for any kind), sent outside the 24-hour window; see Twilio's."""
    template_language: str = "id"

    @property
    def enabled(self) -> bool:
        return bool(self.phone_number_id and self.access_token and self.app_secret)


@dataclass(frozen=True)
class TelegramConfig:
    bot_token: Secret = field(default_factory=lambda: Secret(""))
    secret_token: Secret = field(default_factory=lambda: Secret(""))
    api_base: str = "https://api.telegram.org/bot"

    @property
    def enabled(self) -> bool:
        return bool(self.bot_token)


@dataclass(frozen=True)
class TwitterConfig:
    bearer_token: Secret = field(default_factory=lambda: Secret(""))
    consumer_key: str = ""
    consumer_secret: Secret = field(default_factory=lambda: Secret(""))
    access_token: str = ""
    access_token_secret: Secret = field(default_factory=lambda: Secret(""))
    hashtags: list[str] = field(default_factory=lambda: ["LaporHendi", "LaporSemar"])
    poll_seconds: int = 60
    """Recent-search polling interval; 0 turns polling off (Account Activity webhook only)."""
    api_base: str = "https://api.x.com"
    account_id: str = ""
    """The numeric user id of the city's account: its own tweets and DMs are never intake."""
    account_handle: str = ""
    """The account's @handle (without @): mentions of it are polled for and stripped from complaints."""
    reply_mode: str = "dm"
    """Where questions for missing details go: "dm" (private, the default) or "reply" (a fixed,
    personal-data-free reply in the citizen's thread). Acknowledgements are always public replies."""

    def __post_init__(self) -> None:
        if self.reply_mode not in ("dm", "reply"):
            raise ConfigError(f'channels.twitter.reply_mode must be "dm" or "reply", got {self.reply_mode!r}')
        if self.poll_seconds < 0:
            raise ConfigError("channels.twitter.poll_seconds must be 0 (off) or more")

    @property
    def enabled(self) -> bool:
        return bool(self.bearer_token or (self.consumer_key and self.access_token))


@dataclass(frozen=True)
class KannelConfig:
    sendsms_url: str = ""
    username: str = ""
    password: Secret = field(default_factory=lambda: Secret(""))
    inbound_token: Secret = field(default_factory=lambda: Secret(""))
    shortcode: str = "1708"

    @property
    def enabled(self) -> bool:
        return bool(self.sendsms_url and self.inbound_token)


@dataclass(frozen=True)
class ChannelsConfig:
    twilio: TwilioConfig = field(default_factory=TwilioConfig)
    whatsapp_cloud: WhatsAppCloudConfig = field(default_factory=WhatsAppCloudConfig)
    telegram: TelegramConfig = field(default_factory=TelegramConfig)
    twitter: TwitterConfig = field(default_factory=TwitterConfig)
    kannel: KannelConfig = field(default_factory=KannelConfig)


@dataclass(frozen=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    intake: IntakeConfig = field(default_factory=IntakeConfig)
    outbox: OutboxConfig = field(default_factory=OutboxConfig)
    worker: WorkerConfig = field(default_factory=WorkerConfig)
    dashboard: DashboardConfig = field(default_factory=DashboardConfig)
    workflow: WorkflowConfig = field(default_factory=WorkflowConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    simulator: SimulatorConfig = field(default_factory=SimulatorConfig)
    open311: Open311Config = field(default_factory=Open311Config)
    open311_upstream: Open311UpstreamConfig = field(default_factory=Open311UpstreamConfig)
    media: MediaConfig = field(default_factory=MediaConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    channels: ChannelsConfig = field(default_factory=ChannelsConfig)

    @property
    def public_url(self) -> str:
        """The URL providers reach us at (Twilio signs it); falls back to the bind address."""
        url = self.server.public_url or f"http://{self.server.host}:{self.server.port}"
        return url.rstrip("/")


def load_config(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Read the TOML file (if any), apply environment overrides, validate everything."""
    env = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    for name, value in env.items():
        if name.startswith(ENV_PREFIX) and "__" in name:
            _apply_env(data, name, value)
    return _build(Config, data, "")


def _apply_env(data: dict[str, Any], name: str, value: str) -> None:
    parts = [p.lower() for p in name[len(ENV_PREFIX) :].split("__")]
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"environment variable {name} overrides {part}, which is not a section")
        node = child
    node[parts[-1]] = _EnvString(value)


class _EnvString(str):
    """Marks a value that came from the environment, so it is coerced from text rather than rejected."""


def _build(cls: type[T], data: Mapping[str, Any], prefix: str) -> T:
    if not isinstance(data, Mapping):
        raise ConfigError(f"[{prefix.rstrip('.')}] must be a table")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for key in data:
        if key not in known:
            where = f"[{prefix.rstrip('.')}]" if prefix else "the top level"
            raise ConfigError(f"unknown config key {prefix}{key!s} in {where}")
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        kwargs[key] = _coerce(hints[key], value, f"{prefix}{key}")
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, key: str) -> Any:
    from_env = isinstance(value, _EnvString)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, key + ".")  # type: ignore[arg-type]
    if hint is Secret:
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a string")
        return Secret(str(value))
    if hint is bool:
        if from_env:
            lowered = value.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ConfigError(f"{key} must be true or false, got {value!r}")
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false")
        return value
    if hint in (int, float):
        if from_env:
            try:
                return hint(value)
            except ValueError:
                raise ConfigError(f"{key} must be a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key} must be a number")
        if hint is int and not isinstance(value, int):
            raise ConfigError(f"{key} must be a whole number")
        return hint(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a string")
        return str(value)
    origin = typing.get_origin(hint)
    if origin is list:
        if from_env:
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{key} must be a list of strings")
        return [str(v) for v in value]
    if isinstance(hint, types.UnionType):  # pragma: no cover - no such keys yet
        raise ConfigError(f"{key}: unsupported type")
    raise ConfigError(f"{key}: unsupported type {hint!r}")


def validate(config: Config) -> list[str]:
    """Problems that only make sense across keys; returned so `serve` can refuse to start."""
    problems: list[str] = []
    url = config.database.url
    if not (url.startswith("sqlite") or url.startswith("postgresql")):
        problems.append(f"database.url must be sqlite+aiosqlite:// or postgresql+asyncpg://, got {url!r}")
    if config.database.sqlite_synchronous.upper() not in ("FULL", "NORMAL", "EXTRA"):
        problems.append("database.sqlite_synchronous must be FULL, NORMAL or EXTRA")
    tw = config.channels.twilio
    if tw.account_sid and not tw.auth_token:
        problems.append("channels.twilio.auth_token is required when channels.twilio.account_sid is set")
    if tw.enabled and not (tw.sms_from or tw.messaging_service_sid or tw.whatsapp_from):
        problems.append("channels.twilio.sms_from (or messaging_service_sid) is required to send SMS")
    if config.outbox.max_attempts < 1:
        problems.append("outbox.max_attempts must be at least 1")
    wf = config.workflow
    for key in ("verify_days", "single_days", "coordination_days", "agency_days", "close_after_days"):
        if getattr(wf, key) < 1:
            problems.append(f"workflow.{key} must be at least 1 working day")
    for key in ("collective_leave", "working_days"):
        for value in getattr(wf, key):
            try:
                date.fromisoformat(value)
            except ValueError:
                problems.append(f"workflow.{key}: {value!r} is not a date (YYYY-MM-DD)")
    return problems


def secret_values(config: object) -> list[str]:
    """Every configured secret, so the log filter can mask it wherever it might appear."""
    found: list[str] = []
    if isinstance(config, Secret):
        return [config.reveal()] if config else []
    if dataclasses.is_dataclass(config):
        for item in dataclasses.fields(config):
            found.extend(secret_values(getattr(config, item.name)))
    return found
