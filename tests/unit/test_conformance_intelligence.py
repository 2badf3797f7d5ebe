"""The intelligence mapper against the documents Elastic's pipeline makes of the same objects."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from ti_anomali.ecs.geoip import GeoIP
from ti_anomali.ecs.intelligence import MappingOptions, map_intelligence

# The expected documents were made with an IOC duration of 85 days.
IOC_DURATION = timedelta(days=85)
NOW = datetime(2026, 3, 5, 11, 11, 48, 666398, tzinfo=UTC)
CASE_COUNT = 22


def _parse_instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def expected_deletion(obj: dict[str, Any], now: datetime) -> str:
    """Return min(expiration_ts, now + 85d), formatted as the pipeline formats it."""
    limit = now + IOC_DURATION
    expiration = obj.get("expiration_ts")
    if expiration and _parse_instant(expiration) < limit:
        return expiration
    return limit.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_all_cases_present(intelligence_cases: dict[str, Any]) -> None:
    assert len(intelligence_cases) == CASE_COUNT


def test_case_matches_elastic_with_geoip(
    intelligence_case: Any, geoip: GeoIP, comparable: Callable[..., dict[str, Any]]
) -> None:
    options = MappingOptions(now=NOW, ioc_duration=IOC_DURATION, geoip=geoip)

    document = map_intelligence(intelligence_case.obj, options)

    assert comparable(document) == comparable(intelligence_case.expected)


def test_case_matches_elastic_without_geoip(
    intelligence_case: Any, comparable: Callable[..., dict[str, Any]]
) -> None:
    options = MappingOptions(now=NOW, ioc_duration=IOC_DURATION)

    document = map_intelligence(intelligence_case.obj, options)

    assert comparable(document, ignore_ip_geo=True) == comparable(
        intelligence_case.expected, ignore_ip_geo=True
    )


def test_case_timestamp_is_now(intelligence_case: Any) -> None:
    document = map_intelligence(intelligence_case.obj, MappingOptions(now=NOW, ioc_duration=IOC_DURATION))

    assert _parse_instant(document["@timestamp"]) == NOW


def test_case_deletion_is_earlier_bound(intelligence_case: Any) -> None:
    document = map_intelligence(intelligence_case.obj, MappingOptions(now=NOW, ioc_duration=IOC_DURATION))

    assert document["anomali"]["threatstream"]["deletion_scheduled_at"] == expected_deletion(
        intelligence_case.obj, NOW
    )


def test_case_deletion_bound_matches_elastic(intelligence_case: Any) -> None:
    """Where Elastic took the expiration, so does the mapper, and the same for now + 85d."""
    expected = intelligence_case.expected
    elastic_now = _parse_instant(expected["@timestamp"][:26] + "Z")
    expiration = intelligence_case.obj.get("expiration_ts")

    elastic_took_expiration = expected["anomali"]["threatstream"]["deletion_scheduled_at"] == expiration
    document = map_intelligence(
        intelligence_case.obj, MappingOptions(now=elastic_now, ioc_duration=IOC_DURATION)
    )

    assert (
        document["anomali"]["threatstream"]["deletion_scheduled_at"] == expiration
    ) == elastic_took_expiration


def test_case_has_constant_fields(intelligence_case: Any) -> None:
    options = MappingOptions(now=NOW, ioc_duration=IOC_DURATION, namespace="prod")

    document = map_intelligence(intelligence_case.obj, options)

    assert document["event"]["module"] == "ti_anomali"
    assert document["event"]["dataset"] == "ti_anomali.intelligence"
    assert document["data_stream"] == {
        "type": "logs",
        "dataset": "ti_anomali.intelligence",
        "namespace": "prod",
    }
    assert document["threat"]["feed"]["name"] == "Anomali ThreatStream"
    assert document["labels"]["is_ioc_transform_source"] == "true"
    assert document["ecs"] == intelligence_case.expected["ecs"]
    assert "ingested" not in document["event"]
