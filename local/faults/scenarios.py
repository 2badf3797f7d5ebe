"""The named fault scenarios. Each drives invocations into a fault; the runner then drains and checks.

A scenario may also return its own numbers and conditions in `Scenario.extra` and
`Scenario.expectations`: a failed expectation fails the scenario like a broken invariant.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from botocore.exceptions import ClientError

from local.engine_proxy import EngineFault
from local.faults.world import Scenario
from local.simulator.faults import Fault
from ti_anomali.adapters.search_engine import BulkWriter
from ti_anomali.fetch import FetchRequest

SCENARIOS: dict[str, Callable[[Scenario], None]] = {}
SCENARIO_GROUPS: dict[str, str] = {}


def scenario(group: str) -> Callable[[Callable[[Scenario], None]], Callable[[Scenario], None]]:
    def register(body: Callable[[Scenario], None]) -> Callable[[Scenario], None]:
        SCENARIOS[body.__name__] = body
        SCENARIO_GROUPS[body.__name__] = group
        return body

    return register


def expect(s: Scenario, name: str, condition: bool) -> None:
    """Record a scenario-specific condition; a false one fails the scenario."""
    s.expectations[name] = condition


def publish_and_wait(s: Scenario, count: int) -> None:
    s.simulator.publish(count, status_changes=0.2)
    s.clock.advance(timedelta(minutes=1, seconds=1))


# ----- ThreatStream API


def _api_fault_then_schedule(s: Scenario, fault: Fault, invocations: int = 4) -> None:
    publish_and_wait(s, 250)
    s.simulator.inject(fault)
    s.schedule(invocations, between=timedelta(seconds=30), PAGES_PER_INVOCATION="2")


@scenario("api")
def api_429_retry_after_seconds(s: Scenario) -> None:
    publish_and_wait(s, 250)
    s.simulator.inject(Fault(kind="rate_limit", retry_after="seconds", retry_after_seconds=45))
    before = s.clock.now()
    outcome = s.invoke_fetch(PAGES_PER_INVOCATION="1")
    waited = (s.clock.now() - before).total_seconds()
    s.extra["waited_seconds"] = round(waited, 1)
    expect(s, "invocation succeeded", outcome is not None and outcome.pages == 1)
    expect(s, "waited at least Retry-After", waited >= 45)


@scenario("api")
def api_429_retry_after_http_date(s: Scenario) -> None:
    publish_and_wait(s, 250)
    s.simulator.inject(Fault(kind="rate_limit", retry_after="http_date", retry_after_seconds=30))
    before = s.clock.now()
    outcome = s.invoke_fetch()
    waited = (s.clock.now() - before).total_seconds()
    s.extra["waited_seconds"] = round(waited, 1)
    expect(s, "invocation succeeded", outcome is not None and outcome.pages == 1)
    expect(s, "waited until the HTTP date", waited >= 29)


@scenario("api")
def api_429_without_header(s: Scenario) -> None:
    _api_fault_then_schedule(s, Fault(kind="rate_limit", retry_after="none", count=3))


@scenario("api")
def api_5xx_with_html(s: Scenario) -> None:
    publish_and_wait(s, 250)
    for status in (500, 502, 503):
        s.simulator.inject(Fault(kind="server_error", status=status))
    outcome = s.invoke_fetch()
    expect(s, "three 5xx answers retried in one invocation", outcome is not None and outcome.pages == 1)
    s.schedule(3)


@scenario("api")
def api_connection_reset(s: Scenario) -> None:
    _api_fault_then_schedule(s, Fault(kind="reset", count=2))


@scenario("api")
def api_slower_than_timeout(s: Scenario) -> None:
    _api_fault_then_schedule(s, Fault(kind="slow", delay_seconds=3.0))


@scenario("api")
def api_truncated_json(s: Scenario) -> None:
    _api_fault_then_schedule(s, Fault(kind="truncated", count=2))


@scenario("api")
def api_html_with_200(s: Scenario) -> None:
    publish_and_wait(s, 250)
    s.simulator.inject(Fault(kind="html_200", count=20))
    outcome = s.invoke_fetch()
    expect(s, "an HTML 200 is an error, not an empty page", outcome is None and s.cursor() is None)
    s.simulator.clear_faults()
    s.schedule(3)


@scenario("api")
def api_empty_page_with_next(s: Scenario) -> None:
    publish_and_wait(s, 250)
    s.simulator.inject(Fault(kind="empty_with_next"))
    outcome = s.invoke_fetch(FetchRequest(page_budget=5))
    expect(s, "empty page ends the invocation", outcome is not None and outcome.stop_reason == "empty page")
    expect(s, "cursor unchanged by the empty page", s.cursor() is None)


@scenario("api")
def api_same_page_twice(s: Scenario) -> None:
    publish_and_wait(s, 250)
    s.simulator.inject(Fault(kind="repeat_page", at_request=2))
    outcome = s.invoke_fetch(FetchRequest(page_budget=5))
    expect(s, "repeated page stops paging", outcome is not None and "does not move" in outcome.stop_reason)


@scenario("api")
def api_next_carries_credentials(s: Scenario) -> None:
    publish_and_wait(s, 250)
    s.simulator.inject(Fault(kind="next_with_credentials", count=3))
    s.invoke_fetch(FetchRequest(page_budget=5))
    leaked = [r for r in s.simulator.requests if "api_key" in r.query or "username" in r.query]
    s.extra["requests_with_credentials"] = len(leaked)
    expect(s, "credentials in meta.next never sent", not leaked)


@scenario("api")
def api_meta_missing_or_total_as_string(s: Scenario) -> None:
    publish_and_wait(s, 250)
    s.simulator.inject(Fault(kind="meta_missing"))
    s.simulator.inject(Fault(kind="total_count_string"))
    first = s.invoke_fetch()
    second = s.invoke_fetch()
    expect(s, "page without meta still written", first is not None and first.indicators_created > 0)
    expect(s, "string total_count read as a number", second is not None and second.backlog is not None)


@scenario("api")
def api_records_visible_late(s: Scenario) -> None:
    s.simulator.inject(Fault(kind="late_visibility", count=40, visible_after_seconds=45))
    s.simulator.publish(40, status_changes=0)
    s.clock.advance(timedelta(seconds=2))
    s.simulator.publish(100, status_changes=0)
    s.clock.advance(timedelta(seconds=20))
    s.invoke_fetch()
    s.schedule(4, between=timedelta(seconds=20))


@scenario("api")
def api_indicator_updated_between_runs(s: Scenario) -> None:
    publish_and_wait(s, 100)
    s.invoke_fetch()
    for _ in range(4):
        s.simulator.publish(60, status_changes=0.5)
        s.clock.advance(timedelta(seconds=10))
    s.schedule(3)


@scenario("api")
def api_status_changes_inactive_falsepos(s: Scenario) -> None:
    publish_and_wait(s, 200)
    s.invoke_fetch(FetchRequest(page_budget=5))
    s.simulator.publish(150, status_changes=1.0)
    s.clock.advance(timedelta(minutes=1, seconds=1))
    s.invoke_fetch(FetchRequest(page_budget=5))
    statuses = {u.status for u in s.simulator.published_updates()}
    expect(s, "inactive and falsepos both published", {"inactive", "falsepos"} <= statuses)


# ----- the engine


@scenario("engine")
def engine_429_on_part_of_bulk(s: Scenario) -> None:
    publish_and_wait(s, 250)
    s.proxy.faults.extend([EngineFault("partial", status=429, every=4), EngineFault("partial", status=429, every=2)])
    outcome = s.invoke_fetch()
    expect(s, "partly rejected page fully written", outcome is not None and outcome.indicators_created == 100)


@scenario("engine")
def engine_503_on_whole_bulk(s: Scenario) -> None:
    publish_and_wait(s, 250)
    s.proxy.faults.extend([EngineFault("whole", status=503)] * 20)
    s.invoke_fetch()
    expect(s, "cursor not moved while the engine refuses", s.cursor() is None)


@scenario("engine")
def engine_node_stopped_mid_run(s: Scenario) -> None:
    publish_and_wait(s, 300)
    s.invoke_fetch()
    s.world.node.stop()
    try:
        s.invoke_fetch()
        expect(s, "invocation failed while the node was down", len(s.failures) == 1)
    finally:
        s.world.node.start()


@scenario("engine")
def engine_mapping_conflict_on_one_document(s: Scenario) -> None:
    published = s.simulator.publish(30, status_changes=0)
    template = {k: v for k, v in published[0].obj.items() if k not in ("update_id", "modified_ts", "id")}
    s.simulator.publish_object({**template, "feed_id": "not-a-number"})
    s.simulator.publish(30, status_changes=0)
    s.clock.advance(timedelta(minutes=1, seconds=1))
    outcome = s.invoke_fetch()
    expect(s, "one document dead-lettered", outcome is not None and outcome.indicators_dead_lettered == 1)


@scenario("engine")
def engine_latest_index_deleted_by_hand(s: Scenario) -> None:
    publish_and_wait(s, 150)
    s.invoke_fetch(FetchRequest(page_budget=5))
    s.maintain_latest()
    s.world.engine.indices.delete(index="logs-ti_anomali_latest.intelligence-*")


# ----- Lambda and AWS


@scenario("lambda")
def lambda_killed_after_bulk_before_commit(s: Scenario) -> None:
    publish_and_wait(s, 250)
    job = s.fetch_job()

    def killed(*args: Any, **kwargs: Any) -> Any:
        raise SystemExit("killed after the bulk write")

    job._deps.cursors.commit = killed  # type: ignore[method-assign]
    s.invoke_fetch(job=job)
    s.clock.advance(timedelta(minutes=20))
    expect(s, "cursor not committed", s.cursor() is None)


@scenario("lambda")
def lambda_killed_mid_bulk(s: Scenario) -> None:
    publish_and_wait(s, 250)
    job = s.fetch_job()
    writer: BulkWriter = job._deps.writer
    original_send = writer._send

    def half_then_killed(index: str, documents: list[Any], result: Any) -> Any:
        original_send(index, documents[: len(documents) // 2], result)
        raise SystemExit("killed in the middle of a bulk write")

    writer._send = half_then_killed  # type: ignore[method-assign]
    s.invoke_fetch(job=job)
    s.clock.advance(timedelta(minutes=20))


@scenario("lambda")
def lambda_two_invocations_at_once(s: Scenario) -> None:
    publish_and_wait(s, 400)
    jobs = [s.fetch_job(PAGES_PER_INVOCATION="4") for _ in range(2)]
    barrier = threading.Barrier(2)

    def invoke(job: Any) -> None:
        barrier.wait()
        s.invoke_fetch(job=job)

    threads = [threading.Thread(target=invoke, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


@scenario("lambda")
def lambda_dynamodb_throttles_cursor_write(s: Scenario) -> None:
    publish_and_wait(s, 250)
    job = s.fetch_job()
    client = job._deps.cursors._client
    original = client.update_item
    throttled = {"left": 1}

    def update_item(**kwargs: Any) -> Any:
        if "#cursor = :new" in kwargs.get("UpdateExpression", "") and throttled["left"]:
            throttled["left"] -= 1
            error = {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "injected throttle"}}
            raise ClientError(error, "UpdateItem")
        return original(**kwargs)

    client.update_item = update_item
    s.invoke_fetch(job=job)
    client.update_item = original
    expect(s, "throttled commit failed the invocation", len(s.failures) == 1)


@scenario("lambda")
def lambda_lease_held_by_crashed_invocation(s: Scenario) -> None:
    from ti_anomali.adapters.cursor_store import CursorKey, CursorStore

    publish_and_wait(s, 150)
    store = CursorStore(s.aws.client("dynamodb"), s.aws.table_name)
    store.acquire(CursorKey("intelligence", s.namespace, None), "crashed", s.clock.now(), timedelta(minutes=6))
    blocked = s.invoke_fetch()
    expect(s, "lease blocks while it lasts", blocked is not None and blocked.status == "lease_busy")
    s.clock.advance(timedelta(minutes=7))
    resumed = s.invoke_fetch()
    expect(s, "expired lease taken over", resumed is not None and resumed.status == "done")


# ----- the push endpoint


def pushed_line(s: Scenario, number: int) -> bytes:
    """Return one NDJSON line of a pushed indicator, added now so that it is live."""
    added_at = s.clock.now().isoformat().replace("+00:00", "Z")
    indicator = {
        "id": 5_000_000 + number,
        "update_id": 1,
        "value_type": "domain",
        "domain": f"host-{number}.example.net",
        "itype": "mal_domain",
        "state": "active",
        "severity": "high",
        "confidence": 70,
        "added_at": added_at,
    }
    return json.dumps(indicator).encode() + b"\n"


def expect_pushed(s: Scenario, lines: range) -> None:
    s.pushed |= {(str(5_000_000 + number), "1") for number in lines}


@scenario("push")
def push_replayed_request(s: Scenario) -> None:
    body = b"".join(pushed_line(s, n) for n in range(50))
    first_status, first = s.push(body)
    second_status, second = s.push(body)
    expect_pushed(s, range(50))
    s.extra["created_then"] = f"{first.get('created')}/{second.get('created')}"
    expect(s, "both requests accepted", first_status == second_status == 200)
    expect(s, "the replay created nothing", second.get("created") == 0 and second.get("already_present") == 50)


@scenario("push")
def push_signature_over_other_body(s: Scenario) -> None:
    body = b"".join(pushed_line(s, n) for n in range(10))
    status, _ = s.push(body, signed_body=body + b" ")
    expect(s, "answered 401", status == 401)


@scenario("push")
def push_thousand_lines_few_bad(s: Scenario) -> None:
    bad = {7, 250, 600, 999}
    lines = [b"not json at all\n" if n in bad else pushed_line(s, n) for n in range(1000)]
    status, body = s.push(b"".join(lines))
    expect_pushed(s, range(1000))
    s.pushed -= {(str(5_000_000 + n), "1") for n in bad}
    rejected = {item.get("line") for item in body.get("rejected", [])}
    s.extra["rejected_lines"] = len(rejected)
    expect(s, "answered 200", status == 200)
    expect(s, "bad line numbers reported", rejected == {n + 1 for n in bad})


@scenario("push")
def push_body_over_size_limit(s: Scenario) -> None:
    line = pushed_line(s, 0)
    body = line * (4 * 1024 * 1024 // len(line) + 1)
    status, _ = s.push(body)
    expect(s, "answered 413", status == 413)
