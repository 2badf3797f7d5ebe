"""MaintainLatest against a real OpenSearch node: upserts, expiry, retirement, migration."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, timedelta
from typing import Any

import pytest
from opensearchpy import OpenSearch

from local.checks import count_documents
from ti_anomali.adapters.cursor_store import CursorKey, CursorStore
from ti_anomali.adapters.dead_letters import DeadLetterStore
from ti_anomali.adapters.latest_store import LatestStore
from ti_anomali.adapters.search_engine import BulkWriter, DataStreamSetup
from ti_anomali.clock import ManualClock
from ti_anomali.ecs.intelligence import MappingOptions, document_id, map_intelligence
from ti_anomali.engine import templates
from ti_anomali.fetch import FetchRequest
from ti_anomali.latest import DatasetOutcome, LatestJob
from ti_anomali.latest_rules import INTELLIGENCE
from ti_anomali.retry import no_deadline
from ti_anomali.runtime import build_latest_dependencies
from ti_anomali.settings import LatestSettings

from .conftest import Stack
from .test_fetch import run_fetch

pytestmark = pytest.mark.integration
ALIAS = templates.latest_alias("intelligence")
PAST_SYNC_DELAY = timedelta(seconds=61)


@pytest.fixture
def latest_env(stack: Stack, engine: OpenSearch) -> dict[str, str]:
    """Give each test a fresh latest index and source: MaintainLatest reads every namespace."""
    engine.indices.delete_data_stream(name="logs-ti_anomali.*")
    for name in (f"{ALIAS}-*", templates.TOMBSTONE_INDEX):
        engine.indices.delete(index=name, params={"ignore_unavailable": "true", "expand_wildcards": "all"})
    return {**stack.environment, "LATEST_DATASETS": "intelligence"}


def latest_job(environment: dict[str, str], **overrides: str) -> LatestJob:
    settings = LatestSettings.from_environment({**environment, **overrides})
    return LatestJob(build_latest_dependencies(settings), no_deadline, owner=str(uuid.uuid4()))


def run_latest(environment: dict[str, str], **overrides: str) -> DatasetOutcome:
    (outcome,) = latest_job(environment, **overrides).run()
    return outcome


def indicator(indicator_id: int, update_id: int, **fields: Any) -> dict[str, Any]:
    base = {
        "id": indicator_id,
        "update_id": update_id,
        "value": f"host-{indicator_id}.example.net",
        "itype": "mal_domain",
        "type": "domain",
        "status": "active",
        "confidence": 80,
        "source": "Analyst",
        "tlp": "amber",
        "is_public": False,
        "meta": {"severity": "high"},
        "created_ts": "2026-11-01T00:00:00.000Z",
        "modified_ts": "2026-12-01T00:00:00.000Z",
        "expiration_ts": "9999-12-31T00:00:00.000Z",
    }
    return base | fields


def ingest(stack: Stack, clock: ManualClock, engine: OpenSearch, objects: list[dict[str, Any]]) -> None:
    """Map objects and write them to the source data stream in the order given, each at its own time."""
    setup = DataStreamSetup(engine, "opensearch")
    setup.ensure("intelligence")
    writer = BulkWriter(
        engine, DeadLetterStore(stack.aws.client("s3"), stack.aws.dead_letter_bucket), clock, no_deadline
    )
    for obj in objects:
        document = map_intelligence(obj, MappingOptions(now=clock.now(), namespace=stack.namespace))
        writer.write(stack.data_stream, [(document_id(document), document)])
        clock.advance(timedelta(milliseconds=5))
    engine.indices.refresh(index=stack.data_stream)


def latest_documents(engine: OpenSearch) -> dict[str, dict[str, Any]]:
    engine.indices.refresh(index=ALIAS)
    hits = engine.search(index=ALIAS, body={"size": 10000})["hits"]["hits"]
    return {hit["_source"]["anomali"]["threatstream"]["id"]: hit["_source"] for hit in hits}


def test_newest_update_wins_in_reverse_and_twice(
    stack: Stack, manual_clock: ManualClock, engine: OpenSearch, latest_env: dict[str, str]
) -> None:
    ingest(stack, manual_clock, engine, [indicator(7, 30, confidence=90)])
    manual_clock.advance(PAST_SYNC_DELAY)
    first = run_latest(latest_env)
    ingest(stack, manual_clock, engine, [indicator(7, 20, confidence=10), indicator(7, 10)])
    manual_clock.advance(PAST_SYNC_DELAY)
    second = run_latest(latest_env)
    run_latest(latest_env)

    documents = latest_documents(engine)
    assert list(documents) == ["7"]
    assert documents["7"]["anomali"]["threatstream"]["update_id"] == "30"
    assert documents["7"]["labels"]["is_ioc_transform_source"] == "false"
    assert first.upserted == 1
    assert second.stale == 1


def test_expired_indicator_gone_after_next_run(
    stack: Stack, manual_clock: ManualClock, engine: OpenSearch, latest_env: dict[str, str]
) -> None:
    soon = (manual_clock.now() + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    ingest(stack, manual_clock, engine, [indicator(1, 1, expiration_ts=soon), indicator(2, 2)])
    manual_clock.advance(PAST_SYNC_DELAY)
    run_latest(latest_env)
    assert set(latest_documents(engine)) == {"1", "2"}

    manual_clock.advance(timedelta(hours=1, minutes=2))
    outcome = run_latest(latest_env)

    assert set(latest_documents(engine)) == {"2"}
    assert outcome.expired == 1


def test_far_expiry_gone_after_ioc_duration(
    stack: Stack, manual_clock: ManualClock, engine: OpenSearch, latest_env: dict[str, str]
) -> None:
    ingest(stack, manual_clock, engine, [indicator(3, 3, expiration_ts="9999-12-31T00:00:00.000Z")])
    manual_clock.advance(PAST_SYNC_DELAY)
    run_latest(latest_env)
    manual_clock.advance(timedelta(days=89))
    run_latest(latest_env)
    assert set(latest_documents(engine)) == {"3"}

    manual_clock.advance(timedelta(days=1, minutes=2))
    run_latest(latest_env)

    assert latest_documents(engine) == {}


def test_expired_indicator_not_revived_by_older_update(
    stack: Stack, manual_clock: ManualClock, engine: OpenSearch, latest_env: dict[str, str]
) -> None:
    soon = (manual_clock.now() + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    ingest(stack, manual_clock, engine, [indicator(4, 40, expiration_ts=soon)])
    manual_clock.advance(PAST_SYNC_DELAY)
    run_latest(latest_env)
    manual_clock.advance(timedelta(hours=2))
    run_latest(latest_env)

    ingest(stack, manual_clock, engine, [indicator(4, 39)])
    manual_clock.advance(PAST_SYNC_DELAY)
    outcome = run_latest(latest_env)

    assert latest_documents(engine) == {}
    assert outcome.stale == 1


def test_falsepos_with_far_expiry_leaves_latest(
    stack: Stack, manual_clock: ManualClock, engine: OpenSearch, latest_env: dict[str, str]
) -> None:
    ingest(stack, manual_clock, engine, [indicator(5, 50), indicator(6, 60)])
    manual_clock.advance(PAST_SYNC_DELAY)
    run_latest(latest_env)
    ingest(stack, manual_clock, engine, [indicator(5, 51, status="falsepos")])
    manual_clock.advance(PAST_SYNC_DELAY)
    outcome = run_latest(latest_env)
    ingest(stack, manual_clock, engine, [indicator(5, 50)])
    manual_clock.advance(PAST_SYNC_DELAY)
    run_latest(latest_env)

    assert set(latest_documents(engine)) == {"6"}
    assert outcome.retired == 1


def test_inactive_kept_when_configured_live(
    stack: Stack, manual_clock: ManualClock, engine: OpenSearch, latest_env: dict[str, str]
) -> None:
    ingest(stack, manual_clock, engine, [indicator(8, 80, status="inactive")])
    manual_clock.advance(PAST_SYNC_DELAY)

    run_latest(latest_env, LIVE_STATUSES="active,inactive")

    assert set(latest_documents(engine)) == {"8"}


def test_guardrails_hold_back_allowlisted_and_red(
    stack: Stack, manual_clock: ManualClock, engine: OpenSearch, latest_env: dict[str, str]
) -> None:
    ingest(
        stack,
        manual_clock,
        engine,
        [
            indicator(11, 1, value="10.1.2.3", itype="mal_ip", type="ip", ip="10.1.2.3"),
            indicator(12, 2, value="intranet.corp.example"),
            indicator(13, 3, tlp="red"),
            indicator(14, 4),
        ],
    )
    manual_clock.advance(PAST_SYNC_DELAY)

    outcome = run_latest(
        latest_env, ALLOWLIST_NETWORKS="10.0.0.0/8", ALLOWLIST_VALUES=".corp.example", BLOCKED_TLP="RED"
    )

    assert set(latest_documents(engine)) == {"14"}
    assert outcome.held_back == 3
    assert count_documents(engine, stack.data_stream) == 4


def test_migration_moves_alias_and_deletes_old(
    stack: Stack, manual_clock: ManualClock, engine: OpenSearch, latest_env: dict[str, str]
) -> None:
    ingest(stack, manual_clock, engine, [indicator(i, i) for i in range(1, 21)])
    manual_clock.advance(PAST_SYNC_DELAY)
    run_latest(latest_env)
    before = latest_documents(engine)

    store = LatestStore(engine, INTELLIGENCE, "opensearch", manual_clock, no_deadline, version=2)
    steps = store.ensure_index().steps

    assert set(engine.indices.get_alias(name=ALIAS)) == {f"{ALIAS}-2"}
    assert not engine.indices.exists(index=f"{ALIAS}-1")
    assert latest_documents(engine) == before
    assert any("copied 20 documents" in step for step in steps)


def test_migration_killed_halfway_finishes_on_rerun(
    stack: Stack, manual_clock: ManualClock, engine: OpenSearch, latest_env: dict[str, str]
) -> None:
    ingest(stack, manual_clock, engine, [indicator(i, i) for i in range(1, 11)])
    manual_clock.advance(PAST_SYNC_DELAY)
    run_latest(latest_env)
    before = latest_documents(engine)
    store = LatestStore(engine, INTELLIGENCE, "opensearch", manual_clock, no_deadline, version=2)

    store._create_index(hidden=True)
    store._copy(f"{ALIAS}-1")
    wildcard = engine.search(index="logs-ti_anomali_latest.*", body={"size": 100})["hits"]["total"]["value"]
    store.ensure_index()

    assert wildcard == 10
    assert set(engine.indices.get_alias(name=ALIAS)) == {f"{ALIAS}-2"}
    assert not engine.indices.exists(index=f"{ALIAS}-1")
    assert latest_documents(engine) == before
    after = engine.search(index="logs-ti_anomali_latest.*", body={"size": 100})["hits"]["total"]["value"]
    assert after == 10


def test_latest_index_deleted_by_hand_rebuilt(
    stack: Stack, manual_clock: ManualClock, engine: OpenSearch, latest_env: dict[str, str]
) -> None:
    ingest(stack, manual_clock, engine, [indicator(i, i) for i in range(1, 6)])
    manual_clock.advance(PAST_SYNC_DELAY)
    run_latest(latest_env)
    engine.indices.delete(index=f"{ALIAS}-1")
    manual_clock.advance(PAST_SYNC_DELAY)

    outcome = run_latest(latest_env)

    assert set(latest_documents(engine)) == {"1", "2", "3", "4", "5"}
    assert outcome.upserted == 5


def test_two_runs_at_once_equal_one(
    stack: Stack, manual_clock: ManualClock, engine: OpenSearch, latest_env: dict[str, str]
) -> None:
    ingest(
        stack, manual_clock, engine, [indicator(i, i, status="active" if i % 3 else "inactive") for i in range(1, 31)]
    )
    manual_clock.advance(PAST_SYNC_DELAY)
    jobs = [latest_job(latest_env) for _ in range(2)]
    barrier = threading.Barrier(2)
    outcomes: list[DatasetOutcome] = []

    def invoke(job: LatestJob) -> None:
        barrier.wait()
        outcomes.extend(job.run())

    threads = [threading.Thread(target=invoke, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    run_latest(latest_env)

    assert set(latest_documents(engine)) == {str(i) for i in range(1, 31) if i % 3}
    assert sum(outcome.upserted for outcome in outcomes) == 20


def test_ten_thousand_documents_all_reflected(
    stack: Stack, manual_clock: ManualClock, engine: OpenSearch, latest_env: dict[str, str]
) -> None:
    stack.simulator.publish(10_000, status_changes=0)
    manual_clock.advance(timedelta(minutes=2))
    run_fetch(stack, FetchRequest(page_budget=20))
    manual_clock.advance(PAST_SYNC_DELAY)

    outcome = run_latest(latest_env, LATEST_BATCH_SIZE="1000", LIVE_STATUSES="active,inactive,falsepos")

    assert outcome.source_documents == 10_000
    live = stack.simulator.live_indicator_ids(manual_clock.now(), live_statuses=("active", "inactive", "falsepos"))
    assert set(latest_documents_all(engine)) == live
    store = CursorStore(stack.aws.client("dynamodb"), stack.aws.table_name)
    checkpoint = store.read(CursorKey("intelligence", "all", None, purpose="latest"))
    assert checkpoint == int((manual_clock.now() - timedelta(seconds=60)).timestamp() * 1000)


def latest_documents_all(engine: OpenSearch) -> set[str]:
    engine.indices.refresh(index=ALIAS)
    ids: set[str] = set()
    after: list[Any] | None = None
    while True:
        body: dict[str, Any] = {
            "size": 5000,
            "sort": [{"anomali.threatstream.id": "asc"}],
            "_source": False,
            "docvalue_fields": ["anomali.threatstream.id"],
        }
        if after:
            body["search_after"] = after
        hits = engine.search(index=ALIAS, body=body)["hits"]["hits"]
        ids.update(hit["fields"]["anomali.threatstream.id"][0] for hit in hits)
        if len(hits) < 5000:
            return ids
        after = hits[-1]["sort"]


def test_old_checkpoint_reports_catch_up_gap(
    stack: Stack, manual_clock: ManualClock, engine: OpenSearch, latest_env: dict[str, str]
) -> None:
    ingest(stack, manual_clock, engine, [indicator(21, 1)])
    manual_clock.advance(PAST_SYNC_DELAY)
    run_latest(latest_env)
    manual_clock.advance(timedelta(days=6))
    ingest(stack, manual_clock, engine, [indicator(22, 2)])
    manual_clock.advance(PAST_SYNC_DELAY)

    outcome = run_latest(latest_env)

    assert outcome.catch_up_gap
    assert "22" in latest_documents(engine)
    assert manual_clock.now().tzinfo == UTC
