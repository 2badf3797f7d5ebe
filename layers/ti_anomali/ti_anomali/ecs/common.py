"""Rules shared by the ThreatStream mappers: dates, durations, severity, TLP, indicator types, URLs.

Each helper reproduces what a processor of Elastic's `ti_anomali` ingest pipelines does to one
value, so the mappers can be read as a list of steps. None of them performs I/O.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import ipaddress
import json
import math
import re
from collections.abc import Mapping, MutableMapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import unquote, urlsplit

ECS_VERSION = "9.3.0"
FEED_NAME = "Anomali ThreatStream"
# The engines reject a whole bulk request when one action's `_id` is longer than this.
MAX_ID_BYTES = 512
# The id of the overview dashboard in dashboards/; Kibana's threat-intelligence views link to it.
FEED_DASHBOARD_ID = "ti-anomali-overview"
MODULE = "ti_anomali"
PRESERVE_ORIGINAL_TAG = "preserve_original_event"
PIPELINE_ERROR_KIND = "pipeline_error"


# --- timestamps ---------------------------------------------------------------------------------

_TIMESTAMP_PATTERN = re.compile(
    r"""
    (?P<year>[+-]?\d{4,9})-(?P<month>\d{2})-(?P<day>\d{2})
    (?:[Tt](?P<hour>\d{2}):(?P<minute>\d{2})
        (?::(?P<second>\d{2})(?:[.,](?P<fraction>\d{1,9}))?)?
    )?
    (?P<offset>[Zz]|[+-]\d{2}(?::?\d{2})?)?
    """,
    re.VERBOSE,
)
_MAX_OFFSET = timedelta(hours=18)
# NOTE: nearly every timestamp in the API's responses has this form, and parsing it by position is
# faster than the general pattern. An invalid date in this form goes on to the general pattern and
# gets its error.
_API_TIMESTAMP_PATTERN = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")


class TimestampRangeError(ValueError):
    """An ISO 8601 timestamp is valid but outside the years 1 to 9999 that `datetime` can hold."""

    def __init__(self, text: str, *, after_max: bool) -> None:
        super().__init__(f"timestamp {text!r} is outside the years 1 to 9999")
        self.after_max = after_max


def parse_timestamp(text: str) -> datetime:
    """Parse an ISO 8601 date or date-time into a timezone-aware `datetime`.

    A missing offset means UTC, as in Elasticsearch's `date` processor. Fractions finer than a
    microsecond are truncated. Raises `TimestampRangeError` for a year past 9999 or before 1,
    and `ValueError` for anything else that is not such a timestamp.
    """
    if _API_TIMESTAMP_PATTERN.fullmatch(text):
        with contextlib.suppress(ValueError):
            return _parse_api_timestamp(text)
    match = _TIMESTAMP_PATTERN.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not an ISO 8601 timestamp")
    parts = match.groupdict()

    year = int(parts["year"])
    if year > datetime.max.year:
        raise TimestampRangeError(text, after_max=True)
    if year < datetime.min.year:
        raise TimestampRangeError(text, after_max=False)

    fraction = (parts["fraction"] or "").ljust(6, "0")[:6]
    offset = _parse_offset(parts["offset"], text)
    try:
        moment = datetime(
            year,
            int(parts["month"]),
            int(parts["day"]),
            int(parts["hour"] or 0),
            int(parts["minute"] or 0),
            int(parts["second"] or 0),
            int(fraction),
            tzinfo=offset,
        )
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a valid date or time: {exc}") from exc
    try:
        # Every later step works in UTC, and an offset can push the first or last day out of range.
        moment.astimezone(UTC)
    except OverflowError:
        raise TimestampRangeError(text, after_max=year >= datetime.max.year) from None
    return moment


def _parse_api_timestamp(text: str) -> datetime:
    """Parse the form ThreatStream writes, `2021-04-29T16:02:17.558Z`, which the pattern has checked."""
    return datetime(
        int(text[0:4]),
        int(text[5:7]),
        int(text[8:10]),
        int(text[11:13]),
        int(text[14:16]),
        int(text[17:19]),
        int(text[20:23]) * 1000,
        tzinfo=UTC,
    )


def _parse_offset(text: str | None, timestamp: str) -> timezone:
    if text is None or text in ("Z", "z"):
        return UTC
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    delta = timedelta(hours=hours, minutes=minutes)
    if minutes > 59 or delta > _MAX_OFFSET:
        raise ValueError(f"{timestamp!r} has an invalid UTC offset {text!r}")
    return timezone(-delta if text[0] == "-" else delta)


def format_timestamp(moment: datetime) -> str:
    """Format a timezone-aware `datetime` the way Elasticsearch prints a date it computed.

    That printer writes at least three fraction digits and drops trailing zeros beyond them
    (`.500`, `.666398`), and writes a zero UTC offset as `Z`. The offset of `moment` is kept.
    """
    fraction = f"{moment.microsecond:06d}".rstrip("0").ljust(3, "0")
    return f"{_format_date_time(moment)}.{fraction}{_format_offset(moment)}"


def format_timestamp_millis(moment: datetime) -> str:
    """Format a `datetime` in UTC with exactly three fraction digits, as the `date` processor writes."""
    moment = moment.astimezone(UTC)
    return f"{_format_date_time(moment)}.{moment.microsecond // 1000:03d}Z"


def _format_date_time(moment: datetime) -> str:
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
        f"T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    )


def _format_offset(moment: datetime) -> str:
    offset = moment.utcoffset()
    if offset is None:
        raise ValueError("a timestamp without a timezone cannot be formatted")
    if not offset:
        return "Z"
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


# --- durations and deletion ---------------------------------------------------------------------

_DURATION_PATTERN = re.compile(r"(?P<amount>\d+)(?P<unit>[dhm])")
_DURATION_UNITS = {"d": "days", "h": "hours", "m": "minutes"}
NO_DURATION = "none"


def parse_duration(text: str) -> timedelta | None:
    """Parse an IOC duration such as `85d`, `2160h` or `90m`, or `none` for no duration.

    The units are those of the integration's `ioc_duration_before_deletion` setting: `d` days,
    `h` hours and `m` minutes. Raises `ValueError` naming the value for anything else.
    """
    stripped = text.strip()
    if stripped.lower() == NO_DURATION:
        return None
    match = _DURATION_PATTERN.fullmatch(stripped)
    if match is None:
        raise ValueError(
            f"invalid IOC duration {text!r}: expected a whole number followed by d (days), "
            f"h (hours) or m (minutes), such as 90d, or 'none'"
        )
    try:
        return timedelta(**{_DURATION_UNITS[match["unit"]]: int(match["amount"])})
    except OverflowError as exc:
        raise ValueError(f"invalid IOC duration {text!r}: too large") from exc


def deletion_time(now: datetime, duration: timedelta | None, expiration: datetime | None) -> datetime | None:
    """Return when an indicator leaves the latest index: the earlier of its expiration and now + duration.

    `None` for either bound means there is none. A `now + duration` past the year 9999 counts as
    no bound, so a far expiration or a large duration never overflows.
    """
    limit: datetime | None = None
    if duration is not None:
        try:
            limit = now + duration
        except OverflowError:
            limit = None

    if expiration is None:
        return limit
    if limit is None or expiration < limit:
        return expiration
    return limit


# --- severity, confidence, TLP ------------------------------------------------------------------

SEVERITY_BY_NAME = {"low": 21, "medium": 47, "high": 73, "very-high": 99}

# Lower bounds, highest first, of the 0-100 score bands that map onto the same four levels.
_SEVERITY_BY_SCORE = ((80, 99), (60, 73), (40, 47), (0, 21))
_MAX_SCORE = 100
_NUMBER_TEXT = re.compile(r"[+-]?\d+(?:\.\d+)?")


def event_severity(value: Any) -> int | None:
    """Map a ThreatStream severity to `event.severity` on the 21/47/73/99 scale.

    Accepts a level name (`low`, `medium`, `high`, `very-high`, in any case) or a score from 0
    to 100 given as a number or numeric text. Returns `None` for anything else.
    """
    if isinstance(value, str):
        by_name = SEVERITY_BY_NAME.get(value.strip().lower())
        if by_name is not None:
            return by_name
        if not _NUMBER_TEXT.fullmatch(value.strip()):
            return None
        score: float = float(value)
    elif is_number(value):
        score = float(value)
    else:
        return None

    if not 0 <= score <= _MAX_SCORE:
        return None
    for lower_bound, severity in _SEVERITY_BY_SCORE:
        if score >= lower_bound:
            return severity
    return None


def confidence_level(value: float) -> str:
    """Map a 0-100 confidence score to the ECS levels Low, Medium, High, or None when out of range."""
    if value <= 0 or value > _MAX_SCORE:
        return "None"
    if value < 30:
        return "Low"
    if value < 70:
        return "Medium"
    return "High"


def tlp_marking(tlp: str | None, is_public: Any) -> str | None:
    """Return the TLP marking: the given one upper-cased, else WHITE for public and AMBER for private.

    Returns None when there is no TLP and `is_public` is not a boolean, so neither default fits.
    """
    if tlp:
        return tlp.upper()
    if not isinstance(is_public, bool):
        return None
    return "WHITE" if is_public else "AMBER"


# --- indicator types and hashes -----------------------------------------------------------------

# ThreatStream itypes grouped by the STIX 2.0 observable type Elastic's intelligence pipeline
# gives them (ti_anomali 2.4.0). Itypes that the pipeline lists without a type, such as
# `actor_subject` or `spam_mta`, are left out, so the mapper treats them as unknown itypes.
_ITYPES_BY_INDICATOR_TYPE: dict[str, tuple[str, ...]] = {
    "ipv4-addr": (
        "actor_ip", "anon_proxy", "anon_vpn", "apt_ip", "bot_ip", "brute_ip", "c2_ip",
        "comm_proxy_ip", "compromised_ip", "crypto_ip", "ddos_ip", "downloader_ip", "exfil_ip",
        "exploit_ip", "fraud_ip", "i2p_ip", "infostealer_ip", "iot_ip", "mal_ip", "p2pcnc",
        "parked_ip", "phish_ip", "pos_ip", "proxy_ip", "ransomware_ip", "scan_ip", "sinkhole_ip",
        "spam_ip", "ssh_ip", "suspicious_ip", "tor_ip", "trojan_ip", "vps_ip",
    ),
    "ipv6-addr": (
        "actor_ipv6", "anon_proxy_ipv6", "anon_vpn_ipv6", "apt_ipv6", "bot_ipv6", "brute_ipv6",
        "c2_ipv6", "compromised_ipv6", "ddos_ipv6", "downloader_ipv6", "exfil_ipv6",
        "exploit_ipv6", "fraud_ipv6", "i2p_ipv6", "infostealer_ipv6", "iot_ipv6", "mal_ipv6",
        "p2pcnc_ipv6", "parked_ipv6", "phish_ipv6", "pos_ipv6", "proxy_ipv6", "ransomware_ipv6",
        "scan_ipv6", "sinkhole_ipv6", "spam_ipv6", "ssh_ipv6", "tor_ipv6", "trojan_ipv6",
        "vps_ipv6",
    ),
    "domain-name": (
        "adware_domain", "apt_domain", "bot_domain", "c2_domain", "comm_proxy_domain",
        "compromised_domain", "disposable_email_domain", "downloader_domain", "dyn_dns",
        "exfil_domain", "exploit_domain", "fraud_domain", "free_email_domain",
        "infostealer_domain", "iot_domain", "mal_domain", "parked_domain", "phish_domain",
        "pos_domain", "ransomware_domain", "sinkhole_domain", "spam_domain", "suspicious_domain",
        "trojan_domain", "vpn_domain", "whois_privacy_domain",
    ),
    "domain": ("crypto_pool",),
    "url": (
        "apt_ua", "apt_url", "bot_url", "c2_url", "compromised_url", "crypto_url",
        "downloader_url", "exfil_url", "exploit_url", "fraud_url", "geolocation_url",
        "infostealer_url", "iot_url", "ipcheck_url", "mal_ua", "mal_url", "parked_url",
        "pastesite_url", "phish_url", "pos_url", "ransomware_url", "social_media_url", "spam_url",
        "speedtest_url", "suspicious_url", "torrent_tracker_url", "trojan_url",
    ),
    "email-addr": (
        "apt_email", "compromised_email", "fraud_email", "mal_email", "phish_email", "spam_email",
        "suspicious_email", "suspicious_reg_email", "whois_bulk_reg_email", "whois_privacy_email",
    ),
    "email": (
        "apt_email_subject_line", "apt_subject", "compromised_email_subject",
        "email_attachment_subject", "fraud_email_subject", "mal_email_subject",
        "phish_email_subject", "spam_email_subject", "suspicious_email_subject",
    ),
    "file": (
        "apt_file_name", "apt_md5", "apt_ssdeep", "bot_md5", "crypto_hash", "crypto_wallet",
        "downloader_hash", "exploit_md5", "fraud_md5", "hack_tool", "hack_tool_md5", "image_hash",
        "infostealer_hash", "iot_hash", "mal_file_name", "mal_file_path", "mal_md5", "mal_ssdeep",
        "phish_md5", "pos_hash", "ransomware_hash", "rootkit_hash", "trojan_hash",
    ),
    "directory": ("apt_file_path",),
    "mutex": ("apt_mutex", "mal_mutex"),
    "windows-registry-key": ("adware_registry_key", "apt_registry_key", "mal_registry_key"),
    "user-account": ("compromised_serv_account", "compromised_username"),
    "x509-certificate": ("mal_sslcert_sh1", "mal_sslcert_sha1"),
    "suppress": ("suppress",),
}

INDICATOR_TYPE_BY_ITYPE: dict[str, str] = {
    itype: indicator_type
    for indicator_type, itypes in _ITYPES_BY_INDICATOR_TYPE.items()
    for itype in itypes
}

HASH_FIELD_BY_SUBTYPE = {"MD5": "md5", "SHA1": "sha1", "SHA256": "sha256", "SHA512": "sha512"}
_HASH_FIELD_BY_LENGTH = {32: "md5", 40: "sha1", 64: "sha256", 128: "sha512"}
_HEX = re.compile(r"[0-9a-fA-F]+")


def hash_field_for_length(value: str) -> str | None:
    """Return the `file.hash.*` field name for a hex digest by its length, or None if it fits none."""
    if not _HEX.fullmatch(value):
        return None
    return _HASH_FIELD_BY_LENGTH.get(len(value))


# --- value conversions --------------------------------------------------------------------------

_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
_INTEGER_TEXT = re.compile(r"[+-]?\d+")


def is_number(value: Any) -> bool:
    """Return True for an int or a finite float, but not for a bool."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and math.isfinite(value)


def parse_long(value: Any) -> int:
    """Convert an int or decimal integer text to a signed 64-bit integer, or raise ValueError."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _INTEGER_TEXT.fullmatch(value.strip()):
        number = int(value.strip())
    else:
        raise ValueError(f"{value!r} is not an integer")
    if not _LONG_MIN <= number <= _LONG_MAX:
        raise ValueError(f"{value!r} is outside the signed 64-bit range")
    return number


def parse_double(value: Any) -> float:
    """Convert a finite number or decimal number text to a float, or raise ValueError."""
    if is_number(value):
        return float(value)
    if isinstance(value, str) and re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", value.strip()):
        number = float(value)
        if math.isfinite(number):
            return number
    raise ValueError(f"{value!r} is not a number")


def to_keyword(value: Any) -> Any:
    """Convert a scalar to the text a keyword field stores (`true`, `10015`); lists element-wise.

    None, dicts and lists inside lists are returned unchanged.
    """
    if isinstance(value, list):
        return [_scalar_to_keyword(item) for item in value]
    return _scalar_to_keyword(value)


def _scalar_to_keyword(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def drop_empty(value: Any) -> Any:
    """Remove None, empty strings, empty dicts and empty lists at every depth, in place.

    Elastic's pipelines end with this clean-up, so a field that is null in the API never
    reaches the document.
    """
    if isinstance(value, dict):
        for key in list(value):
            value[key] = drop_empty(value[key])
            if _is_empty(value[key]):
                del value[key]
    elif isinstance(value, list):
        value[:] = [drop_empty(item) for item in value]
        value[:] = [item for item in value if not _is_empty(item)]
    return value


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str | dict | list) and len(value) == 0)


_ATOMIC_TYPES = frozenset({int, float, bool})


def without_empty(value: Any) -> Any:
    """Return a deep copy of `value` with None, empty strings, empty dicts and empty lists removed at every depth.

    The result equals `drop_empty(copy.deepcopy(value))` and shares no dict or list with `value`,
    but takes one pass instead of two over the plain dicts, lists and scalars that JSON gives.
    """
    kind = type(value)
    if kind is dict:
        return _dict_without_empty(value)
    if kind is list:
        return _list_without_empty(value)
    if value is None or kind is str or kind in _ATOMIC_TYPES:
        return value
    return drop_empty(copy.deepcopy(value))


def _dict_without_empty(value: dict[Any, Any]) -> dict[Any, Any]:
    result = {}
    for key, item in value.items():
        if item is None:
            continue
        kind = type(item)
        if kind is str or kind in _ATOMIC_TYPES:
            if item == "":
                continue
            cleaned = item
        elif kind is dict or kind is list:
            cleaned = _dict_without_empty(item) if kind is dict else _list_without_empty(item)
            if not cleaned:
                continue
        else:
            cleaned = drop_empty(copy.deepcopy(item))
            if _is_empty(cleaned):
                continue
        result[key] = cleaned
    return result


def _list_without_empty(value: list[Any]) -> list[Any]:
    result = []
    for item in value:
        if item is None:
            continue
        kind = type(item)
        if kind is str or kind in _ATOMIC_TYPES:
            if item == "":
                continue
            cleaned = item
        elif kind is dict or kind is list:
            cleaned = _dict_without_empty(item) if kind is dict else _list_without_empty(item)
            if not cleaned:
                continue
        else:
            cleaned = drop_empty(copy.deepcopy(item))
            if _is_empty(cleaned):
                continue
        result.append(cleaned)
    return result


# --- data streams ------------------------------------------------------------------------------

_NAMESPACE_FORBIDDEN = re.compile(r'[-\\/*?"<>| ,#:]')
_NAMESPACE_MAX_BYTES = 100


def validate_namespace(namespace: str) -> str:
    """Return `namespace` if it can name a data stream namespace, else raise ValueError naming it.

    Elastic's rules: 1 to 100 bytes of lower-case text without spaces or any of `-\\/*?"<>|,#:`.
    """
    size = len(namespace.encode())
    is_lower_case = namespace == namespace.lower()
    if not 0 < size <= _NAMESPACE_MAX_BYTES or not is_lower_case or _NAMESPACE_FORBIDDEN.search(namespace):
        raise ValueError(
            f"invalid data stream namespace {namespace!r}: use 1 to 100 bytes of lower-case text "
            f"without spaces or any of - \\ / * ? \" < > | , # :, such as 'default'"
        )
    return namespace


# --- nested fields ------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1024)
def _split_path(path: str) -> tuple[tuple[str, ...], str]:
    """Split a dotted field path into its parent names and its leaf name."""
    *parents, leaf = path.split(".")
    return tuple(parents), leaf


def set_field(document: MutableMapping[str, Any], path: str, value: Any) -> None:
    """Set a dotted field path such as `threat.indicator.ip`, creating the objects on the way."""
    parents, leaf = _split_path(path)
    target = document
    for name in parents:
        child = target.get(name)
        if not isinstance(child, dict):
            child = {}
            target[name] = child
        target = child
    target[leaf] = value


def get_field(document: Mapping[str, Any], path: str) -> Any:
    """Return the value at a dotted field path, or None when any part of it is missing."""
    current: Any = document
    for name in path.split("."):
        if not isinstance(current, Mapping):
            return None
        current = current.get(name)
    return current


def append_unique(document: MutableMapping[str, Any], path: str, value: Any) -> None:
    """Append a value to the list at a dotted field path unless the list already contains it."""
    current = get_field(document, path)
    if not isinstance(current, list):
        current = []
        set_field(document, path, current)
    if value not in current:
        current.append(value)


# --- URLs ---------------------------------------------------------------------------------------

# java.net.URI rejects these characters and malformed percent escapes. Elasticsearch's
# `uri_parts` then falls back to java.net.URL, which accepts them for the protocols it supports.
_URI_ILLEGAL = re.compile(r'[\x00-\x20"<>\\^`{|}\x7f]|%(?![0-9A-Fa-f]{2})')
_URL_PROTOCOLS = frozenset({"http", "https", "ftp", "file", "jar"})
_SCHEME_PREFIX = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")


def uri_parts(url: str) -> dict[str, Any]:
    """Split a URL into ECS `url.*` fields as Elasticsearch's `uri_parts` processor does.

    Returns `original`, `scheme`, `domain`, `port`, `path`, `extension`, `query`, `fragment`,
    `user_info`, `username` and `password`, each only when the URL has it. Path, query,
    fragment and user info are percent-decoded, as java.net.URI returns them. Raises
    ValueError for text that is not a URL.
    """
    # NOTE: this follows java.net.URI closely for web URLs. Rare forms differ: a host with an
    # underscore keeps its domain here where Java drops it, and a port that is not a number
    # from 0 to 65535 raises here where Java drops host and port.
    lenient = _URI_ILLEGAL.search(url) is not None
    text = url.strip() if lenient else url
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{url!r} is not a URL: {exc}") from exc

    scheme_match = _SCHEME_PREFIX.match(text) if parts.scheme else None
    scheme = scheme_match.group(1) if scheme_match else None
    if lenient and (scheme is None or scheme.lower() not in _URL_PROTOCOLS):
        raise ValueError(f"{url!r} is not a URL: it contains characters a URI does not allow")

    decode = _keep if lenient else unquote
    result: dict[str, Any] = {"original": url, "scheme": scheme}
    if parts.fragment:
        result["fragment"] = decode(parts.fragment)
    if scheme is not None and not text[len(scheme) + 1 :].startswith("/"):
        # An opaque URI such as `mailto:a@example.com` has no host, path or query in Java.
        return _without_none(result)

    user_info, host = _split_authority(parts.netloc)
    path = decode(parts.path)
    result.update(domain=host or None, port=port, path=path, extension=_path_extension(path))
    if parts.query:
        result["query"] = decode(parts.query)
    if user_info is not None:
        user_info = decode(user_info)
        result["user_info"] = user_info
        if ":" in user_info:
            result["username"], result["password"] = user_info.split(":", 1)
    return _without_none(result)


def _keep(text: str) -> str:
    return text


def _without_none(fields: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None}


def _split_authority(netloc: str) -> tuple[str | None, str]:
    user_info: str | None = None
    host_port = netloc
    if "@" in netloc:
        user_info, _, host_port = netloc.rpartition("@")
    if host_port.startswith("["):
        return user_info, host_port[: host_port.find("]") + 1]
    return user_info, host_port.split(":", 1)[0]


def _path_extension(path: str) -> str | None:
    if "/" not in path:
        return None
    last_segment = path[path.rfind("/") :]
    if "." not in last_segment:
        return None
    return last_segment[last_segment.rfind(".") + 1 :]


# --- values in documents and messages -----------------------------------------------------------

_DECIMAL_INTEGER = re.compile(r"-?[0-9]+")
_SHOWN_VALUE_MAX_CHARS = 120


def integer_text(value: Any) -> str | None:
    """Return an integer id as exact decimal text, or None when it is not an int or integer text.

    Floats and booleans are not ids: a float may already have lost digits of a large id.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and _DECIMAL_INTEGER.fullmatch(value):
        return value
    return None


def is_ip_address(value: Any) -> bool:
    """Return True for text that is an IPv4 or IPv6 address."""
    if not isinstance(value, str):
        return False
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def show_value(value: Any) -> str:
    """Render a value for an error message as JSON, so its type shows, cut to 120 characters."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=repr)
    if len(text) > _SHOWN_VALUE_MAX_CHARS:
        return text[: _SHOWN_VALUE_MAX_CHARS - 3] + "..."
    return text


def text_digest(text: str) -> str:
    """Return the SHA-256 hex digest of text, lone surrogates included (they come from JSON escapes)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def bounded_id(text: str) -> str:
    """Return `text` as a document `_id`, or a digest of it when it is longer than the engines accept."""
    if len(text.encode("utf-8", "surrogatepass")) <= MAX_ID_BYTES:
        return text
    return f"sha256-{text_digest(text)}"
