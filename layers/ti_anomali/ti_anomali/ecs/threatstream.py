"""Map indicators pushed by the Anomali Elastic Extension (the `threatstream` dataset) to ECS documents.

The steps and their order follow the `threatstream` ingest pipeline of Elastic's `ti_anomali`
package: its 1.x source, plus what the documents of version 2.4.0 show it adds since
(`threat.indicator.name`, `related.ip`, a GeoIP lookup, `@timestamp` from `added_at`, the IOC
expiration duration), with `event.severity` on the 2.5.0 scale. The Extension sends flat objects
(`srcip`, `domain`, `url`, `md5`, `added_at`, `detail`, ...). What the pipeline maps to ECS moves
out of the object, and what is left stays under `anomali.threatstream`.

Elastic's pipeline fails on some bad values, and lets others through into documents that the
index rejects. For both, this mapper records the problem in `error.message`, sets
`event.kind: pipeline_error`, keeps the raw object in `event.original` and maps the rest of the
object, so a bad record is never lost.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ti_anomali.ecs.common import (
    ECS_VERSION,
    FEED_DASHBOARD_ID,
    FEED_NAME,
    INDICATOR_TYPE_BY_ITYPE,
    MODULE,
    PIPELINE_ERROR_KIND,
    PRESERVE_ORIGINAL_TAG,
    TimestampRangeError,
    append_unique,
    bounded_id,
    confidence_level,
    drop_empty,
    event_severity,
    format_timestamp_millis,
    get_field,
    integer_text,
    is_ip_address,
    is_number,
    parse_double,
    parse_long,
    parse_timestamp,
    set_field,
    show_value,
    text_digest,
    to_keyword,
    uri_parts,
    validate_namespace,
)

if TYPE_CHECKING:
    from ti_anomali.ecs.geoip import GeoIP

__all__ = ["DATASET", "ThreatstreamOptions", "canonical_json", "document_id", "map_threatstream"]

DATASET = "ti_anomali.threatstream"

# The pipeline's `marking.tlp` for each ThreatStream classification.
_TLP_BY_CLASSIFICATION = {"private": "AMBER", "public": "WHITE"}

# The `md5` field of the Extension carries any hex digest. The pipeline picks the hash field by
# the digest's length alone.
_HASH_FIELD_BY_LENGTH = {32: "md5", 40: "sha1", 64: "sha256", 128: "sha512"}

# The field of the pushed object that contains the indicator itself, by `value_type`. It becomes
# `threat.indicator.name`.
_VALUE_FIELD_BY_VALUE_TYPE = {"ip": "srcip", "domain": "domain", "url": "url", "email": "email", "md5": "md5"}

# Fields the pipeline removes once it has mapped them.
_DROPPED_FIELDS = ("asn", "date_first", "date_last", "detail", "lat", "lon")

# `detail` is a comma-separated list of tags, in which `\,` is a comma inside a tag.
_UNESCAPED_COMMA = re.compile(r"(?<!\\),")

# `anomali.threatstream.confidence` is a `short` in the index template.
_SHORT_MIN, _SHORT_MAX = -(2**15), 2**15 - 1
_MAX_LATITUDE = 90.0
_MAX_LONGITUDE = 180.0


@dataclass(frozen=True)
class ThreatstreamOptions:
    """Settings of one mapping run, the same for every object of a request."""

    now: datetime
    """Receive time, timezone-aware. It becomes `@timestamp` of an object without a valid `added_at`."""
    ioc_duration: timedelta | None = timedelta(days=90)
    """Time after `added_at` at which an indicator without `deleted_at` expires, or None for never."""
    tags: tuple[str, ...] = ()
    """Configured tags, placed before the tags taken from the indicator's `detail`."""
    preserve_original: bool = False
    """Keep the raw object in `event.original` and put the tag `preserve_original_event` first."""
    namespace: str = "default"
    """Data stream namespace, as in `logs-ti_anomali.threatstream-<namespace>`."""
    geoip: GeoIP | None = None
    """City database for `threat.indicator.geo`. Without it, only the pushed location is kept."""

    def __post_init__(self) -> None:
        if self.now.utcoffset() is None:
            raise ValueError(f"ThreatstreamOptions.now must be timezone-aware, got {self.now.isoformat()}")
        validate_namespace(self.namespace)
        object.__setattr__(self, "now", self.now.astimezone(UTC))
        object.__setattr__(self, "tags", tuple(self.tags))


def map_threatstream(obj: dict[str, Any], options: ThreatstreamOptions, original: str | None = None) -> dict[str, Any]:
    """Map one pushed indicator to an ECS document, leaving `obj` itself unchanged.

    `original` is the object's raw JSON text for `event.original`. Without it, the object is
    serialised again. Never raises for an object parsed from JSON that Python can copy, that is,
    one nested less deeply than the recursion limit. Every problem becomes an entry in the list
    `error.message`, with `event.kind: pipeline_error`, and the document is still returned.
    """
    mapping = _ThreatstreamMapping(obj, options)
    try:
        mapping.run()
    except Exception as exc:  # noqa: BLE001 - the contract is a document for every object
        mapping.fail(f"mapping stopped at an unexpected {type(exc).__name__}: {exc}")
    return mapping.finish(obj, original)


def canonical_json(obj: Any) -> str:
    """Serialise a parsed object the same way whatever its key order or whitespace was."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=repr)


def document_id(document: dict[str, Any], obj: dict[str, Any]) -> str:
    """Return a deterministic `_id` for the document mapped from `obj`.

    `<id>-<update_id>` identifies one update of one indicator, so pushing the same update twice
    leaves one document. Without both ids the `_id` is the SHA-256 of the object's canonical
    JSON, so a replayed request still adds nothing.
    """
    indicator_id = get_field(document, "anomali.threatstream.id")
    update_id = get_field(document, "anomali.threatstream.update_id")
    if isinstance(indicator_id, str) and isinstance(update_id, str) and indicator_id and update_id:
        return bounded_id(f"{indicator_id}-{update_id}")
    return text_digest(canonical_json(obj))


class _ThreatstreamMapping:
    """The state of mapping one object: what is left of it, the document so far, the errors."""

    def __init__(self, obj: dict[str, Any], options: ThreatstreamOptions) -> None:
        self.source: dict[str, Any] = copy.deepcopy(obj)
        self.doc: dict[str, Any] = {}
        self.errors: list[str] = []
        self.options = options
        self.name = self._indicator_value()

    def fail(self, message: str) -> None:
        self.errors.append(message)

    def run(self) -> None:
        self._set_constants()
        self._map_indicator_type()
        self._map_dates()
        self._map_location()
        self._map_marking()
        self._map_confidence()
        self._map_autonomous_system()
        self._map_ip()
        self._map_url()
        self._map_country()
        self._map_hash()
        self._map_provider()
        self._map_severity()
        self._map_trusted_circles()
        self._map_detail_tags()
        self._map_ids()
        self._map_name()
        self._map_geoip()
        for name in _DROPPED_FIELDS:
            self.source.pop(name, None)

    def finish(self, obj: dict[str, Any], original: str | None) -> dict[str, Any]:
        set_field(self.doc, "anomali.threatstream", self.source)
        if self.errors:
            set_field(self.doc, "error.message", self.errors)
            set_field(self.doc, "event.kind", PIPELINE_ERROR_KIND)
            _add_tag(self.doc, PRESERVE_ORIGINAL_TAG)
        if self.errors or self.options.preserve_original:
            set_field(self.doc, "event.original", original if original is not None else _serialise(obj))
        return drop_empty(self.doc)

    def _indicator_value(self) -> Any:
        value_type = self.source.get("value_type")
        field = _VALUE_FIELD_BY_VALUE_TYPE.get(value_type) if isinstance(value_type, str) else None
        return self.source.get(field) if field is not None else None

    # --- steps, in the pipeline's order ---------------------------------------------------------

    def _set_constants(self) -> None:
        # NOTE: the Elastic Agent puts `preserve_original_event` before the configured tags.
        tags = [PRESERVE_ORIGINAL_TAG] if self.options.preserve_original else []
        tags.extend(tag for tag in self.options.tags if tag not in tags)
        self.doc.update(
            {
                "@timestamp": format_timestamp_millis(self.options.now),
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

    def _map_indicator_type(self) -> None:
        # NOTE: like the pipeline, an itype outside the table sets no type and is no error. The
        # table is the intelligence pipeline's, which maps the 80 itypes of the threatstream
        # pipeline's 1.x table the same way and 90 more that Elastic may leave without a type here.
        itype = self.source.get("itype")
        indicator_type = INDICATOR_TYPE_BY_ITYPE.get(itype) if isinstance(itype, str) else None
        if indicator_type is None:
            return
        ip = self.source.get("srcip")
        if indicator_type == "ipv4-addr" and isinstance(ip, str) and ":" in ip:
            indicator_type = "ipv6-addr"
        set_field(self.doc, "threat.indicator.type", indicator_type)

    def _map_dates(self) -> None:
        added_at = self._date("added_at")
        if added_at is not None:
            self.source["added_at"] = format_timestamp_millis(added_at)
            self.doc["@timestamp"] = format_timestamp_millis(added_at)

        deleted_at = self._deletion(added_at)
        if deleted_at is not None:
            self.source["deleted_at"] = format_timestamp_millis(deleted_at)

        for name, target in (("date_first", "first_seen"), ("date_last", "last_seen")):
            seen = self._date(name)
            if seen is not None:
                set_field(self.doc, f"threat.indicator.{target}", format_timestamp_millis(seen))

    def _deletion(self, added_at: datetime | None) -> datetime | None:
        """Return `deleted_at` as given, else `added_at` plus the IOC duration, else None."""
        if self.source.get("deleted_at") is not None:
            given = self._date("deleted_at", far_future_is_missing=True)
            if given is not None:
                return given
        if added_at is None or self.options.ioc_duration is None:
            return None
        try:
            return added_at + self.options.ioc_duration
        except OverflowError:
            return None

    def _date(self, name: str, *, far_future_is_missing: bool = False) -> datetime | None:
        """Parse the ISO 8601 field `name`. A bad value is removed and recorded as an error."""
        value = self.source.get(name)
        if value is None:
            return None
        try:
            if not isinstance(value, str):
                raise ValueError(f"{value!r} is not text")
            return parse_timestamp(value)
        except TimestampRangeError as exc:
            if far_future_is_missing and exc.after_max:
                # A deletion past the year 9999 never comes, as if there were none.
                self.source.pop(name)
                return None
            self.fail(f"{name} {show_value(value)} is outside the years 1 to 9999, so it is left out")
        except ValueError:
            self.fail(f"{name} {show_value(value)} is not an ISO 8601 timestamp, so it is left out")
        self.source.pop(name)
        return None

    def _map_location(self) -> None:
        latitude, longitude = self.source.get("lat"), self.source.get("lon")
        if latitude is None or longitude is None:
            return

        # A geo_point needs both coordinates, so one bad coordinate drops the location.
        location = {
            "lat": self._coordinate("lat", latitude, _MAX_LATITUDE),
            "lon": self._coordinate("lon", longitude, _MAX_LONGITUDE),
        }
        if None not in location.values():
            set_field(self.doc, "threat.indicator.geo.location", location)

    def _coordinate(self, name: str, value: Any, limit: float) -> float | None:
        try:
            degrees = parse_double(value)
        except ValueError:
            self.fail(f"{name} {show_value(value)} is not a number, so threat.indicator.geo.location is not set")
            return None
        if abs(degrees) > limit:
            self.fail(
                f"{name} {show_value(value)} is outside -{limit:g} to {limit:g} degrees, "
                "so threat.indicator.geo.location is not set"
            )
            return None
        return degrees

    def _map_marking(self) -> None:
        classification = self.source.get("classification")
        tlp = _TLP_BY_CLASSIFICATION.get(classification) if isinstance(classification, str) else None
        if tlp is not None:
            append_unique(self.doc, "threat.indicator.marking.tlp", tlp)

    def _map_confidence(self) -> None:
        confidence = self.source.get("confidence")
        if confidence is None:
            return
        if not is_number(confidence) or not _SHORT_MIN <= confidence <= _SHORT_MAX:
            self.fail(
                f"confidence {show_value(confidence)} is not a number from {_SHORT_MIN} to {_SHORT_MAX}, "
                "so it is left out"
            )
            self.source.pop("confidence")
            return
        set_field(self.doc, "threat.indicator.confidence", confidence_level(confidence))

    def _map_autonomous_system(self) -> None:
        asn = self.source.get("asn")
        if asn is not None and asn != "":
            try:
                set_field(self.doc, "threat.indicator.as.number", parse_long(asn))
            except ValueError:
                self.fail(f"asn {show_value(asn)} is not an integer, so threat.indicator.as.number is not set")

        organization = self.source.pop("org", None)
        if organization is not None:
            set_field(self.doc, "threat.indicator.as.organization.name", organization)

        email = self.source.pop("email", None)
        if email is not None:
            set_field(self.doc, "threat.indicator.email.address", email)

    def _map_ip(self) -> None:
        ip = self.source.get("srcip")
        if ip is None or ip == "":
            return
        if not is_ip_address(ip):
            # NOTE: the value stays under anomali.threatstream, which the template does not index,
            # so the document is still accepted by the `ip` field of threat.indicator.ip.
            self.fail(f"srcip {show_value(ip)} is not an IP address, so threat.indicator.ip is not set")
            return
        set_field(self.doc, "threat.indicator.ip", self.source.pop("srcip"))
        append_unique(self.doc, "related.ip", ip)

    def _map_url(self) -> None:
        url = self.source.get("url")
        if url is not None:
            try:
                parts = uri_parts(url) if isinstance(url, str) else None
            except ValueError:
                parts = None
            if parts is None:
                self.fail(f"url {show_value(url)} is not a URL, so threat.indicator.url is not set")
            else:
                self.source.pop("url")
                if parts.get("original"):
                    parts["full"] = parts["original"]
                set_field(self.doc, "threat.indicator.url", parts)

        # The domain of a parsed URL wins, and the pushed `domain` then stays under anomali.threatstream.
        domain = self.source.get("domain")
        if domain is not None and get_field(self.doc, "threat.indicator.url.domain") is None:
            set_field(self.doc, "threat.indicator.url.domain", self.source.pop("domain"))

    def _map_country(self) -> None:
        country = self.source.pop("country", None)
        if country is not None:
            set_field(self.doc, "threat.indicator.geo.country_iso_code", country)

    def _map_hash(self) -> None:
        digest = self.source.get("md5")
        if digest is None:
            return
        if not isinstance(digest, str):
            self.fail(f"md5 {show_value(digest)} is not text, so threat.indicator.file.hash is not set")
            return
        field = _HASH_FIELD_BY_LENGTH.get(len(digest))
        if field is not None:
            set_field(self.doc, f"threat.indicator.file.hash.{field}", self.source.pop("md5"))

    def _map_provider(self) -> None:
        provider = self.source.pop("source", None)
        if provider is not None:
            set_field(self.doc, "threat.indicator.provider", provider)

    def _map_severity(self) -> None:
        severity = event_severity(self.source.get("severity"))
        if severity is not None:
            set_field(self.doc, "event.severity", severity)

    def _map_trusted_circles(self) -> None:
        circles = self.source.get("trusted_circle_ids")
        if isinstance(circles, str):
            # A list such as ",123," may start or end with a comma.
            self.source["trusted_circle_ids"] = [circle for circle in circles.split(",") if circle]

    def _map_detail_tags(self) -> None:
        detail = self.source.get("detail")
        if detail is None:
            return
        if not isinstance(detail, str):
            self.fail(f"detail {show_value(detail)} is not text, so its tags are left out")
            return
        self.doc["tags"].extend(_UNESCAPED_COMMA.split(detail))

    def _map_ids(self) -> None:
        for name in ("id", "update_id"):
            value = self.source.get(name)
            text = integer_text(value)
            if text is None:
                self.fail(f"{name} {show_value(value)} is not an integer, so the document has no {name}")
                self.source.pop(name, None)
                continue
            self.source[name] = text

        for name in ("source_feed_id", "import_session_id"):
            if name in self.source:
                self.source[name] = to_keyword(self.source[name])

    def _map_name(self) -> None:
        if isinstance(self.name, str) and self.name:
            set_field(self.doc, "threat.indicator.name", self.name)

    def _map_geoip(self) -> None:
        ip = get_field(self.doc, "threat.indicator.ip")
        if self.options.geoip is None or ip is None:
            return
        # NOTE: as with Elasticsearch's geoip processor, a database entry replaces the location
        # and country that came with the object. Without an entry, those stay.
        geo = self.options.geoip.lookup(ip)
        if geo:
            set_field(self.doc, "threat.indicator.geo", geo)


def _add_tag(doc: dict[str, Any], tag: str) -> None:
    tags = doc.setdefault("tags", [])
    if tag not in tags:
        tags.append(tag)


def _serialise(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, default=repr)
