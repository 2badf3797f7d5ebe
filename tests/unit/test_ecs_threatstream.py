"""Rules of the threatstream mapper, with the pushed object of tests/fixtures/threatstream."""

from __future__ import annotations

import copy
import hashlib
import ipaddress
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ti_anomali.ecs.common import parse_timestamp
from ti_anomali.ecs.geoip import GeoIP
from ti_anomali.ecs.threatstream import ThreatstreamOptions, canonical_json, document_id, map_threatstream

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "threatstream"
NOW = datetime(2026, 3, 5, 11, 11, 48, 666398, tzinfo=UTC)
OPTIONS = ThreatstreamOptions(now=NOW)
NO_DURATION = ThreatstreamOptions(now=NOW, ioc_duration=None)


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def base(**changes: Any) -> dict[str, Any]:
    """The valid mal-ip fixture with some fields replaced; a value of None removes the field."""
    obj = load("mal-ip")
    obj.update(changes)
    return {name: value for name, value in obj.items() if value is not None}


def errors_of(document: dict[str, Any]) -> list[str]:
    return document.get("error", {}).get("message", [])


def indicator(document: dict[str, Any]) -> dict[str, Any]:
    return document["threat"]["indicator"]


def threatstream(document: dict[str, Any]) -> dict[str, Any]:
    return document["anomali"]["threatstream"]


# --- a valid object -----------------------------------------------------------------------------


def test_valid_object_has_no_error() -> None:
    document = map_threatstream(load("mal-ip"), OPTIONS)

    assert "error" not in document
    assert document["event"]["kind"] == "enrichment"
    assert "original" not in document["event"]


def test_valid_object_maps_to_ecs() -> None:
    document = map_threatstream(load("mal-ip"), OPTIONS)

    assert indicator(document)["type"] == "ipv4-addr"
    assert indicator(document)["ip"] == "81.2.69.142"
    assert indicator(document)["name"] == "81.2.69.142"
    assert indicator(document)["as"] == {"number": 64500, "organization": {"name": "Example Transit Ltd"}}
    assert indicator(document)["geo"] == {"country_iso_code": "GB", "location": {"lat": 51.5074, "lon": -0.1278}}
    assert indicator(document)["marking"] == {"tlp": ["AMBER"]}
    assert indicator(document)["confidence"] == "Medium"
    assert indicator(document)["provider"] == "Example Sensor Network"
    assert indicator(document)["first_seen"] == "2026-02-11T09:14:40.000Z"
    assert indicator(document)["last_seen"] == "2026-02-12T17:03:59.000Z"
    assert document["event"]["severity"] == 73
    assert document["event"]["category"] == ["threat"]
    assert document["event"]["type"] == ["indicator"]
    assert document["related"] == {"ip": ["81.2.69.142"]}


def test_valid_object_keeps_rest_under_threatstream() -> None:
    document = map_threatstream(load("mal-ip"), OPTIONS)

    assert threatstream(document) == {
        "id": "4100023001",
        "update_id": "5200004101",
        "value_type": "ip",
        "itype": "mal_ip",
        "classification": "private",
        "confidence": 64,
        "severity": "high",
        "state": "active",
        "added_at": "2026-02-11T09:15:02.000Z",
        "deleted_at": "2026-05-12T09:15:02.000Z",
        "detail2": "imported by user 7731",
        "maltype": "malware:examplebot",
        "trusted_circle_ids": ["310", "712"],
        "source_feed_id": "5521",
        "import_session_id": "90817",
        "resource_uri": "/api/v1/intelligence/P55210004101/",
    }


def test_timestamp_is_added_at() -> None:
    document = map_threatstream(load("mal-ip"), OPTIONS)

    assert document["@timestamp"] == "2026-02-11T09:15:02.000Z"


def test_detail_becomes_tags_after_configured_ones() -> None:
    options = ThreatstreamOptions(now=NOW, tags=("forwarded", "anomali-threatstream"))

    document = map_threatstream(load("mal-ip"), options)

    assert document["tags"] == ["forwarded", "anomali-threatstream", "botnet", "port=8443", "label\\,with comma"]


def test_repeated_detail_tags_are_kept() -> None:
    document = map_threatstream(base(detail="popularity=low,botnet,popularity=low"), OPTIONS)

    assert document["tags"] == ["popularity=low", "botnet", "popularity=low"]


def test_empty_detail_adds_no_tags() -> None:
    document = map_threatstream(base(detail=",,"), OPTIONS)

    assert "tags" not in document
    assert "error" not in document


def test_mapping_leaves_input_unchanged() -> None:
    obj = load("mal-ip")
    before = copy.deepcopy(obj)

    map_threatstream(obj, OPTIONS)

    assert obj == before


def test_preserve_original_puts_tag_first() -> None:
    options = ThreatstreamOptions(now=NOW, tags=("forwarded",), preserve_original=True)
    line = json.dumps(load("mal-ip"))

    document = map_threatstream(load("mal-ip"), options, original=line)

    assert document["event"]["original"] == line
    assert document["tags"][:2] == ["preserve_original_event", "forwarded"]


def test_configured_preserve_tag_is_not_repeated() -> None:
    options = ThreatstreamOptions(now=NOW, tags=("preserve_original_event",), preserve_original=True)

    document = map_threatstream(base(detail=None), options)

    assert document["tags"] == ["preserve_original_event"]


def test_constant_fields_are_set() -> None:
    document = map_threatstream({}, ThreatstreamOptions(now=NOW, namespace="prod_eu"))

    assert document["event"]["module"] == "ti_anomali"
    assert document["event"]["dataset"] == "ti_anomali.threatstream"
    assert document["data_stream"] == {"type": "logs", "dataset": "ti_anomali.threatstream", "namespace": "prod_eu"}
    assert document["threat"]["feed"] == {"name": "Anomali ThreatStream", "dashboard_id": "ti-anomali-overview"}
    assert document["labels"] == {"is_ioc_transform_source": "true"}
    assert document["ecs"] == {"version": "9.3.0"}


# --- dates and deletion -------------------------------------------------------------------------


def test_given_deleted_at_wins_over_duration() -> None:
    document = map_threatstream(base(deleted_at="2026-02-20T00:00:00"), OPTIONS)

    assert threatstream(document)["deleted_at"] == "2026-02-20T00:00:00.000Z"


def test_no_duration_leaves_deleted_at_missing() -> None:
    document = map_threatstream(load("mal-ip"), NO_DURATION)

    assert "deleted_at" not in threatstream(document)


@pytest.mark.parametrize(
    ("duration", "deleted_at"),
    [
        (timedelta(minutes=45), "2026-02-11T10:00:02.000Z"),
        (timedelta(hours=2), "2026-02-11T11:15:02.000Z"),
        (timedelta(days=1), "2026-02-12T09:15:02.000Z"),
    ],
)
def test_duration_counts_from_added_at(duration: timedelta, deleted_at: str) -> None:
    document = map_threatstream(load("mal-ip"), ThreatstreamOptions(now=NOW, ioc_duration=duration))

    assert threatstream(document)["deleted_at"] == deleted_at


def test_invalid_deleted_at_falls_back_to_duration() -> None:
    document = map_threatstream(base(deleted_at="next week"), OPTIONS)

    assert threatstream(document)["deleted_at"] == "2026-05-12T09:15:02.000Z"
    assert errors_of(document) == ['deleted_at "next week" is not an ISO 8601 timestamp, so it is left out']
    assert document["event"]["kind"] == "pipeline_error"


def test_deleted_at_past_year_9999_counts_as_missing() -> None:
    document = map_threatstream(base(deleted_at="10000-01-01T00:00:00"), OPTIONS)

    assert threatstream(document)["deleted_at"] == "2026-05-12T09:15:02.000Z"
    assert "error" not in document


def test_duration_past_year_9999_sets_no_deletion() -> None:
    document = map_threatstream(base(added_at="9999-12-30T00:00:00"), OPTIONS)

    assert "deleted_at" not in threatstream(document)
    assert "error" not in document


def test_missing_added_at_takes_receive_time() -> None:
    document = map_threatstream(base(added_at=None), OPTIONS)

    assert document["@timestamp"] == "2026-03-05T11:11:48.666Z"
    assert "deleted_at" not in threatstream(document)
    assert "error" not in document


def test_invalid_added_at_reports_error() -> None:
    document = map_threatstream(base(added_at=1602159731), OPTIONS)

    assert errors_of(document) == ["added_at 1602159731 is not an ISO 8601 timestamp, so it is left out"]
    assert document["@timestamp"] == "2026-03-05T11:11:48.666Z"
    assert "added_at" not in threatstream(document)
    assert "deleted_at" not in threatstream(document)


def test_added_at_with_offset_becomes_utc() -> None:
    document = map_threatstream(base(added_at="2026-02-11T11:15:02+02:00"), NO_DURATION)

    assert threatstream(document)["added_at"] == "2026-02-11T09:15:02.000Z"
    assert document["@timestamp"] == "2026-02-11T09:15:02.000Z"


def test_invalid_first_seen_reports_error() -> None:
    document = map_threatstream(base(date_first="2026-02-30T00:00:00"), OPTIONS)

    assert "first_seen" not in indicator(document)
    assert errors_of(document) == ['date_first "2026-02-30T00:00:00" is not an ISO 8601 timestamp, so it is left out']


# --- location, marking, confidence, autonomous system -------------------------------------------


def test_latitude_without_longitude_sets_no_location() -> None:
    document = map_threatstream(base(lon=None), OPTIONS)

    assert indicator(document)["geo"] == {"country_iso_code": "GB"}
    assert "lat" not in threatstream(document)


def test_text_coordinates_are_converted() -> None:
    document = map_threatstream(base(lat="51.5", lon="-0.09"), OPTIONS)

    assert indicator(document)["geo"]["location"] == {"lat": 51.5, "lon": -0.09}


def test_invalid_latitude_drops_location() -> None:
    document = map_threatstream(base(lat="north"), OPTIONS)

    assert "location" not in indicator(document)["geo"]
    assert errors_of(document) == ['lat "north" is not a number, so threat.indicator.geo.location is not set']


def test_out_of_range_longitude_drops_location() -> None:
    document = map_threatstream(base(lon=180.5), OPTIONS)

    assert "location" not in indicator(document)["geo"]
    assert errors_of(document) == [
        "lon 180.5 is outside -180 to 180 degrees, so threat.indicator.geo.location is not set"
    ]


@pytest.mark.parametrize(("classification", "tlp"), [("private", ["AMBER"]), ("public", ["WHITE"])])
def test_classification_sets_tlp(classification: str, tlp: list[str]) -> None:
    document = map_threatstream(base(classification=classification), OPTIONS)

    assert indicator(document)["marking"]["tlp"] == tlp


@pytest.mark.parametrize("classification", ["restricted", "PUBLIC", 1])
def test_unknown_classification_sets_no_tlp(classification: Any) -> None:
    document = map_threatstream(base(classification=classification), OPTIONS)

    assert "marking" not in indicator(document)
    assert "error" not in document


@pytest.mark.parametrize(
    ("confidence", "level"),
    [
        (-1, "None"),
        (0, "None"),
        (1, "Low"),
        (29, "Low"),
        (30, "Medium"),
        (69, "Medium"),
        (70, "High"),
        (100, "High"),
        (101, "None"),
    ],
)
def test_confidence_levels(confidence: int, level: str) -> None:
    document = map_threatstream(base(confidence=confidence), OPTIONS)

    assert indicator(document)["confidence"] == level
    assert threatstream(document)["confidence"] == confidence


@pytest.mark.parametrize("confidence", ["high", "50", True, 40000])
def test_invalid_confidence_is_left_out(confidence: Any) -> None:
    document = map_threatstream(base(confidence=confidence), OPTIONS)

    assert "confidence" not in indicator(document)
    assert "confidence" not in threatstream(document)
    assert errors_of(document)[0].startswith(f"confidence {json.dumps(confidence)} is not a number")


def test_asn_not_a_number_reports_error() -> None:
    document = map_threatstream(base(asn="AS64500"), OPTIONS)

    assert "number" not in indicator(document)["as"]
    assert errors_of(document) == ['asn "AS64500" is not an integer, so threat.indicator.as.number is not set']


# --- the indicator itself -----------------------------------------------------------------------


def test_ipv6_address_sets_ipv6_type() -> None:
    document = map_threatstream(base(srcip="2001:db8::17"), OPTIONS)

    assert indicator(document)["type"] == "ipv6-addr"
    assert document["related"]["ip"] == ["2001:db8::17"]


def test_srcip_not_an_ip_reports_error() -> None:
    document = map_threatstream(base(srcip="81.2.69.300"), OPTIONS)

    assert "ip" not in indicator(document)
    assert "related" not in document
    assert threatstream(document)["srcip"] == "81.2.69.300"
    assert errors_of(document) == ['srcip "81.2.69.300" is not an IP address, so threat.indicator.ip is not set']


@pytest.mark.parametrize("itype", ["quantum_ip", None, ["mal_ip"]])
def test_unknown_itype_sets_no_type(itype: Any) -> None:
    document = map_threatstream(base(itype=itype), OPTIONS)

    assert "type" not in indicator(document)
    assert "error" not in document


def test_url_is_split_into_parts() -> None:
    url = "https://login.example.org:8443/account/verify.php?session=7f3a#top"

    document = map_threatstream(base(value_type="url", itype="phish_url", url=url), OPTIONS)

    assert indicator(document)["url"] == {
        "original": url,
        "full": url,
        "scheme": "https",
        "domain": "login.example.org",
        "port": 8443,
        "path": "/account/verify.php",
        "extension": "php",
        "query": "session=7f3a",
        "fragment": "top",
    }
    assert indicator(document)["name"] == url
    assert "url" not in threatstream(document)


def test_unparsable_url_reports_error() -> None:
    document = map_threatstream(base(value_type="url", url="mailto:<a b>"), OPTIONS)

    assert "url" not in indicator(document)
    assert threatstream(document)["url"] == "mailto:<a b>"
    assert errors_of(document) == ['url "mailto:<a b>" is not a URL, so threat.indicator.url is not set']


def test_domain_sets_url_domain() -> None:
    document = map_threatstream(base(value_type="domain", itype="c2_domain", domain="cdn.example.net"), OPTIONS)

    assert indicator(document)["url"] == {"domain": "cdn.example.net"}
    assert indicator(document)["type"] == "domain-name"
    assert indicator(document)["name"] == "cdn.example.net"


def test_url_domain_wins_over_pushed_domain() -> None:
    document = map_threatstream(base(url="http://a.example.com/x", domain="b.example.com"), OPTIONS)

    assert indicator(document)["url"]["domain"] == "a.example.com"
    assert threatstream(document)["domain"] == "b.example.com"


def test_email_sets_address_and_name() -> None:
    document = map_threatstream(base(value_type="email", itype="phish_email", email="a@example.com"), OPTIONS)

    assert indicator(document)["email"] == {"address": "a@example.com"}
    assert indicator(document)["name"] == "a@example.com"
    assert indicator(document)["type"] == "email-addr"


@pytest.mark.parametrize(
    ("digest", "field"),
    [("a" * 32, "md5"), ("b" * 40, "sha1"), ("c" * 64, "sha256"), ("d" * 128, "sha512")],
)
def test_digest_length_picks_hash_field(digest: str, field: str) -> None:
    document = map_threatstream(base(value_type="md5", itype="mal_md5", md5=digest), OPTIONS)

    assert indicator(document)["file"] == {"hash": {field: digest}}
    assert indicator(document)["name"] == digest
    assert "md5" not in threatstream(document)


def test_digest_of_other_length_stays() -> None:
    document = map_threatstream(base(value_type="md5", md5="abc123"), OPTIONS)

    assert "file" not in indicator(document)
    assert threatstream(document)["md5"] == "abc123"
    assert "error" not in document


def test_digest_not_text_reports_error() -> None:
    document = map_threatstream(base(md5=12345), OPTIONS)

    assert errors_of(document) == ["md5 12345 is not text, so threat.indicator.file.hash is not set"]


@pytest.mark.parametrize(("severity", "expected"), [("low", 21), ("medium", 47), ("high", 73), ("very-high", 99)])
def test_severity_scale(severity: str, expected: int) -> None:
    document = map_threatstream(base(severity=severity), OPTIONS)

    assert document["event"]["severity"] == expected
    assert threatstream(document)["severity"] == severity


def test_unknown_severity_sets_no_event_severity() -> None:
    document = map_threatstream(base(severity="critical"), OPTIONS)

    assert "severity" not in document["event"]


def test_empty_trusted_circles_are_removed() -> None:
    document = map_threatstream(base(trusted_circle_ids=",,"), OPTIONS)

    assert "trusted_circle_ids" not in threatstream(document)


def test_detail_not_text_reports_error() -> None:
    document = map_threatstream(base(detail=["botnet"]), OPTIONS)

    assert "tags" not in document or "botnet" not in document["tags"]
    assert errors_of(document) == ['detail ["botnet"] is not text, so its tags are left out']


# --- ids ----------------------------------------------------------------------------------------


def test_ids_above_2_53_stay_exact() -> None:
    document = map_threatstream(base(id=9007199254740993, update_id=18446744073709551621), OPTIONS)

    assert threatstream(document)["id"] == "9007199254740993"
    assert threatstream(document)["update_id"] == "18446744073709551621"


def test_integer_text_id_is_kept() -> None:
    document = map_threatstream(base(id="4100023001"), OPTIONS)

    assert threatstream(document)["id"] == "4100023001"
    assert "error" not in document


@pytest.mark.parametrize("bad_id", [4100023001.0, "41000x", True, None])
def test_bad_id_makes_error_record(bad_id: Any) -> None:
    obj = base()
    obj["id"] = bad_id

    document = map_threatstream(obj, OPTIONS)

    assert "id" not in threatstream(document)
    assert errors_of(document) == [f"id {json.dumps(bad_id)} is not an integer, so the document has no id"]


def test_error_document_carries_original() -> None:
    line = json.dumps(base(id="x"))

    document = map_threatstream(base(id="x"), OPTIONS, original=line)

    assert document["event"]["kind"] == "pipeline_error"
    assert document["event"]["original"] == line
    assert "preserve_original_event" in document["tags"]


def test_error_document_serialises_object() -> None:
    obj = base(id="x")

    document = map_threatstream(obj, OPTIONS)

    assert json.loads(document["event"]["original"]) == obj


def test_document_id_joins_id_and_update_id() -> None:
    obj = load("mal-ip")

    assert document_id(map_threatstream(obj, OPTIONS), obj) == "4100023001-5200004101"


def test_document_id_without_ids_hashes_object() -> None:
    obj = base(update_id=None)

    expected = hashlib.sha256(canonical_json(obj).encode()).hexdigest()
    assert document_id(map_threatstream(obj, OPTIONS), obj) == expected


def test_document_id_ignores_key_order() -> None:
    obj = base(update_id=None)
    reordered = dict(reversed(list(obj.items())))

    first = document_id(map_threatstream(obj, OPTIONS), obj)
    second = document_id(map_threatstream(reordered, OPTIONS), reordered)

    assert first == second


# --- GeoIP and options --------------------------------------------------------------------------


def test_geoip_entry_replaces_pushed_location(geoip: GeoIP) -> None:
    document = map_threatstream(load("mal-ip"), ThreatstreamOptions(now=NOW, geoip=geoip))

    assert indicator(document)["geo"]["city_name"] == "London"
    assert indicator(document)["geo"]["country_iso_code"] == "GB"
    assert indicator(document)["geo"]["location"] == {"lat": 51.5142, "lon": -0.0931}


def test_geoip_miss_keeps_pushed_location(geoip: GeoIP) -> None:
    document = map_threatstream(base(srcip="192.0.2.10"), ThreatstreamOptions(now=NOW, geoip=geoip))

    assert indicator(document)["geo"] == {"country_iso_code": "GB", "location": {"lat": 51.5074, "lon": -0.1278}}


def test_naive_now_is_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        ThreatstreamOptions(now=datetime(2026, 3, 5))  # noqa: DTZ001 - the naive time is the point


def test_now_in_other_zone_becomes_utc() -> None:
    options = ThreatstreamOptions(now=datetime(2026, 3, 5, 13, 0, tzinfo=timezone(timedelta(hours=2))))

    assert options.now == datetime(2026, 3, 5, 11, 0, tzinfo=UTC)


def test_invalid_namespace_is_rejected() -> None:
    with pytest.raises(ValueError, match="'Prod-EU'"):
        ThreatstreamOptions(now=NOW, namespace="Prod-EU")


# --- any JSON object ----------------------------------------------------------------------------

JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
FIELDS = [*sorted(load("mal-ip")), "deleted_at", "url", "domain", "md5", "email"]


def assert_indexable(document: dict[str, Any]) -> None:
    """Check the fields whose template types reject a bad value: dates, IPs, numbers, coordinates."""
    json.dumps(document)
    indicator_fields = document["threat"].get("indicator", {})
    source_fields = document.get("anomali", {}).get("threatstream", {})
    for value in (
        document["@timestamp"],
        *(indicator_fields.get(name) for name in ("first_seen", "last_seen")),
        *(source_fields.get(name) for name in ("added_at", "deleted_at")),
    ):
        if value is not None:
            parse_timestamp(value)
    if "ip" in indicator_fields:
        ipaddress.ip_address(indicator_fields["ip"])
    for ip in document.get("related", {}).get("ip", []):
        ipaddress.ip_address(ip)
    location = indicator_fields.get("geo", {}).get("location")
    if location is not None:
        assert -90 <= location["lat"] <= 90
        assert -180 <= location["lon"] <= 180
    confidence = source_fields.get("confidence")
    if confidence is not None:
        assert -(2**15) <= confidence < 2**15


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changes=st.dictionaries(st.sampled_from(FIELDS), JSON_VALUES, max_size=6))
def test_any_field_values_never_raise(changes: dict[str, Any]) -> None:
    document = map_threatstream(base(**changes), OPTIONS)

    assert document["event"]["kind"] in ("enrichment", "pipeline_error")
    assert not any("unexpected" in message for message in errors_of(document))
    assert_indexable(document)


@settings(max_examples=150, deadline=None)
@given(obj=st.dictionaries(st.text(max_size=12), JSON_VALUES, max_size=8))
def test_any_json_object_never_raises(obj: dict[str, Any]) -> None:
    document = map_threatstream(obj, OPTIONS)

    assert document["ecs"] == {"version": "9.3.0"}
    assert not any("unexpected" in message for message in errors_of(document))
    assert isinstance(document_id(document, obj), str)
    assert_indexable(document)
