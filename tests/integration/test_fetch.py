"""FetchIntelligence against the local parts: simulator, real OpenSearch node, moto."""

from __future__ import annotations

import io
import json
import logging
import threading
import uuid
from datetime import timedelta
from typing import Any

import pytest
from aws_lambda_powertools.utilities import parameters

from local.aws import environment
from local.checks import count_documents, updates_by_key
from local.engine_proxy import EngineFault, EngineProxy
from local.functions import LambdaContext, load_handler
from local.simulator.faults import Fault
from ti_anomali.adapters.cursor_store import CursorKey, CursorStore
from ti_anomali.adapters.dead_letters import DeadLetterStore
from ti_anomali.adapters.search_engine import BulkWriter, DataStreamSetup
from ti_anomali.adapters.threatstream import ThreatStreamAuthError
from ti_anomali.clock import ManualClock
from ti_anomali.fetch import FetchJob, FetchOutcome, FetchRequest
from ti_anomali.retry import Deadline, no_deadline
from ti_anomali.runtime import build_fetch_dependencies
from ti_anomali.settings import FetchSettings

from .conftest import API_KEY, USERNAME, Stack, redirect_service_log

pytestmark = pytest.mark.integration
PAST_DELAY = timedelta(minutes=1, seconds=1)


def make_job(stack: Stack, deadline: Deadline = no_deadline, **overrides: str) -> FetchJob:
    settings = FetchSettings.from_environment({**stack.environment, **overrides})
    dependencies = build_fetch_dependencies(settings, deadline)
    return FetchJob(dependencies, deadline, owner=str(uuid.uuid4()))


def run_fetch(stack: Stack, request: FetchRequest | None = None, **overrides: str) -> FetchOutcome:
    return make_job(stack, **overrides).run(request or FetchRequest())


def cursor_of(stack: Stack) -> int | None:
    store = CursorStore(stack.aws.client("dynamodb"), stack.aws.table_name)
    return store.read(CursorKey("intelligence", stack.namespace, None))


def published_keys(stack: Stack) -> set[tuple[str, str]]:
    return {(str(update.id), str(update.update_id)) for update in stack.simulator.published_updates()}


def api_requests(stack: Stack) -> list[Any]:
    return [r for r in stack.simulator.requests if r.path.startswith("/api/v2/intelligence")]


def test_first_run_asks_only_for_initial_window(stack: Stack, manual_clock: ManualClock) -> None:
    stack.simulator.publish(30, status_changes=0)
    manual_clock.advance(PAST_DELAY)

    run_fetch(stack)
    stack.simulator.publish(10, status_changes=0)
    manual_clock.advance(PAST_DELAY)
    run_fetch(stack)

    first, second = api_requests(stack)
    assert "modified_ts__gt" in first.query
    assert "update_id__gt" not in first.query
    assert first.query["order_by"] == "update_id"
    assert first.query["limit"] == "1000"
    assert "modified_ts__gt" not in second.query
    assert second.query["update_id__gt"] == str(max(u.update_id for u in stack.simulator.published_updates()[:30]))


def test_every_page_fetched_past_1000(stack: Stack, manual_clock: ManualClock, engine: Any) -> None:
    stack.simulator.publish(2300, status_changes=0)
    manual_clock.advance(PAST_DELAY)

    outcome = run_fetch(stack, FetchRequest(page_budget=10))

    assert outcome.pages == 3
    assert outcome.indicators_fetched == 2300
    assert outcome.indicators_created == 2300
    assert set(updates_by_key(engine, stack.data_stream)) == published_keys(stack)
    assert cursor_of(stack) == stack.simulator.published_updates()[-1].update_id


def test_timeout_after_page_three_resumes_at_four(
    stack: Stack, manual_clock: ManualClock, engine: Any, engine_proxy: EngineProxy
) -> None:
    stack.simulator.publish(500, status_changes=0)
    manual_clock.advance(PAST_DELAY)
    pages = [stack.simulator.published_updates()[i : i + 100] for i in range(0, 500, 100)]

    def deadline() -> float:
        return 1000.0 if engine_proxy.bulk_requests < 3 else 1.0

    job = make_job(stack, deadline, PAGE_SIZE="100", ENGINE_URL=engine_proxy.url)
    first = job.run(FetchRequest(page_budget=5))

    assert first.pages == 3
    assert first.stop_reason == "not enough time left for another page"
    assert cursor_of(stack) == pages[2][-1].update_id

    second = run_fetch(stack, FetchRequest(page_budget=5), PAGE_SIZE="100")
    resumed_at = api_requests(stack)[3].query["update_id__gt"]
    assert resumed_at == str(pages[2][-1].update_id)
    assert second.indicators_created == 200
    counts = updates_by_key(engine, stack.data_stream)
    assert set(counts) == published_keys(stack)
    assert set(counts.values()) == {1}


def test_crash_between_write_and_commit_adds_nothing(stack: Stack, manual_clock: ManualClock, engine: Any) -> None:
    stack.simulator.publish(120, status_changes=0)
    manual_clock.advance(PAST_DELAY)
    job = make_job(stack, PAGE_SIZE="100")
    original_commit = job._deps.cursors.commit

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise SystemExit("killed after the bulk write")

    job._deps.cursors.commit = crash  # type: ignore[method-assign]
    with pytest.raises(SystemExit):
        job.run(FetchRequest(page_budget=5))
    job._deps.cursors.commit = original_commit  # type: ignore[method-assign]

    assert cursor_of(stack) is None
    assert count_documents(engine, stack.data_stream) == 100

    manual_clock.advance(timedelta(minutes=20))
    stack.simulator.clear_faults()
    outcome = run_fetch(stack, FetchRequest(page_budget=5), PAGE_SIZE="100")
    assert outcome.indicators_already_present == 100
    assert outcome.indicators_created == 20
    counts = updates_by_key(engine, stack.data_stream)
    assert len(counts) == 120
    assert set(counts.values()) == {1}


def test_partial_bulk_429_then_503_retried(
    stack: Stack, manual_clock: ManualClock, engine: Any, engine_proxy: EngineProxy
) -> None:
    stack.simulator.publish(50, status_changes=0)
    manual_clock.advance(PAST_DELAY)
    engine_proxy.faults.extend(
        [EngineFault("partial", status=429, every=3), EngineFault("partial", status=503, every=2)]
    )
    commits: list[int] = []
    job = make_job(stack, ENGINE_URL=engine_proxy.url)
    original_commit = job._deps.cursors.commit

    def recording_commit(leased: Any, new_cursor: int, now: Any) -> Any:
        commits.append(engine_proxy.bulk_requests)
        return original_commit(leased, new_cursor, now)

    job._deps.cursors.commit = recording_commit  # type: ignore[method-assign]
    outcome = job.run(FetchRequest())

    assert outcome.indicators_created == 50
    assert engine_proxy.bulk_requests == 3
    assert commits == [3]
    assert count_documents(engine, stack.data_stream) == 50


def test_whole_bulk_503_leaves_cursor_in_place(
    stack: Stack, manual_clock: ManualClock, engine_proxy: EngineProxy
) -> None:
    stack.simulator.publish(20, status_changes=0)
    manual_clock.advance(PAST_DELAY)
    engine_proxy.faults.extend([EngineFault("whole", status=503)] * 10)

    with pytest.raises(Exception, match="gave up"):
        run_fetch(stack, ENGINE_URL=engine_proxy.url)

    assert cursor_of(stack) is None


def test_rejected_document_dead_lettered_rest_written(stack: Stack, manual_clock: ManualClock, engine: Any) -> None:
    published = stack.simulator.publish(10, status_changes=0)
    template = {k: v for k, v in published[0].obj.items() if k not in ("update_id", "modified_ts")}
    bad = stack.simulator.publish_object({**template, "id": 990001, "feed_id": "not-a-number"})
    stack.simulator.publish(5, status_changes=0)
    manual_clock.advance(PAST_DELAY)

    outcome = run_fetch(stack)

    assert outcome.indicators_created == 15
    assert outcome.indicators_dead_lettered == 1
    assert cursor_of(stack) == stack.simulator.published_updates()[-1].update_id
    store = DeadLetterStore(stack.aws.client("s3"), stack.aws.dead_letter_bucket)
    (key,) = store.list_keys()
    letter = json.loads(stack.aws.client("s3").get_object(Bucket=stack.aws.dead_letter_bucket, Key=key)["Body"].read())
    assert letter["status"] == 400
    assert letter["error"]["type"] == "mapper_parsing_exception"
    assert letter["document"]["anomali"]["threatstream"]["update_id"] == str(bad.update_id)


def test_two_invocations_at_once_one_works(stack: Stack, manual_clock: ManualClock, engine: Any) -> None:
    stack.simulator.publish(300, status_changes=0)
    manual_clock.advance(PAST_DELAY)
    jobs = [make_job(stack, PAGE_SIZE="100") for _ in range(2)]
    outcomes: list[FetchOutcome] = []
    barrier = threading.Barrier(2)

    def invoke(job: FetchJob) -> None:
        barrier.wait()
        outcomes.append(job.run(FetchRequest(page_budget=5)))

    threads = [threading.Thread(target=invoke, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    counts = updates_by_key(engine, stack.data_stream)
    assert sum(outcome.indicators_created for outcome in outcomes) == 300
    assert len(counts) == 300
    assert set(counts.values()) == {1}


def test_held_lease_makes_second_invocation_exit(stack: Stack, manual_clock: ManualClock) -> None:
    stack.simulator.publish(10, status_changes=0)
    manual_clock.advance(PAST_DELAY)
    store = CursorStore(stack.aws.client("dynamodb"), stack.aws.table_name)
    held = store.acquire(
        CursorKey("intelligence", stack.namespace, None), "other", manual_clock.now(), timedelta(minutes=5)
    )
    assert held is not None

    outcome = run_fetch(stack)

    assert outcome.status == "lease_busy"
    assert outcome.pages == 0
    assert api_requests(stack) == []


def test_expired_lease_of_crashed_run_taken_over(stack: Stack, manual_clock: ManualClock) -> None:
    stack.simulator.publish(10, status_changes=0)
    manual_clock.advance(PAST_DELAY)
    store = CursorStore(stack.aws.client("dynamodb"), stack.aws.table_name)
    store.acquire(CursorKey("intelligence", stack.namespace, None), "crashed", manual_clock.now(), timedelta(minutes=5))
    manual_clock.advance(timedelta(minutes=6))

    outcome = run_fetch(stack)

    assert outcome.status == "done"
    assert outcome.indicators_created == 10


def test_record_visible_late_not_skipped(stack: Stack, manual_clock: ManualClock, engine: Any) -> None:
    template = {k: v for k, v in stack.simulator.publish(1, status_changes=0)[0].obj.items() if k != "update_id"}
    manual_clock.advance(PAST_DELAY)
    run_fetch(stack)
    template.pop("modified_ts")
    late = stack.simulator.publish_object({**template, "id": 880001}, visible_after=timedelta(seconds=40))
    manual_clock.advance(timedelta(seconds=1))
    stack.simulator.publish(5, status_changes=0)
    manual_clock.advance(timedelta(seconds=30))
    before_visible = run_fetch(stack)
    manual_clock.advance(PAST_DELAY)
    run_fetch(stack)

    keys = set(updates_by_key(engine, stack.data_stream))
    assert before_visible.indicators_fetched == 0
    assert (str(late.id), str(late.update_id)) in keys
    assert keys == published_keys(stack)


def test_api_key_never_in_logs_errors_or_documents(
    stack: Stack,
    manual_clock: ManualClock,
    engine: Any,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    service_log: io.StringIO,
) -> None:
    caplog.set_level(logging.INFO)
    stack.simulator.publish(20, status_changes=0)
    manual_clock.advance(PAST_DELAY)
    stack.simulator.inject(Fault(kind="next_with_credentials"))
    with environment({**stack.environment, "POWERTOOLS_LOG_LEVEL": "DEBUG", "PAGE_SIZE": "10"}):
        handler = load_handler("fetch_intelligence")
        with redirect_service_log(service_log):
            result = handler.lambda_handler({"page_budget": 5}, LambdaContext("FetchIntelligence"))
            stack.aws.put_threatstream_secret(USERNAME, "wrong-key")
            parameters.clear_caches()
            handler = load_handler("fetch_intelligence")
            with pytest.raises(ThreatStreamAuthError) as failure:
                handler.lambda_handler({}, LambdaContext("FetchIntelligence"))

    captured = capsys.readouterr()
    log = service_log.getvalue()
    engine.indices.refresh(index=stack.data_stream)
    documents = json.dumps(engine.search(index=stack.data_stream, body={"size": 100})["hits"]["hits"])
    assert result["indicators_created"] == 20
    assert "page written" in log
    for text in (log, captured.out, captured.err, caplog.text, str(failure.value), repr(failure.value), documents):
        assert API_KEY not in text
        assert "wrong-key" not in text
    assert all("api_key" not in r.query for r in api_requests(stack))


def test_hostile_records_neither_block_nor_vanish(stack: Stack, manual_clock: ManualClock, engine: Any) -> None:
    template = {k: v for k, v in stack.simulator.publish(5, status_changes=0)[0].obj.items() if k != "update_id"}
    template.pop("modified_ts")
    stack.simulator.publish_object({**template, "id": 770001, "value": "bad\ud800.example"})
    stack.simulator.publish_object({**template, "id": int("9" * 600)})
    stack.simulator.publish(5, status_changes=0)
    manual_clock.advance(PAST_DELAY)

    outcome = run_fetch(stack)

    assert outcome.indicators_fetched == 12
    assert outcome.indicators_created + outcome.indicators_dead_lettered == 12
    assert cursor_of(stack) == stack.simulator.published_updates()[-1].update_id


def test_string_update_ids_move_cursor(stack: Stack, manual_clock: ManualClock, engine: Any) -> None:
    template = {k: v for k, v in stack.simulator.publish(1, status_changes=0)[0].obj.items() if k != "modified_ts"}
    run_fetch(stack)
    manual_clock.advance(PAST_DELAY)
    run_fetch(stack)
    first = stack.simulator.publish_object({**template, "id": 660001, "update_id": 10**12})
    manual_clock.advance(PAST_DELAY)

    outcome = run_fetch(stack)

    assert first.update_id == 10**12
    assert outcome.indicators_created == 1
    assert cursor_of(stack) == 10**12


def test_document_refused_as_request_is_dead_lettered(stack: Stack, engine: Any, manual_clock: ManualClock) -> None:
    DataStreamSetup(engine, "opensearch").ensure("intelligence")
    store = DeadLetterStore(stack.aws.client("s3"), stack.aws.dead_letter_bucket)
    writer = BulkWriter(engine, store, manual_clock, no_deadline)
    good = [(f"good-{i}", {"@timestamp": manual_clock.now().isoformat(), "tags": ["x"]}) for i in range(6)]
    too_long = ("x" * 600, {"@timestamp": manual_clock.now().isoformat()})

    result = writer.write(stack.data_stream, [*good[:3], too_long, *good[3:]])

    assert result.created == 6
    assert result.dead_lettered == 1
    (key,) = store.list_keys()
    letter = json.loads(stack.aws.client("s3").get_object(Bucket=stack.aws.dead_letter_bucket, Key=key)["Body"].read())
    assert letter["status"] == 400
    assert letter["document_id"] == "x" * 600
