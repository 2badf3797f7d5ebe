"""Typed settings, parsed once per container from the environment.

Every function reads its settings through one of the `*.from_environment()` constructors. A bad
value raises `SettingsError` at cold start with the variable's name in the message, so a broken
deployment fails on its first invocation instead of writing wrong documents.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from ti_anomali.ecs.common import parse_duration

ENGINE_KINDS = ("opensearch", "elasticsearch")
ENGINE_AUTH_MODES = ("sigv4", "basic", "api-key", "none")
MAX_PAGE_SIZE = 1000
NAMESPACE_PATTERN = re.compile(r"^[a-z0-9_]{1,100}$")
_DURATION_PATTERN = re.compile(r"^(\d+)([smhd])$")
# Far beyond any sensible window, and small enough that `now - duration` stays a valid date.
MAX_DURATION = timedelta(days=3650)
_DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")


class SettingsError(ValueError):
    """A setting is missing or invalid; the message names the variable."""


def parse_duration_setting(name: str, text: str) -> timedelta:
    """Parse a duration such as `90s`, `15m`, `2160h` or `90d`."""
    match = _DURATION_PATTERN.match(text.strip())
    if not match:
        raise SettingsError(f"{name} must be a duration such as 90s, 15m, 2160h or 90d, got {text!r}")
    amount, unit = match.groups()
    duration = timedelta(**{_DURATION_UNITS[unit]: min(int(amount), 10**8)})
    if duration > MAX_DURATION:
        raise SettingsError(f"{name} must be at most {MAX_DURATION.days} days, got {text!r}")
    return duration


def is_loopback_host(host: str | None) -> bool:
    """Return True for `localhost` and addresses in 127.0.0.0/8 or ::1."""
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Reader:
    """Reads and validates environment variables, naming the variable in every error."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def text(self, name: str, default: str | None = None) -> str:
        value = self._environ.get(name, "").strip()
        if value:
            return value
        if default is None:
            raise SettingsError(f"{name} is missing; set it in the function's environment")
        return default

    def optional(self, name: str) -> str | None:
        value = self._environ.get(name, "").strip()
        return value or None

    def integer(self, name: str, default: int, minimum: int, maximum: int) -> int:
        raw = self.text(name, str(default))
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"{name} must be an integer from {minimum} to {maximum}, got {raw!r}") from None
        if not minimum <= value <= maximum:
            raise SettingsError(f"{name} must be an integer from {minimum} to {maximum}, got {value}")
        return value

    def seconds(self, name: str, default: float, minimum: float, maximum: float) -> float:
        raw = self.text(name, str(default))
        try:
            value = float(raw)
        except ValueError:
            raise SettingsError(f"{name} must be a number of seconds, got {raw!r}") from None
        if not minimum <= value <= maximum:
            raise SettingsError(f"{name} must be from {minimum} to {maximum} seconds, got {value}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        raw = self.text(name, "true" if default else "false").lower()
        if raw in _TRUE:
            return True
        if raw in _FALSE:
            return False
        raise SettingsError(f"{name} must be true or false, got {raw!r}")

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.text(name, default)
        if value not in choices:
            raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
        return value

    def duration(self, name: str, default: str) -> timedelta:
        return parse_duration_setting(name, self.text(name, default))

    def optional_duration(self, name: str, default: str) -> timedelta | None:
        raw = self.text(name, default)
        if raw.lower() == "none":
            return None
        return parse_duration_setting(name, raw)

    def words(self, name: str, default: str) -> tuple[str, ...]:
        raw = self._environ.get(name, default)
        return tuple(word.strip() for word in raw.split(",") if word.strip())

    def url(self, name: str, default: str | None = None) -> str:
        """Read an http(s) URL; plain http is accepted only for loopback hosts."""
        value = self.text(name, default).rstrip("/")
        parts = urlsplit(value)
        try:
            parts.port  # noqa: B018 - reading it validates the port
        except ValueError:
            raise SettingsError(f"{name} has an invalid port, got {value!r}") from None
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise SettingsError(f"{name} must be an https URL such as https://api.threatstream.com, got {value!r}")
        if parts.scheme == "http" and not is_loopback_host(parts.hostname):
            raise SettingsError(f"{name} must use https unless the host is loopback, got {value!r}")
        if parts.username or parts.password or parts.query or parts.fragment:
            raise SettingsError(f"{name} must not carry credentials, a query or a fragment")
        return value

    def existing_file(self, name: str) -> str | None:
        """Read an optional path that must name an existing file."""
        value = self.optional(name)
        if value is not None and not Path(value).is_file():
            raise SettingsError(f"{name} must name an existing file, got {value!r}")
        return value

    def namespace(self, name: str) -> str:
        value = self.text(name, "default")
        if not NAMESPACE_PATTERN.match(value):
            raise SettingsError(f"{name} must be lower case letters, digits or '_' (no '-', no spaces), got {value!r}")
        return value


def metrics_namespace(environ: Mapping[str, str]) -> str:
    """Return the CloudWatch namespace for Powertools metrics; without it every flush would fail after the work."""
    return _Reader(environ).text("POWERTOOLS_METRICS_NAMESPACE")


@dataclass(frozen=True)
class EngineSettings:
    """Engine endpoint, authentication and dead-letter bucket for the documents."""

    kind: str
    url: str
    auth: str
    secret_name: str | None
    region: str | None
    tls_verify: bool
    ca_bundle_path: str | None
    timeout_seconds: float
    namespace: str
    dead_letter_bucket: str

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> EngineSettings:
        """Read the engine settings shared by every function."""
        read = _Reader(environ)
        auth = read.choice("ENGINE_AUTH", "sigv4", ENGINE_AUTH_MODES)
        secret_name = read.optional("ENGINE_SECRET_NAME")
        if auth in ("basic", "api-key") and not secret_name:
            raise SettingsError(f"ENGINE_SECRET_NAME is missing; ENGINE_AUTH={auth} reads its credentials from it")
        region = read.optional("AWS_REGION") or read.optional("AWS_DEFAULT_REGION")
        if auth == "sigv4" and not region:
            raise SettingsError("AWS_REGION is missing; ENGINE_AUTH=sigv4 signs requests for one region")
        return cls(
            kind=read.choice("ENGINE_KIND", "opensearch", ENGINE_KINDS),
            url=read.url("ENGINE_URL"),
            auth=auth,
            secret_name=secret_name,
            region=region,
            tls_verify=read.boolean("ENGINE_TLS_VERIFY", True),
            ca_bundle_path=read.existing_file("ENGINE_CA_BUNDLE_PATH"),
            timeout_seconds=read.seconds("ENGINE_TIMEOUT_SECONDS", 30, 1, 300),
            namespace=read.namespace("NAMESPACE"),
            dead_letter_bucket=read.text("DEAD_LETTER_BUCKET"),
        )


@dataclass(frozen=True)
class FetchSettings:
    """Settings of the FetchIntelligence function; defaults are those of Elastic's integration."""

    threatstream_url: str
    threatstream_secret_name: str
    page_size: int
    pages_per_invocation: int
    initial_interval: timedelta
    delay: timedelta
    query: str | None
    remote_api: bool
    http_timeout_seconds: float
    tls_verify: bool
    ca_bundle_path: str | None
    ioc_duration: timedelta | None
    preserve_original_event: bool
    tags: tuple[str, ...]
    geoip_database_path: str | None
    cursor_table: str
    lease_duration: timedelta
    engine: EngineSettings

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> FetchSettings:
        """Read and validate every setting of the fetch function."""
        read = _Reader(environ)
        return cls(
            threatstream_url=read.url("THREATSTREAM_URL", "https://api.threatstream.com"),
            threatstream_secret_name=read.text("THREATSTREAM_SECRET_NAME"),
            page_size=read.integer("PAGE_SIZE", 1000, 1, MAX_PAGE_SIZE),
            pages_per_invocation=read.integer("PAGES_PER_INVOCATION", 1, 1, 10_000),
            initial_interval=read.duration("INITIAL_INTERVAL", "2160h"),
            delay=read.duration("FETCH_DELAY", "1m"),
            query=read.optional("QUERY"),
            remote_api=read.boolean("REMOTE_API", False),
            http_timeout_seconds=read.seconds("HTTP_TIMEOUT_SECONDS", 30, 0.1, 300),
            tls_verify=read.boolean("THREATSTREAM_TLS_VERIFY", True),
            ca_bundle_path=read.existing_file("THREATSTREAM_CA_BUNDLE_PATH"),
            ioc_duration=read.optional_duration("IOC_DURATION", "90d"),
            preserve_original_event=read.boolean("PRESERVE_ORIGINAL_EVENT", False),
            tags=read.words("TAGS", "forwarded,anomali-intelligence"),
            geoip_database_path=read.existing_file("GEOIP_DATABASE_PATH"),
            cursor_table=read.text("CURSOR_TABLE_NAME"),
            lease_duration=read.duration("LEASE_DURATION", "16m"),
            engine=EngineSettings.from_environment(environ),
        )


@dataclass(frozen=True)
class LatestSettings:
    """Settings of the MaintainLatest function."""

    datasets: tuple[str, ...]
    sync_delay: timedelta
    live_statuses: frozenset[str]
    batch_size: int
    allowlist_values: tuple[str, ...]
    allowlist_networks: tuple[str, ...]
    blocked_tlp: tuple[str, ...]
    source_retention: timedelta
    cursor_table: str
    lease_duration: timedelta
    engine: EngineSettings

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> LatestSettings:
        """Read and validate every setting of the latest function."""
        read = _Reader(environ)
        datasets = read.words("LATEST_DATASETS", "intelligence,threatstream")
        unknown = [name for name in datasets if name not in ("intelligence", "threatstream")]
        if unknown or not datasets:
            raise SettingsError(f"LATEST_DATASETS must list intelligence and/or threatstream, got {datasets!r}")
        networks = read.words("ALLOWLIST_NETWORKS", "")
        for network in networks:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise SettingsError(f"ALLOWLIST_NETWORKS must hold CIDR networks, got {network!r}") from None
        live = read.words("LIVE_STATUSES", "active")
        if not live:
            raise SettingsError("LIVE_STATUSES must name at least one status, such as active")
        return cls(
            datasets=datasets,
            sync_delay=read.duration("SYNC_DELAY", "60s"),
            live_statuses=frozenset(status.lower() for status in live),
            batch_size=read.integer("LATEST_BATCH_SIZE", 1000, 1, 10_000),
            allowlist_values=read.words("ALLOWLIST_VALUES", ""),
            allowlist_networks=networks,
            blocked_tlp=read.words("BLOCKED_TLP", ""),
            source_retention=read.duration("SOURCE_RETENTION", "5d"),
            cursor_table=read.text("CURSOR_TABLE_NAME"),
            lease_duration=read.duration("LEASE_DURATION", "16m"),
            engine=EngineSettings.from_environment(environ),
        )


PUSH_AUTH_MODES = ("hmac", "iam", "none")
MAX_PUSH_BODY_BYTES = 4 * 1024 * 1024
_MEDIA_TYPE_PATTERN = re.compile(r"^[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+$")


@dataclass(frozen=True)
class PushSettings:
    """Settings of the ReceiveThreatstream function; defaults are those of Elastic's integration."""

    auth: str
    secret_name: str | None
    allow_open_endpoint: bool
    content_type: str
    max_body_bytes: int
    ioc_duration: timedelta | None
    preserve_original_event: bool
    tags: tuple[str, ...]
    geoip_database_path: str | None
    engine: EngineSettings

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> PushSettings:
        """Read and validate every setting of the push function.

        Raises `SettingsError` when the endpoint would accept requests from anyone (PUSH_AUTH=none)
        unless PUSH_ALLOW_OPEN_ENDPOINT=true confirms that this is intended.
        """
        read = _Reader(environ)
        auth = read.choice("PUSH_AUTH", "hmac", PUSH_AUTH_MODES)
        secret_name = read.optional("PUSH_SECRET_NAME")
        if auth == "hmac" and not secret_name:
            raise SettingsError(
                "PUSH_SECRET_NAME is missing. PUSH_AUTH=hmac reads the HMAC keys from that secret. "
                "Set PUSH_AUTH=iam to rely on the Function URL's AWS_IAM auth instead"
            )
        allow_open_endpoint = read.boolean("PUSH_ALLOW_OPEN_ENDPOINT", False)
        if auth == "none" and not allow_open_endpoint:
            raise SettingsError(
                "PUSH_AUTH=none makes the endpoint accept indicators from anyone. "
                "Set PUSH_AUTH=hmac or iam, or PUSH_ALLOW_OPEN_ENDPOINT=true if that is intended"
            )

        content_type = read.text("PUSH_CONTENT_TYPE", "application/x-ndjson").lower()
        if not _MEDIA_TYPE_PATTERN.match(content_type):
            raise SettingsError(
                f"PUSH_CONTENT_TYPE must be a media type such as application/x-ndjson, got {content_type!r}"
            )

        ioc_duration_text = read.text("IOC_DURATION", "90d")
        try:
            ioc_duration = parse_duration(ioc_duration_text)
        except ValueError as exc:
            raise SettingsError(f"IOC_DURATION: {exc}") from None

        return cls(
            auth=auth,
            secret_name=secret_name,
            allow_open_endpoint=allow_open_endpoint,
            content_type=content_type,
            max_body_bytes=read.integer("PUSH_MAX_BODY_BYTES", MAX_PUSH_BODY_BYTES, 1, MAX_PUSH_BODY_BYTES),
            ioc_duration=ioc_duration,
            preserve_original_event=read.boolean("PRESERVE_ORIGINAL_EVENT", False),
            tags=read.words("TAGS", "forwarded,anomali-threatstream"),
            geoip_database_path=read.existing_file("GEOIP_DATABASE_PATH"),
            engine=EngineSettings.from_environment(environ),
        )
