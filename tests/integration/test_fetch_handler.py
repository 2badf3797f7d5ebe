"""The FetchIntelligence handler as Lambda runs it: cold start, events, metrics."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from local.aws import environment
from local.functions import LambdaContext, load_handler
from ti_anomali.clock import ManualClock
from ti_anomali.settings import SettingsError

from .conftest import Stack, redirect_service_log
from .test_fetch import cursor_of

pytestmark = pytest.mark.integration
EVENTS = Path(__file__).resolve().parents[2] / "events"


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


@pytest.fixture
def handler(stack: Stack) -> Any:
    with environment({**stack.environment, "POWERTOOLS_TRACE_DISABLED": "true"}):
        yield load_handler("fetch_intelligence")


def test_bad_setting_fails_cold_start_naming_it(stack: Stack) -> None:
    with environment({**stack.environment, "PAGE_SIZE": "5000"}), pytest.raises(SettingsError, match="PAGE_SIZE"):
        load_handler("fetch_intelligence")


def test_scheduled_event_takes_one_page(
    handler: Any, stack: Stack, manual_clock: ManualClock, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.simulator.publish(30, status_changes=0)
    manual_clock.advance(timedelta(minutes=2))

    result = handler.lambda_handler(load_event("fetch-scheduled.json"), LambdaContext("FetchIntelligence"))

    assert result["status"] == "done"
    assert result["pages"] == 1
    assert result["indicators_created"] == 30
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    names = {m["Name"] for line in metrics for d in line["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    assert {"PagesFetched", "IndicatorsWritten", "IndicatorsDeadLettered", "BacklogIndicators"} <= names


def test_dry_run_writes_nothing(handler: Any, stack: Stack, manual_clock: ManualClock) -> None:
    stack.simulator.publish(5, status_changes=0)
    manual_clock.advance(timedelta(minutes=2))

    result = handler.lambda_handler(load_event("fetch-dry-run.json"), LambdaContext("FetchIntelligence"))

    assert result["stop_reason"] == "dry run"
    assert len(result["documents"]) == 5
    assert result["indicators_created"] == 0
    assert cursor_of(stack) is None


def test_backfill_resets_cursor_with_audit_line(
    handler: Any, service_log: io.StringIO, stack: Stack, manual_clock: ManualClock
) -> None:
    stack.simulator.publish(20, status_changes=0)
    manual_clock.advance(timedelta(minutes=2))
    with redirect_service_log(service_log):
        handler.lambda_handler({}, LambdaContext("FetchIntelligence"))
    before = cursor_of(stack)
    event = {
        "page_budget": 5,
        "backfill_from": (manual_clock.now() - timedelta(days=1)).isoformat(),
        "requested_by": "tester",
    }

    with redirect_service_log(service_log):
        result = handler.lambda_handler(event, LambdaContext("FetchIntelligence"))

    audit = [json.loads(line) for line in service_log.getvalue().splitlines() if '"audit"' in line]
    assert audit[-1]["old_cursor"] == str(before)
    assert audit[-1]["requested_by"] == "tester"
    assert audit[-1]["new_cursor"] == "unset"
    assert result["indicators_fetched"] == 20
    assert result["indicators_already_present"] == 20
    assert cursor_of(stack) == before


@pytest.mark.parametrize(
    "event", [{"page_budget": 0}, {"page_budget": "many"}, {"dry_run": "yes"}, {"backfill_from": "yesterday"}]
)
def test_invalid_manual_event_rejected(handler: Any, event: dict[str, Any]) -> None:
    from ti_anomali.fetch import InvalidEvent

    with pytest.raises(InvalidEvent):
        handler.lambda_handler(event, LambdaContext("FetchIntelligence"))
