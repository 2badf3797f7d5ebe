"""`ti-anomali map`: NDJSON in, ECS documents out, run in-process through `ti_anomali.cli.main`."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ti_anomali import cli
from ti_anomali import clock as clocks
from ti_anomali.clock import ManualClock

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "intelligence"
NOW_TEXT = "2026-03-05T11:11:48.666398Z"
NOW = datetime(2026, 3, 5, 11, 11, 48, 666398, tzinfo=UTC)
BASE_ARGS = ["map", "--dataset", "intelligence", "--now", NOW_TEXT]


@dataclass
class Result:
    status: int
    documents: list[dict[str, Any]]
    stdout: str
    stderr: str


def run_map(monkeypatch: pytest.MonkeyPatch, args: list[str], stdin: bytes) -> Result:
    """Run `ti-anomali <args>` with `stdin` as its standard input, capturing both outputs."""
    stdout, stderr = io.BytesIO(), io.BytesIO()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"))
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(stdout, encoding="utf-8"))
    monkeypatch.setattr(sys, "stderr", io.TextIOWrapper(stderr, encoding="utf-8"))

    try:
        status = cli.main(args)
    except SystemExit as exc:
        status = int(exc.code or 0)
    sys.stdout.flush()
    sys.stderr.flush()

    out = stdout.getvalue().decode("utf-8")
    documents = [json.loads(line) for line in out.splitlines()]
    return Result(status, documents, out, stderr.getvalue().decode("utf-8"))


def fixture_line(name: str, **changes: Any) -> bytes:
    obj = json.loads((FIXTURES / f"{name}.json").read_text())
    obj.update(changes)
    return json.dumps(obj).encode() + b"\n"


def test_conformance_cases_match(
    monkeypatch: pytest.MonkeyPatch,
    intelligence_cases: dict[str, Any],
    geoip_database: Path,
    comparable: Callable[..., dict[str, Any]],
) -> None:
    cases = list(intelligence_cases.values())
    stdin = "".join(case.text + "\n" for case in cases).encode()
    args = [*BASE_ARGS, "--ioc-duration", "85d", "--geoip-db", str(geoip_database)]

    result = run_map(monkeypatch, args, stdin)

    assert result.status == 0
    assert result.stderr == ""
    assert len(result.documents) == len(cases)
    for case, document in zip(cases, result.documents, strict=True):
        assert comparable(document) == comparable(case.expected), case.name
        assert document["@timestamp"] == NOW_TEXT, case.name


def test_invalid_lines_reported_by_number(monkeypatch: pytest.MonkeyPatch) -> None:
    stdin = b"".join(
        [
            fixture_line("scan-ip"),
            b'{"secret-looking": "payload-7431",\n',
            b'["payload-7431"]\n',
            b"NaN\n",
            fixture_line("scan-ip", id=310457722),
        ]
    )

    result = run_map(monkeypatch, BASE_ARGS, stdin)

    assert result.status == 1
    assert [document["anomali"]["threatstream"]["id"] for document in result.documents] == [
        "310457721",
        "310457722",
    ]
    assert "line 2 skipped: not valid JSON at column 35" in result.stderr
    assert "line 3 skipped: a JSON array, not an object" in result.stderr
    assert "line 4 skipped: not valid JSON" in result.stderr
    assert "payload-7431" not in result.stderr
    assert "line 1 " not in result.stderr
    assert "line 5 " not in result.stderr


def test_line_not_utf8_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    stdin = b'{"value": "caf\xe9"}\n' + fixture_line("scan-ip")

    result = run_map(monkeypatch, BASE_ARGS, stdin)

    assert result.status == 1
    assert "line 1 skipped: not valid UTF-8" in result.stderr
    assert len(result.documents) == 1


def test_blank_lines_are_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    stdin = b"\n" + fixture_line("scan-ip") + b"   \n\r\n" + fixture_line("tlp-lower-case")

    result = run_map(monkeypatch, BASE_ARGS, stdin)

    assert result.status == 0
    assert result.stderr == ""
    assert len(result.documents) == 2


def test_empty_input_writes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_map(monkeypatch, BASE_ARGS, b"")

    assert result.status == 0
    assert result.stdout == ""


def test_output_keeps_input_order(monkeypatch: pytest.MonkeyPatch) -> None:
    ids = [310457725, 310457721, 310457729, 310457723]
    stdin = b"".join(fixture_line("scan-ip", id=indicator_id) for indicator_id in ids)

    result = run_map(monkeypatch, BASE_ARGS, stdin)

    assert [document["anomali"]["threatstream"]["id"] for document in result.documents] == [
        str(i) for i in ids
    ]


def test_error_document_is_still_written(monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_map(monkeypatch, BASE_ARGS, fixture_line("itype-unknown"))

    assert result.status == 0
    assert result.documents[0]["event"]["kind"] == "pipeline_error"
    assert json.loads(result.documents[0]["event"]["original"])["itype"] == "quantum_ip"


def test_ids_above_2_53_pass_through_exactly(monkeypatch: pytest.MonkeyPatch) -> None:
    stdin = (FIXTURES / "ids-above-2-53.json").read_bytes().replace(b"\n", b"") + b"\n"

    result = run_map(monkeypatch, BASE_ARGS, stdin)

    assert result.documents[0]["anomali"]["threatstream"]["id"] == "9007199254740993"
    assert result.documents[0]["anomali"]["threatstream"]["update_id"] == "18446744073709551621"


def test_tags_option_puts_tags_first(monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_map(
        monkeypatch, [*BASE_ARGS, "--tags", "forwarded, anomali-intelligence,"], fixture_line("scan-ip")
    )

    assert result.documents[0]["tags"] == ["forwarded", "anomali-intelligence", "ssh-scanner"]


def test_preserve_original_keeps_line(monkeypatch: pytest.MonkeyPatch) -> None:
    line = fixture_line("scan-ip")

    result = run_map(monkeypatch, [*BASE_ARGS, "--preserve-original"], line)

    assert result.documents[0]["event"]["original"] == line.decode().strip()
    assert "preserve_original_event" in result.documents[0]["tags"]


def test_default_ioc_duration_is_90_days(monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_map(monkeypatch, BASE_ARGS, fixture_line("expiration-missing"))

    assert (
        result.documents[0]["anomali"]["threatstream"]["deletion_scheduled_at"]
        == "2026-06-03T11:11:48.666398Z"
    )


@pytest.mark.parametrize(
    ("duration", "deletion"),
    [
        ("45m", "2026-03-05T11:56:48.666398Z"),
        ("2h", "2026-03-05T13:11:48.666398Z"),
        ("1d", "2026-03-06T11:11:48.666398Z"),
    ],
)
def test_ioc_duration_option_sets_deletion(
    monkeypatch: pytest.MonkeyPatch, duration: str, deletion: str
) -> None:
    result = run_map(
        monkeypatch, [*BASE_ARGS, "--ioc-duration", duration], fixture_line("expiration-missing")
    )

    assert result.documents[0]["anomali"]["threatstream"]["deletion_scheduled_at"] == deletion


def test_ioc_duration_none(monkeypatch: pytest.MonkeyPatch) -> None:
    stdin = fixture_line("expiration-year-9999") + fixture_line("expiration-missing")

    result = run_map(monkeypatch, [*BASE_ARGS, "--ioc-duration", "none"], stdin)

    assert (
        result.documents[0]["anomali"]["threatstream"]["deletion_scheduled_at"] == "9999-12-31T00:00:00.000Z"
    )
    assert "deletion_scheduled_at" not in result.documents[1]["anomali"]["threatstream"]


def test_invalid_ioc_duration_names_value(monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_map(monkeypatch, [*BASE_ARGS, "--ioc-duration", "12w"], fixture_line("scan-ip"))

    assert result.status == 2
    assert "'12w'" in result.stderr
    assert result.stdout == ""


def test_invalid_now_names_value(monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_map(monkeypatch, ["map", "--dataset", "intelligence", "--now", "tomorrow"], b"")

    assert result.status == 2
    assert "'tomorrow'" in result.stderr


def test_nanosecond_now_is_truncated(monkeypatch: pytest.MonkeyPatch) -> None:
    args = ["map", "--dataset", "intelligence", "--now", "2026-03-05T12:11:48.666398627+01:00"]

    result = run_map(monkeypatch, args, fixture_line("scan-ip"))

    assert result.documents[0]["@timestamp"] == NOW_TEXT


def test_dataset_is_required(monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_map(monkeypatch, ["map"], fixture_line("scan-ip"))

    assert result.status == 2
    assert "--dataset" in result.stderr


def test_unknown_dataset_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_map(monkeypatch, ["map", "--dataset", "indicators"], fixture_line("scan-ip"))

    assert result.status == 2
    assert "'indicators'" in result.stderr


def test_default_now_reads_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    previous = clocks.current()
    clocks.use(ManualClock(NOW + timedelta(days=1)))
    try:
        result = run_map(monkeypatch, ["map", "--dataset", "intelligence"], fixture_line("scan-ip"))
    finally:
        clocks.use(previous)

    assert result.documents[0]["@timestamp"] == "2026-03-06T11:11:48.666398Z"


def test_missing_geoip_database_exits_2(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    missing = tmp_path / "absent.mmdb"

    result = run_map(monkeypatch, [*BASE_ARGS, "--geoip-db", str(missing)], fixture_line("scan-ip"))

    assert result.status == 2
    assert "absent.mmdb" in result.stderr
    assert result.stdout == ""


def test_namespace_option_sets_data_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_map(monkeypatch, [*BASE_ARGS, "--namespace", "prod_eu"], fixture_line("scan-ip"))

    assert result.documents[0]["data_stream"]["namespace"] == "prod_eu"


def test_invalid_namespace_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_map(monkeypatch, [*BASE_ARGS, "--namespace", "Prod-EU"], fixture_line("scan-ip"))

    assert result.status == 2
    assert "'Prod-EU'" in result.stderr


def test_installed_command_maps_stdin() -> None:
    command = shutil.which("ti-anomali", path=str(Path(sys.executable).parent))
    assert command is not None, "ti-anomali is not installed in this environment; run pip install -e ."

    completed = subprocess.run(
        [command, *BASE_ARGS],
        input=fixture_line("scan-ip") + b"[]\n",
        capture_output=True,
        timeout=60,
        check=False,
    )

    assert completed.returncode == 1
    assert json.loads(completed.stdout)["threat"]["indicator"]["ip"] == "216.160.83.56"
    assert b"line 2 skipped" in completed.stderr
