"""Typed settings read from the environment; bad values stop the process with a clear message."""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
from ipaddress import IPv4Network, IPv6Network, ip_address
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PLACEHOLDER_SECRETS = frozenset(
    {"", "changeme", "change-me", "change_me", "secret", "dev", "development", "please-change"}
)
MIN_SECRET_LENGTH = 32
NOTE_KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
NOTE_KEY_BYTES = 32


class SettingsError(Exception):
    """The environment holds a setting the app cannot run with."""


class Settings(BaseSettings):
    """Every setting of the app. Names are `OPENCONSULT_<FIELD>`, except the two URLs."""

    model_config = SettingsConfigDict(
        env_prefix="OPENCONSULT_", frozen=True, extra="ignore", populate_by_name=True
    )

    env: Literal["development", "production", "test"] = "development"
    secret_key: SecretStr | None = None
    data_dir: Path = Path("data")
    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    redis_url: str | None = Field(default=None, validation_alias="REDIS_URL")
    redis_key_prefix: str = "openconsult:"
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    public_url: str | None = None
    # Many nodes (with REDIS_URL): this process's id in the node registry (random per start
    # when unset), the URL other processes and the proxy reach it at, and how long a drain
    # lets live visits go on before the process exits anyway.
    node_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    node_url: str | None = Field(default=None, pattern=r"^https?://[^|\s]+$")
    drain_timeout_seconds: float = Field(default=300.0, ge=0, le=86400)
    session_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    session_max_hours: int = Field(default=12, ge=1, le=24 * 7)
    login_max_failures: int = Field(default=5, ge=1, le=100)
    login_lockout_minutes: int = Field(default=15, ge=1, le=24 * 60)
    login_max_per_address: int = Field(default=30, ge=1, le=10_000)
    login_address_window_minutes: int = Field(default=15, ge=1, le=24 * 60)
    # Scheduling: join-link window, reminders, automatic no-show
    join_opens_minutes: int = Field(default=30, ge=0, le=24 * 60)
    join_closes_minutes: int = Field(default=120, ge=1, le=24 * 60)
    reminder_offsets_minutes: list[Annotated[int, Field(ge=1, le=60 * 24 * 30)]] = Field(
        default=[24 * 60, 60], max_length=10
    )
    noshow_after_minutes: int = Field(default=30, ge=1, le=24 * 60)
    noshow_poll_seconds: float = Field(default=60.0, gt=0, le=3600)
    # Email: the outbox sender delivers through this SMTP server. None: no server; outside
    # production the emails are kept in the development mailbox (/dev/mailbox) instead.
    smtp_host: str | None = Field(default=None, max_length=253)
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    mail_from: str = "OpenConsult <no-reply@openconsult.invalid>"
    outbox_poll_seconds: float = Field(default=5.0, gt=0, le=3600)
    outbox_max_attempts: int = Field(default=8, ge=1, le=100)
    outbox_backoff_seconds: float = Field(default=30.0, ge=0, le=86400)
    background_tasks: bool = True
    # Text messages: a Twilio-compatible REST API (base URL, account, token, sender number).
    # No URL: outside production the texts are kept in the development mailbox (/dev/mailbox).
    sms_url: str | None = Field(default=None, pattern=r"^https?://[^\s]+$")
    sms_account: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    sms_token: SecretStr | None = None
    sms_from: str | None = Field(default=None, min_length=2, max_length=40)
    sms_timeout_seconds: float = Field(default=15.0, gt=0, le=60)

    @field_validator("smtp_host", "sms_url", "sms_account", "sms_from", mode="before")
    @classmethod
    def _blank_host_is_none(cls, value: object) -> object:
        """`OPENCONSULT_SMTP_HOST=` (empty) means no SMTP server, like leaving it unset."""
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @model_validator(mode="after")
    def _check_sms(self) -> Settings:
        """An SMS provider needs its account, token and sender; the token is never shown."""
        if self.sms_url is None:
            return self
        missing = [
            name
            for name, value in (
                ("OPENCONSULT_SMS_ACCOUNT", self.sms_account),
                ("OPENCONSULT_SMS_TOKEN", self.sms_token and self.sms_token.get_secret_value()),
                ("OPENCONSULT_SMS_FROM", self.sms_from),
            )
            if not value
        ]
        if missing:
            raise ValueError(f"OPENCONSULT_SMS_URL needs {', '.join(missing)}")
        return self

    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, le=100 * 1024 * 1024)
    cookie_secure: bool | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Waiting room: identity checks per link, and how long an away patient keeps their place
    identity_max_failures: int = Field(default=5, ge=1, le=50)
    waiting_grace_seconds: float = Field(default=120.0, gt=0, le=3600)
    presence_beat_seconds: float = Field(default=20.0, gt=0, le=600)
    # On-demand (walk-in) requests: per client address per hour, and open at once per contact
    on_demand_per_address_hour: int = Field(default=10, ge=1, le=10_000)
    on_demand_open_per_contact: int = Field(default=1, ge=1, le=20)
    trusted_proxies: Annotated[list[IPv4Network | IPv6Network], NoDecode] = Field(
        default_factory=list
    )

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_networks(cls, value: object) -> object:
        """Comma-separated addresses or networks: `10.0.0.5, 172.18.0.0/16`."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    # WebRTC: comma-separated URIs. Empty means no STUN/TURN (never a public fallback).
    stun_urls: Annotated[tuple[str, ...], NoDecode] = ()
    turn_urls: Annotated[tuple[str, ...], NoDecode] = ()
    turn_secret: SecretStr | None = None
    turn_ttl_seconds: int = Field(default=3600, ge=60, le=24 * 3600)
    # Test/development only: the relay also offers 127.0.0.1, which aioice skips.
    rtc_loopback: bool = False
    # The relay's media port(s): one UDP port every peer connection of this node shares
    # (OPENCONSULT_RTC_UDP_PORT=10000), or a range to pick from (OPENCONSULT_RTC_UDP_PORTS=
    # 40000-40099). Neither: a random port per connection (a laptop, a test).
    rtc_udp_port: int | None = Field(default=None, ge=1, le=65535)
    rtc_udp_ports: str | None = Field(default=None, pattern=r"^\d{1,5}-\d{1,5}$")
    # The addresses the relay's host candidates announce (1:1 NAT, containers, cloud):
    # comma-separated IPs, in place of the interfaces' own addresses.
    rtc_announced_ips: Annotated[tuple[str, ...], NoDecode] = ()
    # Every participant's media through TURN (the browsers get iceTransportPolicy "relay").
    rtc_relay_only: bool = False
    # How the relay forwards between legs that agree on a codec: RTP packets with rewritten
    # headers (packet), or frames reassembled and re-packetized (frame). Codec mismatches
    # transcode either way.
    relay_forwarding: Literal["packet", "frame"] = "packet"
    # Waiting patients hold a warm connection to the relay (ICE and DTLS done, nothing routed),
    # so the visit starts the moment they are admitted. Off: they connect after the admit.
    warm_waiting: bool = True
    # Operations: log lines as text or one JSON object each; a bearer token /metrics asks for
    # (unset: /metrics answers only requests from loopback or OPENCONSULT_TRUSTED_PROXIES).
    log_format: Literal["text", "json"] = "text"
    metrics_token: SecretStr | None = None

    @field_validator("stun_urls", "turn_urls", "rtc_announced_ips", mode="before")
    @classmethod
    def _split_urls(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("stun_urls")
    @classmethod
    def _check_stun(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for url in value:
            if not url.startswith(("stun:", "stuns:")):
                raise ValueError(f"not a STUN URI (stun: or stuns:): {url}")
        return value

    @field_validator("turn_urls")
    @classmethod
    def _check_turn(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for url in value:
            if not url.startswith(("turn:", "turns:")):
                raise ValueError(f"not a TURN URI (turn: or turns:): {url}")
        return value

    @model_validator(mode="after")
    def _check_rtc(self) -> Settings:
        if self.turn_urls and (
            self.turn_secret is None or not self.turn_secret.get_secret_value().strip()
        ):
            raise ValueError(
                "OPENCONSULT_TURN_URLS needs OPENCONSULT_TURN_SECRET (use-auth-secret)"
            )
        if self.rtc_loopback and self.env == "production":
            raise ValueError("OPENCONSULT_RTC_LOOPBACK is for tests and development only")
        if self.rtc_udp_ports is not None:
            low, high = (int(part) for part in self.rtc_udp_ports.split("-"))
            if not 1 <= low <= high <= 65535:
                raise ValueError(
                    f"OPENCONSULT_RTC_UDP_PORTS {self.rtc_udp_ports!r}: want 'low-high' with "
                    "1 <= low <= high <= 65535 (e.g. 40000-40099)"
                )
            if self.rtc_udp_port is not None:
                raise ValueError(
                    "set OPENCONSULT_RTC_UDP_PORT (one port for every connection) or "
                    "OPENCONSULT_RTC_UDP_PORTS (a port per connection), not both"
                )
        return self

    @field_validator("rtc_announced_ips")
    @classmethod
    def _check_announced_ips(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for text in value:
            try:
                address = ip_address(text)
            except ValueError:
                raise ValueError(f"not an IP address: {text!r}") from None
            if address.version != 4:
                raise ValueError(
                    f"{text}: the relay's media sockets are IPv4; announce an IPv4 address"
                )
        return value

    # Consult-note encryption: "keyid:base64key,..." (AES-256, 32-byte keys) and the one that
    # encrypts new text. Development and test keep a generated key in the data folder.
    note_keys: SecretStr | None = None
    note_active_key: str | None = Field(default=None, max_length=32)
    max_note_chars: int = Field(default=50_000, ge=100, le=1_000_000)
    # Minimum necessary: how long a "break the glass" access to a record lasts.
    break_glass_minutes: int = Field(default=60, ge=1, le=24 * 60)
    # Photos and documents a patient adds to a visit (checked by content, sealed at rest).
    attachment_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, le=100 * 1024 * 1024)
    attachments_per_appointment: int = Field(default=10, ge=1, le=100)
    # A photo larger than this many pixels is refused before it is decoded (decompression bomb).
    attachment_max_pixels: int = Field(default=40_000_000, ge=10_000, le=200_000_000)

    @model_validator(mode="after")
    def _check_note_keys(self) -> Settings:
        if self.note_keys is None:
            if self.env == "production":
                raise ValueError(
                    "OPENCONSULT_NOTE_KEYS is missing; production needs at least one "
                    "'keyid:base64key' (python -m app new-note-key prints one)"
                )
            return self
        keys = parse_note_keys(self.note_keys.get_secret_value())
        if self.note_active_key is not None and self.note_active_key not in keys:
            raise ValueError(f"OPENCONSULT_NOTE_ACTIVE_KEY {self.note_active_key!r} is not listed")
        if self.note_active_key is None and len(keys) > 1:
            raise ValueError("several note keys are listed: name the active one")
        return self

    # Audit chain: "keyid:base64key,..." HMAC-SHA256 keys kept outside the database (the last one
    # listed signs new events; keep older ones listed so older events still verify), and where
    # and how often the chain's head is published. Development keeps a generated key in the data
    # folder; production requires them.
    audit_keys: SecretStr | None = None
    audit_checkpoint_file: Path | None = None
    audit_checkpoint_seconds: float = Field(default=300.0, ge=1, le=24 * 3600)

    @model_validator(mode="after")
    def _check_production_secret(self) -> Settings:
        if self.env == "production":
            value = self.secret_key.get_secret_value() if self.secret_key else ""
            if value.strip().lower() in PLACEHOLDER_SECRETS:
                raise ValueError(
                    "OPENCONSULT_SECRET_KEY is missing or a placeholder; production needs a "
                    f"random value of at least {MIN_SECRET_LENGTH} characters "
                    '(python -c "import secrets; print(secrets.token_urlsafe(48))")'
                )
            if len(value) < MIN_SECRET_LENGTH:
                raise ValueError(
                    f"OPENCONSULT_SECRET_KEY is too short: at least {MIN_SECRET_LENGTH} characters"
                )
        return self

    @model_validator(mode="after")
    def _check_audit_keys(self) -> Settings:
        if self.audit_keys is None:
            if self.env == "production":
                raise ValueError(
                    "OPENCONSULT_AUDIT_KEYS is missing; production needs at least one "
                    "'keyid:base64key' kept outside the database "
                    "(python -m app new-audit-key prints one)"
                )
            return self
        parse_keys(self.audit_keys.get_secret_value(), "audit")
        return self

    @property
    def resolved_database_url(self) -> str:
        """The SQLAlchemy async URL: the configured one, or a SQLite file in the data folder."""
        if not self.database_url:
            return f"sqlite+aiosqlite:///{self.data_dir / 'openconsult.db'}"
        url = self.database_url
        for plain in ("postgresql://", "postgres://"):
            if url.startswith(plain):
                return "postgresql+asyncpg://" + url[len(plain) :]
        if url.startswith("sqlite:///"):
            return "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
        return url

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @property
    def base_url(self) -> str:
        """Where browsers reach the app; used in links sent by email."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    def serving_at(self, host: str, port: int) -> Settings:
        """These settings for a server bound to host:port (`serve --port`): links sent by email
        follow the address served, unless OPENCONSULT_PUBLIC_URL names another."""
        return self.model_copy(update={"host": host, "port": port})

    @property
    def dev_mailbox(self) -> bool:
        """Emails are kept for reading at /dev/mailbox: no SMTP server, and not production."""
        return self.smtp_host is None and self.env != "production"

    @property
    def sms_dev_mailbox(self) -> bool:
        """Texts are kept for reading at /dev/mailbox: no SMS provider, and not production."""
        return self.sms_url is None and self.env != "production"

    @property
    def secure_cookies(self) -> bool:
        if self.cookie_secure is not None:
            return self.cookie_secure
        return self.env == "production" or self.base_url.startswith("https://")

    @property
    def note_keyring(self) -> tuple[dict[str, bytes], str]:
        """The note keys by id and the id of the active one; `load_settings` guarantees them."""
        if self.note_keys is None:
            raise SettingsError("note keys not resolved; build settings with load_settings()")
        keys = parse_note_keys(self.note_keys.get_secret_value())
        return keys, self.note_active_key or next(iter(keys))

    @property
    def audit_keyring(self) -> dict[str, bytes]:
        """The audit keys by id, oldest first; `load_settings` guarantees them."""
        if self.audit_keys is None:
            raise SettingsError("audit keys not resolved; build settings with load_settings()")
        return parse_keys(self.audit_keys.get_secret_value(), "audit")

    @property
    def checkpoint_path(self) -> Path:
        """Where the audit chain's signed checkpoints are appended."""
        return self.audit_checkpoint_file or self.data_dir / "audit_checkpoints.jsonl"

    @property
    def secret(self) -> str:
        """The signing secret; `load_settings` guarantees it is set."""
        if self.secret_key is None:
            raise SettingsError("secret key not resolved; build settings with load_settings()")
        return self.secret_key.get_secret_value()


def parse_note_keys(value: str) -> dict[str, bytes]:
    """'keyid:base64key,...' as a dict; a ValueError names the first bad entry."""
    return parse_keys(value, "note")


def parse_keys(value: str, what: str) -> dict[str, bytes]:
    """'keyid:base64key,...' (32-byte keys) as a dict in the order listed."""
    keys: dict[str, bytes] = {}
    for position, entry in enumerate(value.replace("\n", ",").split(","), start=1):
        entry = entry.strip()
        if not entry:
            continue
        key_id, sep, encoded = entry.partition(":")
        if not sep or not NOTE_KEY_ID.match(key_id):
            raise ValueError(
                f"{what} key {position} is not 'keyid:base64key' (id: A-Z a-z 0-9 _ . -)"
            )
        try:
            raw = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"{what} key {key_id!r} is not valid base64") from None
        if len(raw) != NOTE_KEY_BYTES:
            raise ValueError(
                f"{what} key {key_id!r} must be {NOTE_KEY_BYTES} bytes, not {len(raw)}"
            )
        if key_id in keys:
            raise ValueError(f"{what} key {key_id!r} is listed twice")
        keys[key_id] = raw
    if not keys:
        raise ValueError(f"no {what} key given")
    return keys


def new_note_key(key_id: str | None = None) -> str:
    """A fresh 'keyid:base64key' entry."""
    key_id = key_id or f"k{secrets.token_hex(4)}"
    return f"{key_id}:{base64.b64encode(secrets.token_bytes(NOTE_KEY_BYTES)).decode()}"


def development_note_keys_path(data_dir: Path) -> Path:
    return data_dir / "note_keys"


def development_audit_keys_path(data_dir: Path) -> Path:
    return data_dir / "audit_keys"


def _development_audit_keys(data_dir: Path) -> str:
    """Read, or create once, the development audit keys (one per line; the last signs)."""
    path = development_audit_keys_path(data_dir)
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        # Written whole under a temporary name, then linked into place: processes starting
        # together all end up with the first one's key, never a half-written file.
        staging = data_dir / f".audit_keys.{secrets.token_hex(4)}"
        staging.write_text(new_note_key("dev1") + "\n")
        staging.chmod(0o600)
        try:
            os.link(staging, path)
        except FileExistsError:
            pass
        finally:
            staging.unlink()
    return ",".join(line.strip() for line in path.read_text().splitlines() if line.strip())


def _development_note_keys(data_dir: Path) -> tuple[str, str]:
    """Read, or create once, the development note keys (one per line; the last is active)."""
    path = development_note_keys_path(data_dir)
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(new_note_key("dev1") + "\n")
        path.chmod(0o600)
    lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    return ",".join(lines), lines[-1].partition(":")[0] if lines else ""


def _development_secret(data_dir: Path) -> str:
    """Read, or create once, the development secret kept in the data folder."""
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    path.write_text(value + "\n")
    path.chmod(0o600)
    return value


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment (and overrides); raises SettingsError with a readable text."""
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "settings"
            name = f"OPENCONSULT_{where.upper()}" if where != "settings" else where
            lines.append(f"  {name}: {err['msg']}")
        raise SettingsError("invalid settings:\n" + "\n".join(lines)) from None
    if settings.secret_key is None:
        secret = _development_secret(settings.data_dir)
        settings = settings.model_copy(update={"secret_key": SecretStr(secret)})
    if settings.note_keys is None:
        # Only reached outside production (the validator refuses production without keys).
        keys, active = _development_note_keys(settings.data_dir)
        active = settings.note_active_key or active
        try:
            if active not in parse_note_keys(keys):
                raise ValueError(f"active note key {active!r} is not listed")
        except ValueError as exc:
            path = development_note_keys_path(settings.data_dir)
            raise SettingsError(f"invalid development note keys in {path}: {exc}") from None
        settings = settings.model_copy(
            update={"note_keys": SecretStr(keys), "note_active_key": active}
        )
    if settings.audit_keys is None:
        # Only reached outside production, like the note keys.
        audit_keys = _development_audit_keys(settings.data_dir)
        try:
            parse_keys(audit_keys, "audit")
        except ValueError as exc:
            path = development_audit_keys_path(settings.data_dir)
            raise SettingsError(f"invalid development audit keys in {path}: {exc}") from None
        settings = settings.model_copy(update={"audit_keys": SecretStr(audit_keys)})
    return settings


def setting_names() -> set[str]:
    """Every environment variable the app reads."""
    names = set()
    for field, info in Settings.model_fields.items():
        alias = info.validation_alias
        names.add(alias if isinstance(alias, str) else f"OPENCONSULT_{field.upper()}")
    return names
