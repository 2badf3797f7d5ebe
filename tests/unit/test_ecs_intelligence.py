"""Rules of the intelligence mapper, with the broken input of tests/fixtures/intelligence."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ti_anomali.ecs.common import (
    deletion_time,
    event_severity,
    format_timestamp,
    format_timestamp_millis,
    parse_timestamp,
    uri_parts,
)
from ti_anomali.ecs.geoip import GeoIP, GeoIPDatabaseError
from ti_anomali.ecs.intelligence import MappingOptions, document_id, map_intelligence, parse_duration

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "intelligence"
NOW = datetime(2026, 3, 5, 11, 11, 48, 666398, tzinfo=UTC)
OPTIONS = MappingOptions(now=NOW, ioc_duration=timedelta(days=85))


def load(name: str) -> dict[str, Any]:
    """One fixture object, parsed so integers stay exact."""
    return json.loads((FIXTURES / f"{name}.json").read_text())


def base(**changes: Any) -> dict[str, Any]:
    """The valid scan-ip fixture with some fields replaced."""
    obj = load("scan-ip")
    obj.update(changes)
    return obj


def errors_of(document: dict[str, Any]) -> list[str]:
    return document.get("error", {}).get("message", [])


def indicator(document: dict[str, Any]) -> dict[str, Any]:
    return document["threat"]["indicator"]


def threatstream(document: dict[str, Any]) -> dict[str, Any]:
    return document["anomali"]["threatstream"]


# --- a valid object -----------------------------------------------------------------------------


def test_valid_object_has_no_error() -> None:
    document = map_intelligence(load("scan-ip"), OPTIONS)

    assert "error" not in document
    assert document["event"]["kind"] == "enrichment"
    assert "preserve_original_event" not in document["tags"]
    assert "original" not in document["event"]


def test_valid_object_maps_to_ecs() -> None:
    document = map_intelligence(load("scan-ip"), OPTIONS)

    assert indicator(document)["type"] == "ipv4-addr"
    assert indicator(document)["ip"] == "216.160.83.56"
    assert indicator(document)["as"] == {"number": 209, "organization": {"name": "CenturyLink"}}
    assert indicator(document)["confidence"] == "Medium"
    assert indicator(document)["marking"] == {"tlp": "WHITE"}
    assert indicator(document)["provider"] == "Honeypot Network"
    assert indicator(document)["modified_at"] == "2026-01-14T21:03:09.457Z"
    assert indicator(document)["name"] == "216.160.83.56"
    assert document["event"]["created"] == "2025-11-02T08:15:30.120Z"
    assert document["event"]["severity"] == 47
    assert document["related"] == {"ip": ["216.160.83.56"]}
    assert document["tags"] == ["ssh-scanner"]


def test_valid_object_keeps_rest_under_threatstream() -> None:
    document = map_intelligence(load("scan-ip"), OPTIONS)

    assert threatstream(document) == {
        "id": "310457721",
        "update_id": "602334815",
        "uuid": "5f0c8a52-3d0e-4c61-9a57-2b7e4d1c9f30",
        "value": "216.160.83.56",
        "type": "ip",
        "itype": "scan_ip",
        "threat_type": "scan",
        "status": "active",
        "confidence": 42,
        "source_reported_confidence": 40,
        "retina_confidence": 44,
        "expiration_ts": "2026-04-12T08:15:30.000Z",
        "deletion_scheduled_at": "2026-04-12T08:15:30.000Z",
        "meta": {"severity": "medium"},
        "is_public": True,
        "trusted_circle_ids": ["20417"],
        "feed_id": 1523,
        "owner_organization_id": 88,
        "can_add_public_tags": True,
        "is_anonymous": False,
        "is_editable": False,
    }


def test_mapping_leaves_input_unchanged() -> None:
    obj = load("scan-ip")
    before = copy.deepcopy(obj)

    map_intelligence(obj, OPTIONS)

    assert obj == before


def test_object_location_kept_without_geoip() -> None:
    document = map_intelligence(load("scan-ip"), OPTIONS)

    assert indicator(document)["geo"] == {"country_iso_code": "US", "location": {"lat": 47.25, "lon": -122.3}}


def test_geoip_entry_replaces_object_location(geoip: GeoIP) -> None:
    options = MappingOptions(now=NOW, geoip=geoip)

    document = map_intelligence(load("scan-ip"), options)

    assert indicator(document)["geo"] == {
        "continent_name": "North America",
        "country_iso_code": "US",
        "country_name": "United States",
        "region_iso_code": "US-WA",
        "region_name": "Washington",
        "city_name": "Milton",
        "location": {"lat": 47.2513, "lon": -122.3149},
    }


def test_geoip_miss_keeps_object_location(geoip: GeoIP) -> None:
    options = MappingOptions(now=NOW, geoip=geoip)

    document = map_intelligence(base(ip="10.20.30.40", value="10.20.30.40"), options)

    assert indicator(document)["geo"] == {"country_iso_code": "US", "location": {"lat": 47.25, "lon": -122.3}}


def test_ipv6_address_sets_ipv6_type() -> None:
    document = map_intelligence(base(ip="2001:db8::7", value="2001:db8::7"), OPTIONS)

    assert indicator(document)["type"] == "ipv6-addr"
    assert document["related"]["ip"] == ["2001:db8::7"]


# --- broken input, one fixture each -------------------------------------------------------------


def test_unknown_itype_keeps_document_with_error() -> None:
    document = map_intelligence(load("itype-unknown"), OPTIONS)

    assert document["event"]["kind"] == "pipeline_error"
    assert errors_of(document) == [
        'itype "quantum_ip" has no STIX 2.0 indicator type, so threat.indicator.type is not set'
    ]
    assert "type" not in indicator(document)
    assert indicator(document)["ip"] == "216.160.83.56"
    assert threatstream(document)["itype"] == "quantum_ip"


def test_null_itype_keeps_document_with_error() -> None:
    document = map_intelligence(load("itype-null"), OPTIONS)

    assert document["event"]["kind"] == "pipeline_error"
    assert len(errors_of(document)) == 1
    assert "itype null" in errors_of(document)[0]
    assert "type" not in indicator(document)
    assert threatstream(document)["id"] == "310457721"


def test_asn_not_a_number_reports_error() -> None:
    document = map_intelligence(load("asn-not-a-number"), OPTIONS)

    assert document["event"]["kind"] == "pipeline_error"
    assert errors_of(document) == ['asn "AS209" is not an integer, so threat.indicator.as.number is not set']
    assert indicator(document)["as"] == {"organization": {"name": "CenturyLink"}}
    assert "asn" not in threatstream(document)


def test_ip_not_an_ip_reports_error(geoip: GeoIP) -> None:
    document = map_intelligence(load("ip-not-an-ip"), MappingOptions(now=NOW, geoip=geoip))

    assert document["event"]["kind"] == "pipeline_error"
    assert errors_of(document) == [
        'ip "216.160.83.356" is not an IP address, so threat.indicator.ip is not set'
    ]
    assert "ip" not in indicator(document)
    assert "related" not in document
    assert indicator(document)["geo"] == {"country_iso_code": "US", "location": {"lat": 47.25, "lon": -122.3}}


def test_null_is_public_reports_error() -> None:
    document = map_intelligence(load("is-public-null"), OPTIONS)

    assert document["event"]["kind"] == "pipeline_error"
    assert len(errors_of(document)) == 1
    assert "is_public is null" in errors_of(document)[0]
    assert "marking" not in indicator(document)
    assert "is_public" not in threatstream(document)


def test_null_is_public_with_tlp_passes() -> None:
    obj = load("is-public-null")
    obj["tlp"] = "red"

    document = map_intelligence(obj, OPTIONS)

    assert "error" not in document
    assert indicator(document)["marking"] == {"tlp": "RED"}


def test_tag_without_name_is_left_out() -> None:
    document = map_intelligence(load("tag-without-name"), OPTIONS)

    assert document["event"]["kind"] == "pipeline_error"
    assert errors_of(document) == ['tags[1] {"id":"p7q"} has no name, so it is left out of tags']
    assert document["tags"] == ["ssh-scanner", "mirai", "preserve_original_event"]


def test_tags_not_a_list_reports_error() -> None:
    document = map_intelligence(base(tags="ssh-scanner"), OPTIONS)

    assert errors_of(document) == ['tags "ssh-scanner" is not a list, so the indicator\'s tags are left out']
    assert document["tags"] == ["preserve_original_event"]


def test_lower_case_tlp_is_upper_cased() -> None:
    document = map_intelligence(load("tlp-lower-case"), OPTIONS)

    assert "error" not in document
    assert indicator(document)["marking"] == {"tlp": "GREEN"}
    assert "tlp" not in threatstream(document)


@pytest.mark.parametrize(("is_public", "tlp"), [(True, "WHITE"), (False, "AMBER")])
def test_missing_tlp_follows_is_public(is_public: bool, tlp: str) -> None:
    document = map_intelligence(base(is_public=is_public, tlp=None), OPTIONS)

    assert indicator(document)["marking"] == {"tlp": tlp}


def test_year_9999_expiration_uses_duration() -> None:
    document = map_intelligence(load("expiration-year-9999"), OPTIONS)

    assert "error" not in document
    assert threatstream(document)["deletion_scheduled_at"] == "2026-05-29T11:11:48.666398Z"
    assert threatstream(document)["expiration_ts"] == "9999-12-31T00:00:00.000Z"


@pytest.mark.parametrize(
    "expiration", ["9999-12-31T23:59:59.999999999Z", "+10000-01-01T00:00:00Z", "+999999999-12-31T00:00:00Z"]
)
def test_far_expiration_does_not_overflow(expiration: str) -> None:
    document = map_intelligence(base(expiration_ts=expiration), OPTIONS)

    assert "error" not in document
    assert threatstream(document)["deletion_scheduled_at"] == "2026-05-29T11:11:48.666398Z"


def test_far_expiration_without_duration() -> None:
    options = MappingOptions(now=NOW, ioc_duration=None)

    document = map_intelligence(base(expiration_ts="+10000-01-01T00:00:00Z"), options)

    assert "error" not in document
    assert "deletion_scheduled_at" not in threatstream(document)


def test_duration_past_year_9999_uses_expiration() -> None:
    options = MappingOptions(now=NOW, ioc_duration=parse_duration("999999999d"))

    document = map_intelligence(load("expiration-year-9999"), options)

    assert threatstream(document)["deletion_scheduled_at"] == "9999-12-31T00:00:00.000Z"


def test_near_expiration_wins_over_duration() -> None:
    document = map_intelligence(base(expiration_ts="2026-03-06T00:00:00+02:00"), OPTIONS)

    assert threatstream(document)["deletion_scheduled_at"] == "2026-03-06T00:00:00.000+02:00"


def test_empty_expiration_deletes_after_duration() -> None:
    document = map_intelligence(load("expiration-empty"), OPTIONS)

    assert "error" not in document
    assert threatstream(document)["deletion_scheduled_at"] == "2026-05-29T11:11:48.666398Z"
    assert "expiration_ts" not in threatstream(document)


def test_missing_expiration_deletes_after_duration() -> None:
    document = map_intelligence(load("expiration-missing"), OPTIONS)

    assert "error" not in document
    assert threatstream(document)["deletion_scheduled_at"] == "2026-05-29T11:11:48.666398Z"


def test_missing_expiration_without_duration() -> None:
    document = map_intelligence(load("expiration-missing"), MappingOptions(now=NOW, ioc_duration=None))

    assert "deletion_scheduled_at" not in threatstream(document)


def test_invalid_expiration_reports_error() -> None:
    document = map_intelligence(load("expiration-not-a-date"), OPTIONS)

    assert document["event"]["kind"] == "pipeline_error"
    assert len(errors_of(document)) == 1
    assert 'expiration_ts "next spring"' in errors_of(document)[0]
    assert threatstream(document)["deletion_scheduled_at"] == "2026-05-29T11:11:48.666398Z"


@pytest.mark.parametrize(
    ("duration", "deletion"),
    [
        ("90m", "2026-03-05T12:41:48.666398Z"),
        ("36h", "2026-03-06T23:11:48.666398Z"),
        ("3d", "2026-03-08T11:11:48.666398Z"),
    ],
)
def test_ioc_duration_units_set_deletion(duration: str, deletion: str) -> None:
    options = MappingOptions(now=NOW, ioc_duration=parse_duration(duration))

    document = map_intelligence(load("expiration-missing"), options)

    assert threatstream(document)["deletion_scheduled_at"] == deletion


def test_ids_above_2_53_stay_exact() -> None:
    text = (FIXTURES / "ids-above-2-53.json").read_text()

    document = map_intelligence(json.loads(text), OPTIONS)

    assert "error" not in document
    assert threatstream(document)["id"] == "9007199254740993"
    assert threatstream(document)["update_id"] == "18446744073709551621"
    assert document_id(document) == "9007199254740993-18446744073709551621"


def test_float_id_makes_error_record() -> None:
    document = map_intelligence(load("id-float"), OPTIONS)

    assert document["event"]["kind"] == "pipeline_error"
    assert errors_of(document) == ["id 310457721.5 is not an integer, so the document has no id"]
    assert "id" not in threatstream(document)
    assert threatstream(document)["update_id"] == "602334815"


def test_non_integer_string_id_makes_error_record() -> None:
    document = map_intelligence(load("id-non-integer-string"), OPTIONS)

    assert document["event"]["kind"] == "pipeline_error"
    assert errors_of(document) == ['id "31045x7721" is not an integer, so the document has no id']
    assert "id" not in threatstream(document)


def test_integer_string_id_is_kept() -> None:
    document = map_intelligence(base(id="310457721", update_id="602334815"), OPTIONS)

    assert "error" not in document
    assert document_id(document) == "310457721-602334815"


def test_error_document_carries_original() -> None:
    text = (FIXTURES / "id-float.json").read_text()

    document = map_intelligence(json.loads(text), OPTIONS, original=text)

    assert document["event"]["original"] == text
    assert document["tags"] == ["ssh-scanner", "preserve_original_event"]


def test_error_document_serialises_object() -> None:
    obj = load("itype-null")

    document = map_intelligence(obj, OPTIONS)

    assert json.loads(document["event"]["original"]) == obj


# --- options ------------------------------------------------------------------------------------


def test_preserve_original_adds_event_original() -> None:
    text = (FIXTURES / "scan-ip.json").read_text()
    options = MappingOptions(now=NOW, preserve_original=True)

    document = map_intelligence(json.loads(text), options, original=text)

    assert document["event"]["original"] == text
    assert document["tags"] == ["preserve_original_event", "ssh-scanner"]
    assert "error" not in document


def test_configured_tags_come_first() -> None:
    options = MappingOptions(now=NOW, tags=("forwarded", "anomali-intelligence"))

    document = map_intelligence(load("scan-ip"), options)

    assert document["tags"] == ["forwarded", "anomali-intelligence", "ssh-scanner"]


def test_timestamp_keeps_now_precision() -> None:
    document = map_intelligence(
        load("scan-ip"), MappingOptions(now=datetime(2026, 3, 5, 11, 11, 48, tzinfo=UTC))
    )

    assert document["@timestamp"] == "2026-03-05T11:11:48.000Z"


def test_now_in_other_zone_becomes_utc() -> None:
    options = MappingOptions(
        now=datetime(2026, 3, 5, 12, 11, 48, 666398, tzinfo=timezone(timedelta(hours=1)))
    )

    document = map_intelligence(load("scan-ip"), options)

    assert document["@timestamp"] == "2026-03-05T11:11:48.666398Z"


def test_naive_now_is_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        MappingOptions(now=datetime(2026, 3, 5, 11, 11, 48))  # noqa: DTZ001


def test_invalid_namespace_is_rejected() -> None:
    with pytest.raises(ValueError, match="'prod-eu'"):
        MappingOptions(now=NOW, namespace="prod-eu")


def test_event_ingested_is_not_set() -> None:
    document = map_intelligence(load("scan-ip"), OPTIONS)

    assert "ingested" not in document["event"]


# --- durations ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "duration"),
    [
        ("85d", timedelta(days=85)),
        ("2160h", timedelta(hours=2160)),
        ("90m", timedelta(minutes=90)),
        ("0d", timedelta(0)),
        (" 7d ", timedelta(days=7)),
        ("none", None),
        ("None", None),
    ],
)
def test_parse_duration_accepts(text: str, duration: timedelta | None) -> None:
    assert parse_duration(text) == duration


@pytest.mark.parametrize("text", ["85w", "85", "d", "-5d", "1.5d", "85D", "", "99999999999999d"])
def test_parse_duration_rejects_naming_value(text: str) -> None:
    with pytest.raises(ValueError, match=repr(text).replace("\\", "\\\\")):
        parse_duration(text)


def test_deletion_time_takes_earlier_bound() -> None:
    expiration = datetime(2026, 3, 10, tzinfo=UTC)

    assert deletion_time(NOW, timedelta(days=1), expiration) == NOW + timedelta(days=1)
    assert deletion_time(NOW, timedelta(days=30), expiration) == expiration
    assert deletion_time(NOW, None, expiration) == expiration
    assert deletion_time(NOW, None, None) is None


# --- severity and confidence --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("severity", "expected"),
    [
        ("low", 21),
        ("medium", 47),
        ("high", 73),
        ("very-high", 99),
        ("Very-High", 99),
        ("LOW", 21),
        (0, 21),
        (39, 21),
        (39.9, 21),
        (40, 47),
        (59, 47),
        (60, 73),
        (79, 73),
        (80, 99),
        (100, 99),
        ("55", 47),
        ("85.5", 99),
        (-1, None),
        (101, None),
        ("critical", None),
        (True, None),
        (None, None),
    ],
)
def test_event_severity_scale(severity: Any, expected: int | None) -> None:
    assert event_severity(severity) == expected


def test_numeric_severity_sets_event_severity() -> None:
    document = map_intelligence(base(meta={"severity": 65}), OPTIONS)

    assert document["event"]["severity"] == 73
    assert threatstream(document)["meta"] == {"severity": 65}


def test_unknown_severity_sets_no_event_severity() -> None:
    document = map_intelligence(base(meta={"severity": "critical"}), OPTIONS)

    assert "severity" not in document["event"]
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
    document = map_intelligence(base(confidence=confidence), OPTIONS)

    assert indicator(document)["confidence"] == level


def test_null_confidence_sets_no_level() -> None:
    document = map_intelligence(base(confidence=None), OPTIONS)

    assert "confidence" not in indicator(document)
    assert "error" not in document


def test_text_confidence_reports_error() -> None:
    document = map_intelligence(base(confidence="high"), OPTIONS)

    assert errors_of(document) == [
        'confidence "high" is not a number, so threat.indicator.confidence is not set'
    ]


# --- observables --------------------------------------------------------------------------------


def test_domain_indicator_fields() -> None:
    obj = base(type="domain", itype="c2_domain", value="update.example.net", ip=None)

    document = map_intelligence(obj, OPTIONS)

    assert indicator(document)["type"] == "domain-name"
    assert indicator(document)["url"] == {"domain": "update.example.net"}
    assert document["related"] == {"hosts": ["update.example.net"]}


def test_email_indicator_fields() -> None:
    obj = base(type="email", itype="phish_email", value="billing@example.org", ip=None)

    document = map_intelligence(obj, OPTIONS)

    assert indicator(document)["type"] == "email-addr"
    assert indicator(document)["email"] == {"address": "billing@example.org"}
    assert document["related"] == {"user": ["billing@example.org"]}


def test_url_is_split_into_parts() -> None:
    url = "https://admin:s3cret@files.example.com:8443/drop/payload.tar.gz?id=7&x=%41#part"
    obj = base(type="url", itype="mal_url", value=url, ip=None)

    document = map_intelligence(obj, OPTIONS)

    assert indicator(document)["url"] == {
        "original": url,
        "full": url,
        "scheme": "https",
        "domain": "files.example.com",
        "port": 8443,
        "path": "/drop/payload.tar.gz",
        "extension": "gz",
        "query": "id=7&x=A",
        "fragment": "part",
        "user_info": "admin:s3cret",
        "username": "admin",
        "password": "s3cret",
    }


def test_url_without_scheme_has_path_only() -> None:
    assert uri_parts("www.example.com/login.php") == {
        "original": "www.example.com/login.php",
        "path": "www.example.com/login.php",
        "extension": "php",
    }


def test_url_scheme_case_is_kept() -> None:
    assert uri_parts("HTTP://Example.COM/")["scheme"] == "HTTP"
    assert uri_parts("HTTP://Example.COM/")["domain"] == "Example.COM"


def test_url_with_space_is_parsed() -> None:
    parts = uri_parts("http://example.com/a b.exe")

    assert parts["path"] == "/a b.exe"
    assert parts["extension"] == "exe"


def test_unparsable_url_reports_error() -> None:
    obj = base(type="url", itype="phish_url", value="hxxp://bad example[.]com/", ip=None)

    document = map_intelligence(obj, OPTIONS)

    assert document["event"]["kind"] == "pipeline_error"
    assert errors_of(document) == [
        'value "hxxp://bad example[.]com/" is not a URL, so threat.indicator.url is not set'
    ]
    assert indicator(document)["name"] == "hxxp://bad example[.]com/"


@pytest.mark.parametrize(
    ("subtype", "value", "field"),
    [
        ("MD5", "0f343b0931126a20f133d67c2b018a3b", "md5"),
        ("SHA1", "5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8", "sha1"),
        ("SHA256", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "sha256"),
        (None, "0f343b0931126a20f133d67c2b018a3b", "md5"),
        (None, "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "sha256"),
    ],
)
def test_file_hash_field_choice(subtype: str | None, value: str, field: str) -> None:
    obj = base(type="md5", itype="mal_md5", subtype=subtype, value=value, ip=None)

    document = map_intelligence(obj, OPTIONS)

    assert indicator(document)["file"] == {"hash": {field: value}}
    assert document["related"] == {"hash": [value]}
    assert "subtype" not in threatstream(document)


def test_registrant_fields_are_nested() -> None:
    meta = {
        "severity": "low",
        "registrant_email": "owner@example.net",
        "registrant_org": "Example Ltd",
        "detail": "x",
    }
    obj = base(type="domain", itype="mal_domain", value="example.net", ip=None, meta=meta)

    document = map_intelligence(obj, OPTIONS)

    assert threatstream(document)["meta"] == {
        "severity": "low",
        "registrant": {"email": "owner@example.net", "org": "Example Ltd"},
    }
    assert document["related"]["user"] == ["owner@example.net"]


def test_invalid_latitude_drops_location() -> None:
    document = map_intelligence(base(latitude="north", longitude=12.5), OPTIONS)

    assert errors_of(document) == [
        'latitude "north" is not a number, so threat.indicator.geo.location is not set'
    ]
    assert indicator(document)["geo"] == {"country_iso_code": "US"}


def test_out_of_range_longitude_drops_location() -> None:
    document = map_intelligence(base(latitude=12.5, longitude=-180.5), OPTIONS)

    assert errors_of(document) == [
        "longitude -180.5 is outside -180 to 180 degrees, so threat.indicator.geo.location is not set"
    ]
    assert indicator(document)["geo"] == {"country_iso_code": "US"}


# --- document ids -------------------------------------------------------------------------------


def test_document_id_joins_id_and_update_id() -> None:
    assert document_id(map_intelligence(load("scan-ip"), OPTIONS)) == "310457721-602334815"


def test_document_id_without_ids_hashes_original() -> None:
    text = (FIXTURES / "id-float.json").read_text()
    first = map_intelligence(json.loads(text), OPTIONS, original=text)
    later = map_intelligence(json.loads(text), MappingOptions(now=NOW + timedelta(hours=1)), original=text)

    assert document_id(first) == document_id(later)
    assert len(document_id(first)) == 64
    assert document_id(first) != document_id(map_intelligence(load("id-non-integer-string"), OPTIONS))


def test_document_id_hashes_threatstream_fields() -> None:
    document = {
        "anomali": {"threatstream": {"value": "x", "deletion_scheduled_at": "2026-01-01T00:00:00.000Z"}}
    }
    moved = {"anomali": {"threatstream": {"value": "x", "deletion_scheduled_at": "2027-01-01T00:00:00.000Z"}}}

    assert document_id(document) == document_id(moved)


# --- timestamps ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "formatted"),
    [
        ("2020-05-27T06:03:43.658Z", "2020-05-27T06:03:43.658Z"),
        ("2020-05-27T06:03:43Z", "2020-05-27T06:03:43.000Z"),
        ("2020-05-27T06:03:43.5Z", "2020-05-27T06:03:43.500Z"),
        ("2020-05-27T06:03:43.666398627Z", "2020-05-27T06:03:43.666398Z"),
        ("2020-05-27T06:03:43.658+02:00", "2020-05-27T06:03:43.658+02:00"),
        ("2020-05-27T06:03:43.658+00:00", "2020-05-27T06:03:43.658Z"),
        ("2020-05-27T06:03", "2020-05-27T06:03:00.000Z"),
        ("2020-05-27", "2020-05-27T00:00:00.000Z"),
    ],
)
def test_timestamp_round_trip(text: str, formatted: str) -> None:
    assert format_timestamp(parse_timestamp(text)) == formatted


def test_modified_at_is_utc_millis() -> None:
    assert (
        format_timestamp_millis(parse_timestamp("2020-05-27T08:03:43.658912+02:00"))
        == "2020-05-27T06:03:43.658Z"
    )


@pytest.mark.parametrize(
    "text", ["next spring", "2020-13-01T00:00:00Z", "2020-05-27T25:00:00Z", "2020-05-27T06:03:43+19:00", ""]
)
def test_parse_timestamp_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="timestamp|date|offset"):
        parse_timestamp(text)


def test_invalid_modified_ts_reports_error() -> None:
    document = map_intelligence(base(modified_ts="yesterday"), OPTIONS)

    assert errors_of(document) == [
        'modified_ts "yesterday" is not an ISO 8601 timestamp, so threat.indicator.modified_at is not set'
    ]
    assert "modified_at" not in indicator(document)


# --- GeoIP --------------------------------------------------------------------------------------


def test_geoip_region_is_smallest_subdivision(geoip: GeoIP) -> None:
    geo = geoip.lookup("2.125.160.216")

    assert geo is not None
    assert geo["region_iso_code"] == "GB-WBK"
    assert geo["region_name"] == "West Berkshire"


def test_geoip_without_city_gives_country_fields(geoip: GeoIP) -> None:
    assert geoip.lookup("67.43.156.93") == {
        "continent_name": "Asia",
        "country_iso_code": "BT",
        "country_name": "Bhutan",
        "location": {"lat": 27.5, "lon": 90.5},
    }


@pytest.mark.parametrize("ip", ["10.1.2.3", "not an ip", ""])
def test_geoip_lookup_miss_is_none(geoip: GeoIP, ip: str) -> None:
    assert geoip.lookup(ip) is None


def test_geoip_missing_database_names_path(tmp_path: Path) -> None:
    missing = tmp_path / "absent.mmdb"

    with pytest.raises(GeoIPDatabaseError, match="absent.mmdb"):
        GeoIP(missing)


def test_geoip_invalid_database_is_rejected(tmp_path: Path) -> None:
    broken = tmp_path / "broken.mmdb"
    broken.write_bytes(b"not a maxmind database")

    with pytest.raises(GeoIPDatabaseError, match="broken.mmdb"):
        GeoIP(broken)


# --- any JSON object ----------------------------------------------------------------------------

JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = sorted(load("scan-ip")) + ["tlp", "country", "subtype"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changes=st.dictionaries(st.sampled_from(FIELDS), JSON_VALUES, max_size=6))
def test_any_field_values_never_raise(changes: dict[str, Any]) -> None:
    document = map_intelligence(base(**changes), OPTIONS)

    assert document["event"]["kind"] in ("enrichment", "pipeline_error")
    assert not any("unexpected" in message for message in errors_of(document))
    json.dumps(document)


@settings(max_examples=100, deadline=None)
@given(obj=st.dictionaries(st.text(max_size=12), JSON_VALUES, max_size=8))
def test_any_json_object_never_raises(obj: dict[str, Any]) -> None:
    document = map_intelligence(obj, OPTIONS)

    assert document["ecs"] == {"version": "9.3.0"}
    assert not any("unexpected" in message for message in errors_of(document))
    assert isinstance(document_id(document), str)


def test_constant_fields_are_set() -> None:
    document = map_intelligence(base(), OPTIONS)

    assert document["event"]["module"] == "ti_anomali"
    assert document["event"]["dataset"] == "ti_anomali.intelligence"
    assert document["data_stream"] == {"type": "logs", "dataset": "ti_anomali.intelligence", "namespace": "default"}
    assert document["threat"]["feed"] == {"name": "Anomali ThreatStream", "dashboard_id": "ti-anomali-overview"}
    assert document["labels"] == {"is_ioc_transform_source": "true"}
    assert "ingested" not in document["event"]


@pytest.mark.parametrize("modified", ["9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+18:00"])
def test_offset_past_year_range_keeps_ids(modified: str) -> None:
    document = map_intelligence(base(modified_ts=modified), OPTIONS)

    assert document["event"]["kind"] == "pipeline_error"
    assert document["anomali"]["threatstream"]["id"] == str(base()["id"])
    assert document_id(document) == f"{base()['id']}-{base()['update_id']}"


def test_id_longer_than_engine_limit_gets_digest() -> None:
    document = map_intelligence(base(id=int("9" * 600)), OPTIONS)

    identifier = document_id(document)

    assert identifier.startswith("sha256-")
    assert len(identifier.encode()) <= 512
    assert document["anomali"]["threatstream"]["id"] == "9" * 600


def test_lone_surrogate_value_does_not_raise() -> None:
    document = map_intelligence(base(value="bad\ud800.example", ip="1.2.3.4\ud800"), OPTIONS)

    assert document_id(document)
    assert json.dumps(document)
