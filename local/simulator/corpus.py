"""Indicator corpus of the simulator: realistic ThreatStream objects and the ordered log of their updates.

Objects come from two sources. The pipeline test inputs of Elastic's integration serve as
templates, with new ids, values and timestamps. A generator fills the rest with the field
names, enumerations and value ranges of Elastic's benchmark template, widened to the
indicator types a real feed carries (ip, domain, url, email, hashes).
Both are read at run time from the conformance folder beside the repository. Without that
folder the generator builds every object.
"""

from __future__ import annotations

import functools
import json
import logging
import random
import re
import string
import threading
import uuid
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

DEFAULT_CONFORMANCE_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "conformance"

FAR_FUTURE_EXPIRATION = "9999-12-31T00:00:00.000Z"

# The smallest positive integer that a float64 cannot represent exactly: 2**53 + 1 rounds to 2**53.
FIRST_INEXACT_FLOAT_INT = 2**53 + 1

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MICROSECOND = timedelta(microseconds=1)
_API_TIMESTAMP = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?Z")


# --- timestamps -------------------------------------------------------------------------------


def format_api_timestamp(moment: datetime) -> str:
    """Format `moment` as ThreatStream writes timestamps: UTC with milliseconds (2021-04-29T16:02:17.558Z)."""
    moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


def parse_api_timestamp(text: str) -> datetime:
    """Parse `YYYY-MM-DDTHH:MM:SSZ`, optionally with fractional seconds, or raise ValueError.

    Digits past microseconds are dropped.
    """
    match = _API_TIMESTAMP.fullmatch(text)
    if match is None:
        raise ValueError(f"invalid timestamp {text!r}, expected YYYY-MM-DDTHH:MM:SSZ or YYYY-MM-DDTHH:MM:SS.fffZ")
    year, month, day, hour, minute, second, fraction = match.groups()
    microsecond = int((fraction or "0").ljust(6, "0")[:6])
    return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), microsecond, tzinfo=UTC)


def truncate_to_milliseconds(moment: datetime) -> datetime:
    """Drop the sub-millisecond part, so that the datetime equals its API text form."""
    return moment.replace(microsecond=moment.microsecond - moment.microsecond % 1000)


def to_microseconds(moment: datetime) -> int:
    """Return microseconds since the Unix epoch, because integer keys compare faster than datetimes."""
    return (moment - _EPOCH) // _ONE_MICROSECOND


# --- updates and their log --------------------------------------------------------------------


@dataclass(frozen=True)
class Update:
    """One published version of an indicator, as the API serves it.

    `id` is None only for hand-written objects whose "id" is not an integer. The API serves
    `obj` as it was serialized at publication, so later changes to the dict are not served.
    """

    id: int | None
    update_id: int
    status: str
    modified_ts: datetime
    visible_at: datetime
    expiration_ts: str | None
    obj: dict[str, Any]


@dataclass(frozen=True)
class Selection:
    """One page of updates picked by `UpdateLog.select`, with the size of the whole result."""

    encoded_objects: list[bytes]
    last_update_id: int | None
    total_count: int


def copy_object(obj: dict[str, Any]) -> dict[str, Any]:
    """Return a deep copy of a JSON object.

    A JSON round trip takes about two thirds of the time of copy.deepcopy on these objects.
    """
    return json.loads(json.dumps(obj))


def encode_object(obj: dict[str, Any]) -> bytes:
    """Serialize an API object once, so that pages are joined from ready bytes. Integers stay exact."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    try:
        return text.encode()
    except UnicodeEncodeError:
        # A lone surrogate has no UTF-8 form; served as a `\ud800` escape, as a JSON API would.
        return json.dumps(obj, separators=(",", ":")).encode()


class UpdateLog:
    """Every published update in update_id order, with the indexes that page selection needs.

    It is safe to share between threads. Parallel lists contain update_ids, modified and
    visible times in microseconds, and the pre-serialized objects. While modified_ts rises
    with update_id, which is true unless a hand-written object breaks that order, the
    modified_ts window is found by bisection instead of a scan.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._updates: list[Update] = []
        self._update_ids: list[int] = []
        self._modified_us: list[int] = []
        self._visible_us: list[int] = []
        self._encoded: list[bytes] = []
        self._modified_sorted = True
        # Sorted update_ids of records that became visible after their modified_ts, and their visible times
        self._late_update_ids: list[int] = []
        self._late_visible_us: dict[int, int] = {}
        self._newest_by_id: dict[int, Update] = {}

    def __len__(self) -> int:
        with self._lock:
            return len(self._updates)

    @property
    def last_update_id(self) -> int | None:
        """Highest update_id published so far."""
        with self._lock:
            return self._update_ids[-1] if self._update_ids else None

    def add(self, update: Update) -> None:
        """Insert `update` at its update_id position, or raise ValueError if that update_id exists."""
        encoded = encode_object(update.obj)
        modified_us = to_microseconds(update.modified_ts)
        visible_us = to_microseconds(update.visible_at)
        with self._lock:
            position = bisect_left(self._update_ids, update.update_id)
            if position < len(self._update_ids) and self._update_ids[position] == update.update_id:
                raise ValueError(f"update_id {update.update_id} is already published")
            self._updates.insert(position, update)
            self._update_ids.insert(position, update.update_id)
            self._modified_us.insert(position, modified_us)
            self._visible_us.insert(position, visible_us)
            self._encoded.insert(position, encoded)
            self._note_order(position, modified_us)
            if visible_us > modified_us:
                self._late_update_ids.insert(bisect_left(self._late_update_ids, update.update_id), update.update_id)
                self._late_visible_us[update.update_id] = visible_us
            self._note_newest(update)

    def _note_order(self, position: int, modified_us: int) -> None:
        before_is_older = position == 0 or self._modified_us[position - 1] <= modified_us
        after_is_newer = position == len(self._modified_us) - 1 or self._modified_us[position + 1] >= modified_us
        if not (before_is_older and after_is_newer):
            self._modified_sorted = False

    def _note_newest(self, update: Update) -> None:
        if update.id is None:
            return
        current = self._newest_by_id.get(update.id)
        if current is None or current.update_id < update.update_id:
            self._newest_by_id[update.id] = update

    def updates(self) -> list[Update]:
        """Return every update in update_id order (a copy of the list)."""
        with self._lock:
            return list(self._updates)

    def newest(self, indicator_id: int) -> Update | None:
        """Return the newest update of one indicator id, whether visible yet or not."""
        with self._lock:
            return self._newest_by_id.get(indicator_id)

    def newest_by_id(self) -> dict[int, Update]:
        """Return the newest update of each indicator id, whether visible yet or not."""
        with self._lock:
            return dict(self._newest_by_id)

    def select(
        self,
        *,
        now: datetime,
        update_id_gt: int | None,
        modified_gt: datetime | None,
        modified_lt: datetime | None,
        matches: Callable[[dict[str, Any]], bool] | None,
        offset: int,
        limit: int,
    ) -> Selection:
        """Pick the page of visible updates that match the filters, in update_id order.

        `offset` matching records are skipped before the page starts. `total_count` counts
        every matching record, including those on this page and those skipped.
        """
        now_us = to_microseconds(now)
        gt_us = None if modified_gt is None else to_microseconds(modified_gt)
        lt_us = None if modified_lt is None else to_microseconds(modified_lt)
        with self._lock:
            low = 0 if update_id_gt is None else bisect_right(self._update_ids, update_id_gt)
            high = len(self._update_ids)
            check_window = not self._modified_sorted
            if self._modified_sorted:
                if gt_us is not None:
                    low = max(low, bisect_right(self._modified_us, gt_us))
                if lt_us is not None:
                    high = min(high, bisect_left(self._modified_us, lt_us))
            needs_full_count = check_window or matches is not None

            page: list[int] = []
            matched = 0
            for index in range(low, high):
                if self._visible_us[index] > now_us:
                    continue
                if check_window and not _inside_window(self._modified_us[index], gt_us, lt_us):
                    continue
                if matches is not None and not matches(self._updates[index].obj):
                    continue
                matched += 1
                if matched <= offset:
                    continue
                if len(page) < limit:
                    page.append(index)
                elif not needs_full_count:
                    break

            if needs_full_count:
                total_count = matched
            else:
                total_count = max(0, high - low) - self._count_invisible(low, high, now_us)
            return Selection(
                encoded_objects=[self._encoded[index] for index in page],
                last_update_id=self._update_ids[page[-1]] if page else None,
                total_count=total_count,
            )

    def _count_invisible(self, low: int, high: int, now_us: int) -> int:
        if low >= high:
            return 0
        first = bisect_left(self._late_update_ids, self._update_ids[low])
        last = bisect_right(self._late_update_ids, self._update_ids[high - 1])
        return sum(1 for update_id in self._late_update_ids[first:last] if self._late_visible_us[update_id] > now_us)


def _inside_window(modified_us: int, gt_us: int | None, lt_us: int | None) -> bool:
    after_start = gt_us is None or modified_us > gt_us
    before_end = lt_us is None or modified_us < lt_us
    return after_start and before_end


# --- conformance inputs -----------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def load_templates(conformance_dir: Path) -> tuple[dict[str, Any], ...]:
    """Read the API objects of the integration's pipeline tests (`intelligence/<case>.json`, `events[].json`).

    The result is cached and shared, so callers copy an object before they change it.
    """
    templates: list[dict[str, Any]] = []
    for path in sorted((conformance_dir / "intelligence").glob("*.json")):
        if path.name.endswith(".expected.json"):
            continue
        events = json.loads(path.read_text(encoding="utf-8")).get("events", [])
        templates.extend(event["json"] for event in events if isinstance(event.get("json"), dict))
    return tuple(templates)


@functools.lru_cache(maxsize=4)
def load_benchmark_enumerations(conformance_dir: Path) -> dict[str, list[Any]]:
    """Read the `enum` lists of the benchmark generator's field configuration, keyed by field name.

    Returns an empty dict when the file or PyYAML is missing. The result is cached and
    shared, so callers must not change it.
    """
    path = conformance_dir / "benchmark" / "intelligence-config.yml"
    if not path.is_file():
        return {}
    try:
        import yaml  # noqa: PLC0415 - a development dependency, needed only here
    except ImportError:
        logger.warning("PyYAML is not installed, so the generator ignores %s", path)
        return {}
    config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {
        field["name"]: list(field["enum"])
        for field in config.get("fields", [])
        if isinstance(field, dict) and isinstance(field.get("enum"), list)
    }


# --- vocabulary -------------------------------------------------------------------------------


@dataclass(frozen=True)
class IndicatorType:
    """An itype with its ThreatStream `type`, `threat_type` and relative frequency in the corpus."""

    itype: str
    type: str
    threat_type: str
    weight: int


INDICATOR_TYPES = (
    IndicatorType("mal_ip", "ip", "malware", 10),
    IndicatorType("c2_ip", "ip", "c2", 6),
    IndicatorType("apt_ip", "ip", "apt", 3),
    IndicatorType("bot_ip", "ip", "bot", 4),
    IndicatorType("scan_ip", "ip", "scan", 5),
    IndicatorType("ssh_ip", "ip", "brute", 3),
    IndicatorType("tor_ip", "ip", "tor", 3),
    IndicatorType("phish_ip", "ip", "phish", 2),
    IndicatorType("parked_ip", "ip", "parked", 1),
    IndicatorType("i2p_ip", "ip", "i2p", 1),
    IndicatorType("spam_ip", "ip", "spam", 2),
    IndicatorType("mal_domain", "domain", "malware", 8),
    IndicatorType("c2_domain", "domain", "c2", 5),
    IndicatorType("apt_domain", "domain", "apt", 2),
    IndicatorType("phish_domain", "domain", "phish", 5),
    IndicatorType("spam_domain", "domain", "spam", 2),
    IndicatorType("parked_domain", "domain", "parked", 1),
    IndicatorType("mal_url", "url", "malware", 8),
    IndicatorType("c2_url", "url", "c2", 3),
    IndicatorType("apt_url", "url", "apt", 1),
    IndicatorType("phish_url", "url", "phish", 6),
    IndicatorType("parked_url", "url", "parked", 1),
    IndicatorType("mal_email", "email", "malware", 1),
    IndicatorType("apt_email", "email", "apt", 1),
    IndicatorType("phish_email", "email", "phish", 2),
    IndicatorType("spam_email", "email", "spam", 1),
    IndicatorType("parked_email", "email", "parked", 1),
    IndicatorType("mal_md5", "md5", "malware", 8),
    IndicatorType("apt_md5", "md5", "apt", 2),
    IndicatorType("phish_md5", "md5", "phish", 1),
)

# Hash values share the type "md5", and ThreatStream names the algorithm in `subtype`.
HASH_SUBTYPES = ((None, 32), ("SHA1", 40), ("SHA256", 64))

_SOURCES = ["Analyst", "Default Organization", "Anomali Labs", "Emerging Threats - Compromised", "abuse.ch"]
_ORGS = ["Domains by Proxy, LLC", "Alicloud-hk", "DigitalOcean, LLC", "OVH SAS", "Hetzner Online GmbH"]
_SEVERITIES = ["low", "medium", "high", "very-high"]
_TLPS = ["WHITE", "GREEN", "AMBER", "RED"]
_TAG_NAMES = [
    "MalSpam",
    "Emotet",
    "QakBot",
    "CobaltStrike",
    "ransomware",
    "botnet",
    "phishing-kit",
    "tor-exit",
    "scanner",
    "public-ip-check-dns",
]
_COUNTRIES = ["US", "CN", "RU", "DE", "NL", "SE", "GB", "JP", "BR", "TW", "CL", "FR", "UA", "IN"]
_TOP_LEVEL_DOMAINS = ["com", "net", "org", "info", "xyz", "top", "ru", "cn", "biz", "online", "site", "best"]
_FILE_EXTENSIONS = ["exe", "dll", "tmp", "js", "vbs", "ps1", "doc", "zip"]
_URL_PATHS = ["", "login.php", "wp-admin/", "gate.php", "invoice.zip", "panel/", "bin/update.exe"]
_FIRST_NAMES = ["alex", "maria", "john", "li.wei", "admin", "billing", "support", "hr", "info", "noreply"]
# Prefixes of addresses in MaxMind's GeoIP test databases, which Elastic's pipeline tests use.
# Part of each /24 is in those databases, so some generated addresses resolve to a city there.
_GEOIP_TEST_NETWORKS = ["89.160.20.", "81.2.69.", "175.16.199.", "216.160.83.", "67.43.156."]
# First octets of publicly routed IPv4 space, avoiding private, loopback and reserved ranges.
_PUBLIC_FIRST_OCTETS = [5, 23, 31, 37, 45, 46, 62, 77, 80, 85, 91, 94, 103, 104, 141, 176, 185, 193, 212]

RETIRED_STATUSES = ("inactive", "falsepos")

# Shares of the corpus. All are estimates of a typical feed, not measured values.
TEMPLATE_SHARE = 0.3  # new indicators built from a conformance input
BIG_ID_SHARE = 0.1  # new indicator ids above 2**53, when big ids are enabled
INITIAL_REVISION_SHARE = 0.12  # initial-corpus updates that revise an earlier indicator
INITIAL_RETIREMENT_SHARE = 0.08  # initial-corpus updates that retire an earlier indicator
PUBLISHED_NEW_SHARE = 0.7  # published updates, other than status changes, that add an indicator
DEFAULT_EXPIRATION = timedelta(days=90)


# --- the generator ----------------------------------------------------------------------------


class IndicatorFactory:
    """Generator of realistic ThreatStream intelligence objects, repeatable for a given random seed.

    Objects it returns carry every field except `update_id` and `sort`, which `stamp` sets.
    """

    def __init__(
        self,
        rng: random.Random,
        *,
        templates: tuple[dict[str, Any], ...],
        enumerations: dict[str, list[Any]],
        big_ids: bool = False,
    ) -> None:
        self._rng = rng
        self._templates = templates
        self._big_ids = big_ids
        self._used_ids: set[int] = set()
        self._big_id_count = 0
        self._sources = _merge(enumerations.get("source"), _SOURCES)
        self._orgs = _merge(enumerations.get("org"), _ORGS)
        self._severities = _merge(enumerations.get("meta_severity"), _SEVERITIES)
        self._tlps = _merge(enumerations.get("tlp"), _TLPS)
        self._tag_names = _merge(enumerations.get("tags_name"), _TAG_NAMES)
        self._sample_emails = list(enumerations.get("value", []))
        self._type_weights = [indicator_type.weight for indicator_type in INDICATOR_TYPES]

    def new_id(self) -> int:
        """Return an indicator id not handed out before. With big ids, about one in ten lies above 2**53."""
        while True:
            if self._big_ids and self._rng.random() < BIG_ID_SHARE:
                self._big_id_count += 1
                # Odd values above 2**53 have no exact float64, so a rounding client changes them.
                candidate = FIRST_INEXACT_FLOAT_INT + 2 * (self._big_id_count - 1)
            else:
                candidate = self._rng.randint(100_000_000, 999_999_999)
            if candidate not in self._used_ids:
                self._used_ids.add(candidate)
                return candidate

    def reserve_id(self, indicator_id: int) -> None:
        """Keep `new_id` from handing out an id that a hand-written object already uses."""
        self._used_ids.add(indicator_id)

    def new_indicator(self, modified: datetime, now: datetime, status: str = "active") -> dict[str, Any]:
        """Return the first update of a new indicator, modified at `modified`, with the given status."""
        if self._templates and self._rng.random() < TEMPLATE_SHARE:
            obj = copy_object(self._rng.choice(self._templates))
            self._replace_value(obj)
        else:
            obj = self._generate_object()

        indicator_id = self.new_id()
        created = modified
        if self._rng.random() < 0.3:
            created = modified - timedelta(seconds=self._rng.randint(60, 120 * 86400))
        obj["id"] = indicator_id
        obj["uuid"] = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
        obj["resource_uri"] = f"/api/v2/intelligence/{indicator_id}/"
        obj["created_ts"] = format_api_timestamp(created)
        obj["modified_ts"] = format_api_timestamp(modified)
        self._set_lifecycle(obj, status, created, modified, now)
        return obj

    def revise(self, previous: dict[str, Any], modified: datetime, now: datetime) -> dict[str, Any]:
        """Return a later update of an indicator seen again: active, new scores, expiry pushed back."""
        obj = copy_object(previous)
        obj["modified_ts"] = format_api_timestamp(modified)
        obj["confidence"] = _clamp(_as_int(obj.get("confidence")) + self._rng.randint(-15, 15), 0, 100)
        obj["threatscore"] = _clamp(_as_int(obj.get("threatscore")) + self._rng.randint(-10, 10), 0, 100)
        if self._rng.random() < 0.2:
            tags = list(obj.get("tags") or [])
            tags.append(self._tag())
            obj["tags"] = tags
        obj["status"] = "active"
        if obj.get("expiration_ts") != FAR_FUTURE_EXPIRATION:
            obj["expiration_ts"] = format_api_timestamp(modified + DEFAULT_EXPIRATION)
        obj["meta"] = {**(obj.get("meta") or {}), "detail2": self._import_note()}
        return obj

    def retire(self, previous: dict[str, Any], modified: datetime, status: str) -> dict[str, Any]:
        """Return a later update that sets an indicator's status to 'inactive' or 'falsepos'."""
        if status not in RETIRED_STATUSES:
            raise ValueError(f"invalid retired status {status!r}, expected one of {RETIRED_STATUSES}")
        obj = copy_object(previous)
        obj["modified_ts"] = format_api_timestamp(modified)
        obj["status"] = status
        if status == "inactive":
            obj["meta"] = {**(obj.get("meta") or {}), "detail2": _deactivation_note(modified)}
        return obj

    # The lifecycle sets status, expiry and the note that ThreatStream keeps in meta.detail2.
    def _set_lifecycle(
        self, obj: dict[str, Any], status: str, created: datetime, modified: datetime, now: datetime
    ) -> None:
        obj["status"] = status
        meta = dict(obj.get("meta") or {})
        meta.setdefault("severity", self._rng.choice(self._severities))
        if status == "inactive":
            # Feeds deactivate an indicator shortly after its expiration time passes.
            deactivated_after = timedelta(seconds=self._rng.randint(0, 600))
            obj["expiration_ts"] = format_api_timestamp(modified - deactivated_after)
            meta["detail2"] = _deactivation_note(modified)
        else:
            obj["expiration_ts"] = self._active_expiration(created, modified, now)
            meta["detail2"] = self._import_note()
        obj["meta"] = meta

    def _active_expiration(self, created: datetime, modified: datetime, now: datetime) -> str | None:
        roll = self._rng.random()
        if roll < 0.58:
            return format_api_timestamp(created + DEFAULT_EXPIRATION)
        if roll < 0.70:
            return FAR_FUTURE_EXPIRATION
        if roll < 0.76:
            return format_api_timestamp(created + timedelta(days=300 * 365))
        if roll < 0.86:
            # Still active although its expiration time has passed.
            return format_api_timestamp(min(modified, now) - timedelta(seconds=self._rng.randint(3600, 20 * 86400)))
        if roll < 0.93:
            # Expires within two days of `now`, so that the expiry happens during a run whose clock advances.
            return format_api_timestamp(now + timedelta(seconds=self._rng.randint(600, 2 * 86400)))
        if roll < 0.95:
            return None
        return format_api_timestamp(created + timedelta(days=30))

    def _generate_object(self) -> dict[str, Any]:
        indicator_type = self._rng.choices(INDICATOR_TYPES, weights=self._type_weights)[0]
        value, subtype = self._value_for(indicator_type)
        trusted = self._rng.random() < 0.4
        obj: dict[str, Any] = {
            "target_industry": [],
            "source": self._rng.choice(self._sources),
            "threatscore": self._rng.randint(0, 100),
            "threat_type": indicator_type.threat_type,
            "trusted_circle_ids": [10015] if trusted else None,
            "description": None,
            "workgroups": [],
            "sort": [],
            "resource_uri": "",
            "modified_ts": "",
            "update_id": 0,
            "source_reported_confidence": self._score_or_unknown(),
            "type": indicator_type.type,
            "uuid": "",
            "feed_id": 0 if self._rng.random() < 0.8 else self._rng.randint(1, 999_999),
            "retina_confidence": self._score_or_unknown(0.9),
            "created_ts": "",
            "id": 0,
            "value": value,
            "itype": indicator_type.itype,
            "org": "" if self._rng.random() < 0.7 else self._rng.choice(self._orgs),
            "confidence": self._score_or_unknown(0.15),
            "expiration_ts": None,
            "owner_organization_id": 1 if trusted else self._rng.choice([67, 70, self._rng.randint(2, 9999)]),
            "meta": {"severity": self._rng.choice(self._severities), "detail2": ""},
            "is_anonymous": False,
            "is_public": not trusted,
            "asn": "" if self._rng.random() < 0.8 else str(self._rng.randint(1000, 65000)),
            "status": "active",
            "tags": self._tags(),
            "can_add_public_tags": True,
            "subtype": subtype,
            "tlp": None if self._rng.random() < 0.7 else self._rng.choice(self._tlps),
            "created_by": None,
            "rdns": None,
            "is_editable": False,
            "locations": [],
            "source_locations": [],
        }
        self._add_network_fields(obj, indicator_type.type)
        return obj

    def _value_for(self, indicator_type: IndicatorType) -> tuple[str, str | None]:
        kind = indicator_type.type
        if kind == "ip":
            return self._ip(), None
        if kind == "domain":
            return self._domain(), None
        if kind == "url":
            return self._url(), None
        if kind == "email":
            if self._sample_emails and self._rng.random() < 0.05:
                return self._rng.choice(self._sample_emails), None
            return self._email(), None
        subtype, length = self._rng.choice(HASH_SUBTYPES)
        return self._hex(length), subtype

    def _add_network_fields(self, obj: dict[str, Any], kind: str) -> None:
        if kind == "ip":
            obj["ip"] = obj["value"]
        elif kind in ("domain", "url") and self._rng.random() < 0.3:
            obj["ip"] = self._ip()
        else:
            return
        if self._rng.random() < 0.5:
            obj["country"] = self._rng.choice(_COUNTRIES)
            obj["latitude"] = round(self._rng.uniform(-60, 70), 4)
            obj["longitude"] = round(self._rng.uniform(-170, 170), 4)

    def _replace_value(self, obj: dict[str, Any]) -> None:
        kind = obj.get("type")
        if kind == "ip":
            obj["value"] = obj["ip"] = self._ip()
        elif kind in ("domain", "url"):
            obj["value"] = self._domain() if kind == "domain" else self._url()
            if "ip" in obj:
                obj["ip"] = self._ip()
        elif kind == "email":
            obj["value"] = self._email()
        elif kind == "md5":
            obj["value"] = self._hex(len(str(obj.get("value", ""))) or 32)
        elif obj.get("itype") == "mal_ssdeep":
            obj["value"] = self._ssdeep()
        elif obj.get("itype") == "mal_file_name":
            obj["value"] = self._file_name()

    def _ip(self) -> str:
        if self._rng.random() < 0.3:
            return self._rng.choice(_GEOIP_TEST_NETWORKS) + str(self._rng.randint(1, 254))
        octets = [self._rng.choice(_PUBLIC_FIRST_OCTETS)] + [self._rng.randint(0, 255) for _ in range(2)]
        return ".".join(map(str, [*octets, self._rng.randint(1, 254)]))

    def _label(self, low: int = 4, high: int = 12) -> str:
        consonants, vowels = "bcdfghklmnprstvwxz", "aeiou"
        length = self._rng.randint(low, high)
        letters = [self._rng.choice(consonants if i % 2 == 0 else vowels) for i in range(length)]
        if self._rng.random() < 0.3:
            letters.append(str(self._rng.randint(1, 99)))
        return "".join(letters)

    def _domain(self) -> str:
        name = f"{self._label()}.{self._rng.choice(_TOP_LEVEL_DOMAINS)}"
        roll = self._rng.random()
        if roll < 0.2:
            return f"www.{name}"
        if roll < 0.35:
            return f"{self._label(3, 6)}.{name}"
        return name

    def _url(self) -> str:
        host = self._ip() if self._rng.random() < 0.2 else self._domain()
        scheme = self._rng.choice(["http", "https"])
        path = self._rng.choice(_URL_PATHS)
        if self._rng.random() < 0.2:
            path += f"?id={self._rng.randint(1, 99999)}"
        return f"{scheme}://{host}/{path}"

    def _email(self) -> str:
        local = self._rng.choice(_FIRST_NAMES)
        if self._rng.random() < 0.5:
            local += str(self._rng.randint(1, 999))
        return f"{local}@{self._label(4, 9)}.{self._rng.choice(_TOP_LEVEL_DOMAINS)}"

    def _hex(self, length: int) -> str:
        return "".join(self._rng.choice("0123456789abcdef") for _ in range(length))

    def _ssdeep(self) -> str:
        alphabet = string.ascii_letters + string.digits + "+/"
        first = "".join(self._rng.choice(alphabet) for _ in range(self._rng.randint(30, 60)))
        second = "".join(self._rng.choice(alphabet) for _ in range(self._rng.randint(10, 30)))
        return f"{self._rng.choice([96, 192, 384, 768, 1536])}:{first}:{second}"

    def _file_name(self) -> str:
        folder = self._rng.choice(["Users\\Public", "Windows\\Temp", "Users\\Administrator\\AppData\\Local\\Temp"])
        return f"{folder}\\{self._label(3, 8)}.{self._rng.choice(_FILE_EXTENSIONS)}"

    def _tags(self) -> list[dict[str, str]] | None:
        if self._rng.random() < 0.6:
            return None
        return [self._tag() for _ in range(self._rng.randint(1, 4))]

    def _tag(self) -> dict[str, str]:
        tag_id = "".join(self._rng.choice(string.ascii_lowercase + string.digits) for _ in range(3))
        return {"id": tag_id, "name": self._rng.choice(self._tag_names)}

    def _score_or_unknown(self, unknown_share: float = 0.3) -> int:
        # ThreatStream writes -1 where a score is unknown.
        return -1 if self._rng.random() < unknown_share else self._rng.randint(0, 100)

    def _import_note(self) -> str:
        return f"imported by user {self._rng.choice([1, 136, 142, 143, self._rng.randint(2, 500)])}"


def stamp(obj: dict[str, Any], update_id: int) -> dict[str, Any]:
    """Set the update_id and the `sort` key that the API derives from it, and return `obj`."""
    obj["update_id"] = update_id
    obj["sort"] = [update_id]
    return obj


def _deactivation_note(moment: datetime) -> str:
    # The form of the note ThreatStream writes when its expiry job deactivates an indicator.
    return f"bifocals_deactivated_on_{moment:%Y-%m-%d_%H:%M:%S.%f}"


def _merge(preferred: Iterable[Any] | None, fallback: list[Any]) -> list[Any]:
    merged = list(preferred or [])
    merged.extend(value for value in fallback if value not in merged)
    return merged


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def _as_int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
