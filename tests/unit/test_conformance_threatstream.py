"""The threatstream mapper against the documents Elastic's pipeline makes of the Extension's objects.

Elastic made the expected documents with no IOC expiration duration and the configured tag
`preserve_original_event`, so the command runs with `--ioc-duration none --tags preserve_original_event`.
`@timestamp` is the indicator's `added_at` there, not ingest time, so it is compared exactly.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ti_anomali import cli
from ti_anomali.ecs.geoip import GeoIP
from ti_anomali.ecs.threatstream import ThreatstreamOptions, map_threatstream

CASE_COUNT = 70
MAP_ARGS = ["map", "--dataset", "threatstream", "--ioc-duration", "none", "--tags", "preserve_original_event"]
# Receive time; no case may take it, because every case has an `added_at`.
NOW = datetime(2026, 3, 5, 11, 11, 48, 666398, tzinfo=UTC)


@dataclass(frozen=True)
class ThreatstreamCase:
    """One pushed object, its raw line and the document Elastic made of it."""

    number: int
    obj: dict[str, Any]
    line: str
    expected: dict[str, Any]


@pytest.fixture(scope="module")
def threatstream_cases(conformance_dir: Path) -> list[ThreatstreamCase]:
    events = json.loads((conformance_dir / "threatstream" / "extension-push.json").read_text())["events"]
    expected = json.loads((conformance_dir / "threatstream" / "extension-push.expected.json").read_text())["expected"]
    assert len(events) == len(expected), "each pushed object needs one expected document"
    return [
        ThreatstreamCase(number, event["json"], json.dumps(event["json"], separators=(",", ":")), document)
        for number, (event, document) in enumerate(zip(events, expected, strict=True), start=1)
    ]


def run_map_command(monkeypatch: pytest.MonkeyPatch, args: list[str], stdin: str) -> tuple[int, list[Any], str]:
    """Run `ti-anomali <args>` in-process and return the status, the documents and stderr."""
    stdout, stderr = io.BytesIO(), io.BytesIO()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode()), encoding="utf-8"))
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(stdout, encoding="utf-8"))
    monkeypatch.setattr(sys, "stderr", io.TextIOWrapper(stderr, encoding="utf-8"))

    status = cli.main(args)
    sys.stdout.flush()
    sys.stderr.flush()

    documents = [json.loads(line) for line in stdout.getvalue().decode().splitlines()]
    return status, documents, stderr.getvalue().decode()


def test_all_cases_present(threatstream_cases: list[ThreatstreamCase]) -> None:
    assert len(threatstream_cases) == CASE_COUNT


def test_command_matches_elastic_without_geoip(
    monkeypatch: pytest.MonkeyPatch,
    threatstream_cases: list[ThreatstreamCase],
    comparable: Callable[..., dict[str, Any]],
) -> None:
    stdin = "".join(case.line + "\n" for case in threatstream_cases)

    status, documents, stderr = run_map_command(monkeypatch, MAP_ARGS, stdin)

    assert status == 0
    assert stderr == ""
    assert len(documents) == CASE_COUNT
    mismatched = [
        case.number
        for case, document in zip(threatstream_cases, documents, strict=True)
        if comparable(document, ignore_ip_geo=True) != comparable(case.expected, ignore_ip_geo=True)
    ]
    assert mismatched == []


def test_command_matches_elastic_with_geoip(
    monkeypatch: pytest.MonkeyPatch,
    threatstream_cases: list[ThreatstreamCase],
    geoip_database: Path,
    comparable: Callable[..., dict[str, Any]],
) -> None:
    stdin = "".join(case.line + "\n" for case in threatstream_cases)

    status, documents, _ = run_map_command(monkeypatch, [*MAP_ARGS, "--geoip-db", str(geoip_database)], stdin)

    assert status == 0
    mismatched = [
        case.number
        for case, document in zip(threatstream_cases, documents, strict=True)
        if comparable(document) != comparable(case.expected)
    ]
    assert mismatched == []


def test_command_timestamps_are_added_at(
    monkeypatch: pytest.MonkeyPatch, threatstream_cases: list[ThreatstreamCase]
) -> None:
    stdin = "".join(case.line + "\n" for case in threatstream_cases)

    _, documents, _ = run_map_command(monkeypatch, MAP_ARGS, stdin)

    assert [document["@timestamp"] for document in documents] == [
        case.expected["@timestamp"] for case in threatstream_cases
    ]


@pytest.mark.parametrize("number", range(1, CASE_COUNT + 1))
def test_case_matches_elastic(
    number: int,
    threatstream_cases: list[ThreatstreamCase],
    geoip: GeoIP,
    comparable: Callable[..., dict[str, Any]],
) -> None:
    case = threatstream_cases[number - 1]
    options = ThreatstreamOptions(now=NOW, ioc_duration=None, tags=("preserve_original_event",), geoip=geoip)

    document = map_threatstream(case.obj, options, original=case.line)

    assert comparable(document) == comparable(case.expected)
    assert document["@timestamp"] == case.expected["@timestamp"]
    assert "deleted_at" not in document["anomali"]["threatstream"]
    assert "original" not in document["event"]


def test_cases_have_constant_fields(threatstream_cases: list[ThreatstreamCase]) -> None:
    options = ThreatstreamOptions(now=NOW, ioc_duration=None, namespace="prod")

    documents = [map_threatstream(case.obj, options) for case in threatstream_cases]

    for document in documents:
        assert document["event"]["module"] == "ti_anomali"
        assert document["event"]["dataset"] == "ti_anomali.threatstream"
        assert document["data_stream"] == {
            "type": "logs",
            "dataset": "ti_anomali.threatstream",
            "namespace": "prod",
        }
        assert document["threat"]["feed"]["name"] == "Anomali ThreatStream"
        assert document["labels"]["is_ioc_transform_source"] == "true"
        assert "ingested" not in document["event"]
