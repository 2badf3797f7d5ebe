"""Fixtures for the mapping tests: Elastic's intelligence cases and MaxMind's GeoIP test database."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from local.geoip_test_db import GeoIPTestDatabaseError, ensure_test_database
from ti_anomali.ecs.geoip import GeoIP

EXPECTED_SUFFIX = ".expected.json"

# Fields that Elastic's agent and index templates add outside the pipeline, so the comparison ignores them.
IGNORED_FIELDS = (
    "data_stream",
    "event.dataset",
    "event.module",
    "input.type",
    "threat.feed.name",
    "threat.feed.dashboard_id",
    "labels.is_ioc_transform_source",
    "event.ingested",
    "agent",
    "elastic_agent",
)


@dataclass(frozen=True)
class IntelligenceCase:
    """One pipeline test of Elastic's: the API object, its raw text and the expected document."""

    name: str
    obj: dict[str, Any]
    text: str
    expected: dict[str, Any]


def intelligence_case_dir(root: Path) -> Path:
    return root.parent / "shared" / "conformance" / "intelligence"


def intelligence_case_names(root: Path) -> list[str]:
    return sorted(
        path.name.removesuffix(EXPECTED_SUFFIX)
        for path in intelligence_case_dir(root).glob(f"*{EXPECTED_SUFFIX}")
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run a test that takes `intelligence_case_name` once per conformance case."""
    if "intelligence_case_name" not in metafunc.fixturenames:
        return
    names = intelligence_case_names(metafunc.config.rootpath)
    if not names:
        raise pytest.UsageError(
            f"no intelligence conformance cases in {intelligence_case_dir(metafunc.config.rootpath)}; "
            "check out ../shared beside the repository"
        )
    metafunc.parametrize("intelligence_case_name", names)


@pytest.fixture(scope="session")
def intelligence_cases(conformance_dir: Path) -> dict[str, IntelligenceCase]:
    """Every intelligence case by name, each with exactly one input object and one expected document."""
    cases = {}
    for expected_path in sorted((conformance_dir / "intelligence").glob(f"*{EXPECTED_SUFFIX}")):
        name = expected_path.name.removesuffix(EXPECTED_SUFFIX)
        events = json.loads((conformance_dir / "intelligence" / f"{name}.json").read_text())["events"]
        expected = json.loads(expected_path.read_text())["expected"]
        assert len(events) == 1, f"{name}: expected one input event"
        assert len(expected) == 1, f"{name}: expected one expected document"
        obj = events[0]["json"]
        cases[name] = IntelligenceCase(name, obj, json.dumps(obj, separators=(",", ":")), expected[0])
    return cases


@pytest.fixture
def intelligence_case(
    intelligence_cases: dict[str, IntelligenceCase], intelligence_case_name: str
) -> IntelligenceCase:
    return intelligence_cases[intelligence_case_name]


@pytest.fixture(scope="session")
def geoip_database() -> Path:
    """MaxMind's City test database, fetched through pip on first use; its absence fails the test."""
    try:
        return ensure_test_database()
    except GeoIPTestDatabaseError as exc:
        pytest.fail(f"the GeoIP test database is needed and could not be fetched: {exc}")


@pytest.fixture(scope="session")
def geoip(geoip_database: Path) -> Iterator[GeoIP]:
    with GeoIP(geoip_database) as database:
        yield database


def _remove_field(document: dict[str, Any], path: str) -> None:
    *parents, leaf = path.split(".")
    chain = [document]
    for name in parents:
        child = chain[-1].get(name)
        if not isinstance(child, dict):
            return
        chain.append(child)
    chain[-1].pop(leaf, None)
    for parent, name in zip(reversed(chain[:-1]), reversed(parents), strict=True):
        if parent[name]:
            break
        del parent[name]


@pytest.fixture(scope="session")
def comparable() -> Callable[..., dict[str, Any]]:
    """Return a function that strips what the conformance comparison ignores from a document.

    It removes the fields Elastic adds outside the pipeline, `@timestamp` and
    `anomali.threatstream.deletion_scheduled_at` (tests check those two on their own) and, with
    `ignore_ip_geo=True`, `threat.indicator.geo` of documents that carry an IP.
    """

    def strip(document: dict[str, Any], *, ignore_ip_geo: bool = False) -> dict[str, Any]:
        result = copy.deepcopy(document)
        for path in (*IGNORED_FIELDS, "@timestamp", "anomali.threatstream.deletion_scheduled_at"):
            _remove_field(result, path)
        if ignore_ip_geo and "ip" in result.get("threat", {}).get("indicator", {}):
            _remove_field(result, "threat.indicator.geo")
        return result

    return strip
