"""FetchIntelligence: fetch pages, map them to ECS, write them, then commit the cursor.

One invocation takes the lease on its cursor item and fetches up to its page budget, which is one
page by default because the schedule sets the pace. For each page it maps every object, writes the
page, and only then moves the cursor to the page's maximum `update_id`. A crash anywhere before the commit
leaves the cursor where it was, and the next run writes the same page again: deterministic ids
make that repeat add nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger

from ti_anomali.adapters.cursor_store import CursorKey, CursorStore, LeasedCursor
from ti_anomali.adapters.search_engine import BulkWriter, DataStreamSetup, WriteResult, existing_ids
from ti_anomali.adapters.threatstream import Page, ThreatStreamClient
from ti_anomali.clock import Clock
from ti_anomali.ecs.intelligence import MappingOptions, document_id, map_intelligence
from ti_anomali.engine.templates import data_stream_name
from ti_anomali.paging import (
    ForeignNextLink,
    RequestWindow,
    first_page_parameters,
    moves_forward,
    next_page_parameters,
    page_cursor,
)
from ti_anomali.retry import Deadline
from ti_anomali.settings import FetchSettings

DATASET = "intelligence"
# DynamoDB numbers hold 38 digits; ThreatStream's update ids have far fewer.
MAX_UPDATE_ID_DIGITS = 38
logger = Logger(service="ti-anomali", child=True)


class InvalidEvent(ValueError):
    """The invocation event carries an invalid option."""


@dataclass(frozen=True)
class FetchRequest:
    """Options an invocation event may set; a scheduled event sets none."""

    page_budget: int | None = None
    dry_run: bool = False
    backfill_from: datetime | None = None
    requested_by: str | None = None

    @classmethod
    def from_event(cls, event: Mapping[str, Any] | None) -> FetchRequest:
        """Read the options of a manual event; keys that EventBridge adds are ignored."""
        event = event or {}
        budget = event.get("page_budget")
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or budget < 1):
            raise InvalidEvent(f"page_budget must be a positive integer, got {budget!r}")
        dry_run = event.get("dry_run", False)
        if not isinstance(dry_run, bool):
            raise InvalidEvent(f"dry_run must be true or false, got {dry_run!r}")
        backfill_from = None
        if event.get("backfill_from") is not None:
            try:
                backfill_from = datetime.fromisoformat(str(event["backfill_from"]).replace("Z", "+00:00"))
            except ValueError:
                example = "2026-01-01T00:00:00Z"
                raise InvalidEvent(
                    f"backfill_from must be an ISO 8601 time such as {example}, got {event['backfill_from']!r}"
                ) from None
            if backfill_from.tzinfo is None:
                raise InvalidEvent("backfill_from must carry a time zone, such as a trailing Z")
        requested_by = event.get("requested_by")
        return cls(
            page_budget=budget,
            dry_run=dry_run,
            backfill_from=backfill_from,
            requested_by=str(requested_by) if requested_by is not None else None,
        )


@dataclass
class FetchOutcome:
    """Figures of one invocation, which the handler turns into metrics and its return value."""

    status: str = "done"
    stop_reason: str = ""
    pages: int = 0
    indicators_fetched: int = 0
    indicators_created: int = 0
    indicators_already_present: int = 0
    indicators_dead_lettered: int = 0
    mapping_errors: int = 0
    cursor_before: int | None = None
    cursor_after: int | None = None
    backlog: int | None = None
    dry_run_documents: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Return the outcome as the JSON the handler returns (cursors as decimal strings)."""
        data = {key: value for key, value in self.__dict__.items() if key != "dry_run_documents"}
        data["cursor_before"] = _as_text(self.cursor_before)
        data["cursor_after"] = _as_text(self.cursor_after)
        if self.dry_run_documents:
            data["documents"] = self.dry_run_documents
        return data


def _as_text(value: int | None) -> str | None:
    return None if value is None else str(value)


@dataclass
class FetchDependencies:
    """The adapters one invocation works with, built once per container by the handler."""

    settings: FetchSettings
    api: ThreatStreamClient
    cursors: CursorStore
    setup: DataStreamSetup
    writer: BulkWriter
    engine_client: Any
    clock: Clock
    mapping_options: MappingOptions


class FetchJob:
    """Runs one invocation of FetchIntelligence."""

    def __init__(self, deps: FetchDependencies, deadline: Deadline, owner: str) -> None:
        self._deps = deps
        self._settings = deps.settings
        self._deadline = deadline
        self._owner = owner
        self._key = CursorKey(DATASET, self._settings.engine.namespace, self._settings.query)
        self._index = data_stream_name(DATASET, self._settings.engine.namespace)

    def run(self, request: FetchRequest) -> FetchOutcome:
        """Take the lease, fetch and write pages within the budget, and release the lease."""
        outcome = FetchOutcome()
        leased = self._deps.cursors.acquire(self._key, self._owner, self._deps.clock.now(), self._lease_duration())
        if leased is None:
            logger.info("lease held by another invocation; nothing to do", cursor_key=self._key.partition_key)
            outcome.status = "lease_busy"
            return outcome
        if leased.took_over_expired_lease:
            logger.warning(
                "took over an expired lease; checking the first page for documents already written",
                reason="previous invocation ended without releasing its lease",
                cursor=_as_text(leased.cursor),
            )
        try:
            if request.backfill_from is not None and not request.dry_run:
                leased = self._reset_for_backfill(leased, request)
            outcome.cursor_before = leased.cursor
            outcome.cursor_after = leased.cursor
            self._fetch_pages(leased, request, outcome)
        finally:
            self._deps.cursors.release(leased)
        return outcome

    def _lease_duration(self) -> timedelta:
        # NOTE: the invocation cannot outlive its remaining time, so a lease of that length plus
        # a margin is never taken over while its holder runs, and a crashed holder blocks the
        # schedule only until then.
        remaining = self._deadline()
        if remaining == float("inf"):
            return self._settings.lease_duration
        return timedelta(seconds=remaining + 30)

    def _reset_for_backfill(self, leased: LeasedCursor, request: FetchRequest) -> LeasedCursor:
        logger.warning(
            "cursor reset for a backfill",
            audit=True,
            requested_by=request.requested_by or "unknown",
            cursor_key=self._key.partition_key,
            old_cursor=_as_text(leased.cursor),
            new_cursor="unset",
            backfill_from=request.backfill_from.isoformat() if request.backfill_from else None,
        )
        return self._deps.cursors.reset(leased, None)

    def _fetch_pages(self, leased: LeasedCursor, request: FetchRequest, outcome: FetchOutcome) -> None:
        budget = request.page_budget or self._settings.pages_per_invocation
        window = RequestWindow(
            page_size=self._settings.page_size,
            delay=self._settings.delay,
            initial_interval=self._settings.initial_interval,
            query=self._settings.query,
            remote_api=self._settings.remote_api,
        )
        now = self._deps.clock.now()
        if request.backfill_from is not None:
            window = RequestWindow(
                window.page_size, window.delay, now - request.backfill_from, window.query, window.remote_api
            )
        parameters = first_page_parameters(window, leased.cursor, now)
        if not request.dry_run:
            self._deps.setup.ensure(DATASET)

        slowest_page_seconds = 0.0
        check_existing = leased.took_over_expired_lease
        while True:
            started = time.monotonic()
            page = self._deps.api.fetch_page(parameters)
            outcome.pages += 1
            outcome.indicators_fetched += len(page.objects)
            outcome.backlog = page.total_count

            if not page.objects:
                outcome.stop_reason = "empty page"
                break
            documents, update_ids, errors = self._map_page(page)
            outcome.mapping_errors += errors
            page_max = page_cursor(update_ids)
            if request.dry_run:
                outcome.dry_run_documents = [document for _, document in documents]
                outcome.stop_reason = "dry run"
                break
            if not moves_forward(page_max, leased.cursor):
                # Written all the same, so that records without a usable update_id are kept as
                # error documents; repeats of earlier updates add nothing.
                result = self._deps.writer.write(self._index, documents)
                self._record_page(outcome, result, leased, page, started)
                outcome.stop_reason = "page does not move the cursor forward"
                logger.warning("stopped paging", reason=outcome.stop_reason, cursor=_as_text(leased.cursor))
                break

            if check_existing:
                documents = self._drop_existing(documents, outcome)
                check_existing = False
            result = self._deps.writer.write(self._index, documents)
            assert page_max is not None
            leased = self._deps.cursors.commit(leased, page_max, self._deps.clock.now())
            self._record_page(outcome, result, leased, page, started)
            slowest_page_seconds = max(slowest_page_seconds, time.monotonic() - started)

            if outcome.pages >= budget:
                outcome.stop_reason = "page budget reached"
                break
            if page.next_link is None:
                outcome.stop_reason = "no next page"
                break
            if self._deadline() < 2 * slowest_page_seconds + 10:
                outcome.stop_reason = "not enough time left for another page"
                break
            try:
                parameters = next_page_parameters(page.next_link, self._settings.threatstream_url)
            except ForeignNextLink as exc:
                outcome.stop_reason = "meta.next points outside the configured endpoint"
                logger.warning("stopped paging", reason=outcome.stop_reason, detail=str(exc))
                break

        logger.info(
            "run finished",
            pages=outcome.pages,
            indicators_fetched=outcome.indicators_fetched,
            indicators_created=outcome.indicators_created,
            indicators_dead_lettered=outcome.indicators_dead_lettered,
            cursor=_as_text(outcome.cursor_after),
            backlog=outcome.backlog,
            stop_reason=outcome.stop_reason,
        )

    def _map_page(self, page: Page) -> tuple[list[tuple[str, dict[str, Any]]], list[int], int]:
        """Map every object of a page at the current time; see `map_page`."""
        options = replace(self._deps.mapping_options, now=self._deps.clock.now())
        return map_page(page.objects, options)

    def _drop_existing(
        self, documents: list[tuple[str, dict[str, Any]]], outcome: FetchOutcome
    ) -> list[tuple[str, dict[str, Any]]]:
        """Leave out documents a crashed invocation already wrote, in any backing index."""
        # NOTE: `create` with a fixed id only detects a repeat within one backing index. After a
        # rollover between the crash and this run, the repeat would land in the new write index.
        present = existing_ids(self._deps.engine_client, self._index, [doc_id for doc_id, _ in documents])
        outcome.indicators_already_present += sum(1 for doc_id, _ in documents if doc_id in present)
        return [(doc_id, document) for doc_id, document in documents if doc_id not in present]

    def _record_page(
        self, outcome: FetchOutcome, result: WriteResult, leased: LeasedCursor, page: Page, started: float
    ) -> None:
        outcome.indicators_created += result.created
        outcome.indicators_already_present += result.already_present
        outcome.indicators_dead_lettered += result.dead_lettered
        outcome.cursor_after = leased.cursor
        logger.info(
            "page written",
            page=outcome.pages,
            indicators=len(page.objects),
            indicators_created=result.created,
            indicators_already_present=result.already_present,
            indicators_dead_lettered=result.dead_lettered,
            retried_items=result.retried_items,
            cursor=_as_text(leased.cursor),
            backlog=page.total_count,
            duration_ms=int((time.monotonic() - started) * 1000),
        )


def map_page(objects: list[Any], options: MappingOptions) -> tuple[list[tuple[str, dict[str, Any]]], list[int], int]:
    """Map every object of a page; return (id, document) pairs, valid update ids and the error count."""
    documents: list[tuple[str, dict[str, Any]]] = []
    update_ids: list[int] = []
    errors = 0
    for obj in objects:
        # NOTE: the mapper serialises a dict itself, and only when the document needs
        # `event.original`. Serialising every object here in advance took about a tenth of the time.
        original = None if isinstance(obj, dict) else json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
        source = obj if isinstance(obj, dict) else {}
        document = map_intelligence(source, options, original)
        if document.get("event", {}).get("kind") == "pipeline_error":
            errors += 1
            if original is not None:
                # An error document must carry what it was made of, or the record would be lost.
                document["event"].setdefault("original", original)
        documents.append((document_id(document), document))
        # The mapper writes a valid update_id as a decimal string, from a JSON number or string.
        update_id = document.get("anomali", {}).get("threatstream", {}).get("update_id")
        if isinstance(update_id, str) and update_id.isdigit() and len(update_id) <= MAX_UPDATE_ID_DIGITS:
            update_ids.append(int(update_id))
    return documents, update_ids, errors
