"""Map ThreatStream intelligence objects (`GET /api/v2/intelligence/`) to ECS documents.

The steps and their order follow the ingest pipeline of Elastic's `ti_anomali` package,
version 2.4.0, with `event.severity` on the 2.5.0 scale. What the pipeline maps to ECS moves
out of the object; what is left stays under `anomali.threatstream`.

Where Elastic's pipeline fails on a bad value, this mapper records the problem in
`error.message`, sets `event.kind: pipeline_error`, keeps the raw object in `event.original`
and maps the rest of the object, so a bad record is never lost.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from ti_anomali.ecs.common import (
    ECS_VERSION,
    FEED_DASHBOARD_ID,
    FEED_NAME,
    HASH_FIELD_BY_SUBTYPE,
    INDICATOR_TYPE_BY_ITYPE,
    MODULE,
    PIPELINE_ERROR_KIND,
    PRESERVE_ORIGINAL_TAG,
    TimestampRangeError,
    append_unique,
    bounded_id,
    confidence_level,
    deletion_time,
    event_severity,
    format_timestamp,
    format_timestamp_millis,
    get_field,
    hash_field_for_length,
    is_number,
    parse_double,
    parse_duration,
    parse_long,
    parse_timestamp,
    set_field,
    text_digest,
    tlp_marking,
    to_keyword,
    uri_parts,
    validate_namespace,
    without_empty,
)

if TYPE_CHECKING:
    from ti_anomali.ecs.geoip import GeoIP

__all__ = ["DATASET", "MappingOptions", "document_id", "map_intelligence", "parse_duration"]

DATASET = "ti_anomali.intelligence"

# Fields of the API object that Elastic's pipeline drops: internal, repeated elsewhere, or mapped
# to ECS by a step that only reads them.
_DROPPED_FIELDS = (
    "created_by",
    "description",
    "locations",
    "modified_ts",
    "resource_uri",
    "sort",
    "source_locations",
    "target_industry",
    "threatscore",
    "workgroups",
)
_DROPPED_META_FIELDS = ("detail", "detail2")
_REGISTRANT_PARTS = ("address", "email", "name", "org", "phone")
_INTEGER_TEXT = re.compile(r"-?[0-9]+")
_MAX_LATITUDE = 90.0
_MAX_LONGITUDE = 180.0
_MESSAGE_VALUE_CHARS = 120


@dataclass(frozen=True)
class MappingOptions:
    """Settings of one mapping run, the same for every object of a page."""

    now: datetime
    """Ingest time, timezone-aware. It becomes `@timestamp` and starts the IOC duration."""
    ioc_duration: timedelta | None = timedelta(days=90)
    """Maximum time an indicator stays in the latest index, or None for no limit."""
    tags: tuple[str, ...] = ()
    """Configured tags, placed before the indicator's own."""
    preserve_original: bool = False
    """Keep the raw object in `event.original` and add the tag `preserve_original_event`."""
    namespace: str = "default"
    """Data stream namespace, as in `logs-ti_anomali.intelligence-<namespace>`."""
    geoip: GeoIP | None = None
    """City database for `threat.indicator.geo`. Without it, only the API's own location is kept."""

    def __post_init__(self) -> None:
        if self.now.utcoffset() is None:
            raise ValueError(f"MappingOptions.now must be timezone-aware, got {self.now.isoformat()}")
        validate_namespace(self.namespace)
        object.__setattr__(self, "now", self.now.astimezone(UTC))
        object.__setattr__(self, "tags", tuple(self.tags))

    @cached_property
    def timestamp(self) -> str:
        """`@timestamp` of every document mapped with these options: `now` as Elasticsearch prints it."""
        return format_timestamp(self.now)


def map_intelligence(
    obj: dict[str, Any], options: MappingOptions, original: str | None = None
) -> dict[str, Any]:
    """Map one intelligence object to an ECS document, leaving `obj` itself unchanged.

    `original` is the object's raw JSON text for `event.original`. Without it, the object is
    serialised again. Never raises for an object parsed from JSON: every problem becomes an
    entry in the list `error.message`, with `event.kind: pipeline_error`, and the document is
    still returned.
    """
    mapping = _IntelligenceMapping(obj, options)
    try:
        mapping.run()
    except Exception as exc:  # noqa: BLE001 - the contract is a document for every object
        mapping.fail(f"mapping stopped at an unexpected {type(exc).__name__}: {exc}")
    return mapping.finish(obj, original)


def document_id(doc: dict[str, Any]) -> str:
    """Return a deterministic `_id` for a mapped document.

    `<id>-<update_id>` identifies one update of one indicator, so writing the same update twice
    leaves one document. A document without both ids, which is always a pipeline error, gets
    the SHA-256 of its `event.original`, or of the canonical JSON of `anomali.threatstream`.
    """
    threatstream = get_field(doc, "anomali.threatstream")
    threatstream = threatstream if isinstance(threatstream, dict) else {}
    indicator_id, update_id = threatstream.get("id"), threatstream.get("update_id")
    if isinstance(indicator_id, str) and isinstance(update_id, str) and indicator_id and update_id:
        return bounded_id(f"{indicator_id}-{update_id}")

    original = get_field(doc, "event.original")
    if isinstance(original, str):
        basis = original
    else:
        stable = {name: value for name, value in threatstream.items() if name != "deletion_scheduled_at"}
        basis = json.dumps(stable, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=repr)
    return text_digest(basis)


class _IntelligenceMapping:
    """The state of mapping one object: what is left of it, the document so far, the errors."""

    def __init__(self, obj: dict[str, Any], options: MappingOptions) -> None:
        self.source: dict[str, Any] = _working_copy(obj)
        self.doc: dict[str, Any] = {}
        self.errors: list[str] = []
        self.options = options

    def fail(self, message: str) -> None:
        self.errors.append(message)

    def run(self) -> None:
        self._set_constants()
        self._map_dates()
        self._schedule_deletion()
        self._map_indicator_type()
        self._map_location()
        self._map_marking()
        self._map_confidence()
        self._map_autonomous_system()
        self._map_ip()
        self._map_observable()
        self._map_file()
        self._map_provider()
        self._map_severity()
        self._map_tags()
        self._map_ids()
        self._map_registrant()
        self._drop_unmapped()

    def finish(self, obj: dict[str, Any], original: str | None) -> dict[str, Any]:
        set_field(self.doc, "anomali.threatstream", self.source)
        if self.errors:
            set_field(self.doc, "error.message", self.errors)
            set_field(self.doc, "event.kind", PIPELINE_ERROR_KIND)
            _add_tag(self.doc, PRESERVE_ORIGINAL_TAG)
        if self.errors or self.options.preserve_original:
            set_field(self.doc, "event.original", original if original is not None else _serialise(obj))
        return without_empty(self.doc)

    # --- steps, in the pipeline's order ---------------------------------------------------------

    def _set_constants(self) -> None:
        tags = list(self.options.tags)
        if self.options.preserve_original and PRESERVE_ORIGINAL_TAG not in tags:
            tags.append(PRESERVE_ORIGINAL_TAG)
        self.doc.update(
            {
                "@timestamp": self.options.timestamp,
                "ecs": {"version": ECS_VERSION},
                "event": {
                    "kind": "enrichment",
                    "category": ["threat"],
                    "type": ["indicator"],
                    "module": MODULE,
                    "dataset": DATASET,
                },
                "data_stream": {"type": "logs", "dataset": DATASET, "namespace": self.options.namespace},
                "threat": {"feed": {"name": FEED_NAME, "dashboard_id": FEED_DASHBOARD_ID}},
                "labels": {"is_ioc_transform_source": "true"},
                "tags": tags,
            }
        )

    def _map_dates(self) -> None:
        created = self.source.pop("created_ts", None)
        if created is not None:
            set_field(self.doc, "event.created", created)

        modified = self.source.get("modified_ts")
        if modified is None or modified == "":
            return
        try:
            modified_at = _parse_text_timestamp(modified)
        except ValueError:
            self.fail(
                f"modified_ts {_show(modified)} is not an ISO 8601 timestamp, "
                "so threat.indicator.modified_at is not set"
            )
            return
        set_field(self.doc, "threat.indicator.modified_at", format_timestamp_millis(modified_at))

    def _schedule_deletion(self) -> None:
        expiration = self._expiration()
        deletion = deletion_time(self.options.now, self.options.ioc_duration, expiration)
        if deletion is not None:
            self.source["deletion_scheduled_at"] = format_timestamp(deletion)

    def _expiration(self) -> datetime | None:
        value = self.source.get("expiration_ts")
        if value is None or value == "":
            return None
        try:
            return _parse_text_timestamp(value)
        except TimestampRangeError as exc:
            # A date past the year 9999 is later than any deletion time. A date before the year 1
            # has long passed.
            return None if exc.after_max else datetime.min.replace(tzinfo=UTC)
        except ValueError:
            self.fail(
                f"expiration_ts {_show(value)} is not an ISO 8601 timestamp, "
                "so deletion_scheduled_at comes from the IOC duration alone"
            )
            return None

    def _map_indicator_type(self) -> None:
        itype = self.source.get("itype")
        indicator_type = INDICATOR_TYPE_BY_ITYPE.get(itype) if isinstance(itype, str) else None
        if indicator_type is None:
            self.fail(
                f"itype {_show(itype)} has no STIX 2.0 indicator type, so threat.indicator.type is not set"
            )
            return

        ip = self.source.get("ip")
        if indicator_type == "ipv4-addr" and isinstance(ip, str) and ":" in ip:
            indicator_type = "ipv6-addr"
        set_field(self.doc, "threat.indicator.type", indicator_type)

    def _map_location(self) -> None:
        latitude = self.source.pop("latitude", None)
        longitude = self.source.pop("longitude", None)
        if latitude is None or longitude is None:
            return

        # A geo_point needs both coordinates, so one bad coordinate drops the location.
        location = {
            "lat": self._coordinate("latitude", latitude, _MAX_LATITUDE),
            "lon": self._coordinate("longitude", longitude, _MAX_LONGITUDE),
        }
        if None not in location.values():
            set_field(self.doc, "threat.indicator.geo.location", location)

    def _coordinate(self, name: str, value: Any, limit: float) -> float | None:
        try:
            degrees = parse_double(value)
        except ValueError:
            self.fail(f"{name} {_show(value)} is not a number, so threat.indicator.geo.location is not set")
            return None
        if abs(degrees) > limit:
            self.fail(
                f"{name} {_show(value)} is outside -{limit:g} to {limit:g} degrees, "
                "so threat.indicator.geo.location is not set"
            )
            return None
        return degrees

    def _map_marking(self) -> None:
        tlp = self.source.pop("tlp", None)
        if tlp is not None and not isinstance(tlp, str):
            self.fail(f"tlp {_show(tlp)} is not text, so the TLP comes from is_public")
            tlp = None

        is_public = self.source.get("is_public")
        marking = tlp_marking(tlp, is_public)
        if marking is None:
            self.fail(
                f"tlp is missing and is_public is {_show(is_public)}, not true or false, "
                "so threat.indicator.marking.tlp is not set"
            )
            return
        set_field(self.doc, "threat.indicator.marking.tlp", marking)

    def _map_confidence(self) -> None:
        confidence = self.source.get("confidence")
        if confidence is None:
            return
        if not is_number(confidence):
            self.fail(
                f"confidence {_show(confidence)} is not a number, so threat.indicator.confidence is not set"
            )
            return
        set_field(self.doc, "threat.indicator.confidence", confidence_level(confidence))

    def _map_autonomous_system(self) -> None:
        asn = self.source.pop("asn", None)
        if asn is not None and asn != "":
            try:
                set_field(self.doc, "threat.indicator.as.number", parse_long(asn))
            except ValueError:
                self.fail(f"asn {_show(asn)} is not an integer, so threat.indicator.as.number is not set")

        organization = self.source.get("org")
        if organization is not None and organization != "":
            set_field(self.doc, "threat.indicator.as.organization.name", self.source.pop("org"))

        country = self.source.pop("country", None)
        if country is not None:
            set_field(self.doc, "threat.indicator.geo.country_iso_code", country)

    def _map_ip(self) -> None:
        ip = self.source.pop("ip", None)
        if ip is None or ip == "":
            return
        if not isinstance(ip, str) or not _is_ip_address(ip):
            self.fail(f"ip {_show(ip)} is not an IP address, so threat.indicator.ip is not set")
            return
        set_field(self.doc, "threat.indicator.ip", ip)
        append_unique(self.doc, "related.ip", ip)

        # NOTE: as with Elasticsearch's geoip processor, a database entry replaces the location
        # that came with the object. Without an entry, that location stays.
        geo = self.options.geoip.lookup(ip) if self.options.geoip is not None else None
        if geo:
            set_field(self.doc, "threat.indicator.geo", geo)

    def _map_observable(self) -> None:
        kind, value = self.source.get("type"), self.source.get("value")
        has_value = value is not None and value != ""

        if kind == "email" and has_value:
            set_field(self.doc, "threat.indicator.email.address", value)
            append_unique(self.doc, "related.user", value)
        elif kind == "domain" and has_value:
            set_field(self.doc, "threat.indicator.url.domain", value)
            append_unique(self.doc, "related.hosts", value)
        elif kind == "url":
            self._map_url(value)

        if has_value:
            set_field(self.doc, "threat.indicator.name", value)

    def _map_url(self, value: Any) -> None:
        try:
            parts = uri_parts(value) if isinstance(value, str) else None
        except ValueError:
            parts = None
        if parts is None:
            self.fail(f"value {_show(value)} is not a URL, so threat.indicator.url is not set")
            return
        if parts.get("original"):
            parts["full"] = parts["original"]
        set_field(self.doc, "threat.indicator.url", parts)

    def _map_file(self) -> None:
        subtype = self.source.pop("subtype", None)
        value, itype = self.source.get("value"), self.source.get("itype")
        if not isinstance(value, str) or not value:
            return

        if self.source.get("type") == "md5":
            # NOTE: the subtype names the algorithm. Elastic's pipeline sets no hash field
            # without one, while this mapper falls back to the digest's length.
            field = HASH_FIELD_BY_SUBTYPE.get(subtype) if isinstance(subtype, str) else None
            field = field or hash_field_for_length(value)
            if field is not None:
                set_field(self.doc, f"threat.indicator.file.hash.{field}", value)
            append_unique(self.doc, "related.hash", value)

        if isinstance(itype, str) and itype.endswith("_ssdeep"):
            set_field(self.doc, "threat.indicator.file.hash.ssdeep", value)
        if isinstance(itype, str) and itype.endswith("_file_name"):
            set_field(self.doc, "threat.indicator.file.path", value)

    def _map_provider(self) -> None:
        provider = self.source.pop("source", None)
        if provider is not None:
            set_field(self.doc, "threat.indicator.provider", provider)

        for name in ("import_session_id", "trusted_circle_ids"):
            if name in self.source:
                self.source[name] = to_keyword(self.source[name])

    def _map_severity(self) -> None:
        meta = self.source.get("meta")
        severity = event_severity(meta.get("severity")) if isinstance(meta, dict) else None
        if severity is not None:
            set_field(self.doc, "event.severity", severity)

    def _map_tags(self) -> None:
        tags = self.source.pop("tags", None)
        if tags is None:
            return
        if not isinstance(tags, list):
            self.fail(f"tags {_show(tags)} is not a list, so the indicator's tags are left out")
            return
        for index, tag in enumerate(tags):
            name = tag.get("name") if isinstance(tag, dict) else None
            if name is None or name == "" or isinstance(name, dict | list):
                self.fail(f"tags[{index}] {_show(tag)} has no name, so it is left out of tags")
                continue
            _add_tag(self.doc, to_keyword(name), allow_duplicates=True)

    def _map_ids(self) -> None:
        for name in ("id", "update_id"):
            value = self.source.get(name)
            text = _integer_text(value)
            if text is None:
                self.fail(f"{name} {_show(value)} is not an integer, so the document has no {name}")
                self.source.pop(name, None)
                continue
            self.source[name] = text

    def _map_registrant(self) -> None:
        meta = self.source.get("meta")
        if not isinstance(meta, dict):
            return
        registrant = {
            part: meta.pop(f"registrant_{part}") for part in _REGISTRANT_PARTS if f"registrant_{part}" in meta
        }
        if registrant:
            existing = meta.get("registrant")
            meta["registrant"] = {**existing, **registrant} if isinstance(existing, dict) else registrant

        email = get_field(meta, "registrant.email")
        if email is not None and email != "":
            append_unique(self.doc, "related.user", email)

    def _drop_unmapped(self) -> None:
        for name in _DROPPED_FIELDS:
            self.source.pop(name, None)
        meta = self.source.get("meta")
        if isinstance(meta, dict):
            for name in _DROPPED_META_FIELDS:
                meta.pop(name, None)


def _working_copy(obj: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of the object that the steps may change without changing `obj`.

    The steps replace, add and remove fields of the object and of its `meta`, and change nothing
    deeper, so a plain dict needs only those two levels copied here. `finish` copies the rest,
    because `without_empty` shares nothing with its input. Anything else is copied whole.
    """
    if type(obj) is not dict:
        return copy.deepcopy(obj)
    working = dict(obj)
    meta = working.get("meta")
    if isinstance(meta, dict):
        working["meta"] = copy.copy(meta)
    return working


def _add_tag(doc: dict[str, Any], tag: Any, *, allow_duplicates: bool = False) -> None:
    tags = doc.setdefault("tags", [])
    if allow_duplicates or tag not in tags:
        tags.append(tag)


def _integer_text(value: Any) -> str | None:
    """Return an id as exact decimal text, or None when it is not an integer."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and _INTEGER_TEXT.fullmatch(value):
        return value
    return None


def _parse_text_timestamp(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not text")
    return parse_timestamp(value)


def _is_ip_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _serialise(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, default=repr)


def _show(value: Any) -> str:
    """Render a value for an error message: JSON, so types show, cut to a readable length."""
    text = _serialise(value)
    if len(text) > _MESSAGE_VALUE_CHARS:
        return text[: _MESSAGE_VALUE_CHARS - 3] + "..."
    return text
