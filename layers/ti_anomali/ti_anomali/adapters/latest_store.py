"""Adapter for the latest index: versioned index and alias, source reads, upserts, sweeps.

Besides the latest index itself it keeps a hidden tombstone index: for every indicator that left
the latest index (retired, expired or held back), the `update_id` it left at. An update is applied
only when its `update_id` is above both the latest document's and the tombstone's, so an older
update read late can never bring an indicator back. Tombstones are kept a little longer than the
source data streams keep their documents, which bounds how late an old update can still be read.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger
from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConnectionError as EngineConnectionError
from opensearchpy.exceptions import NotFoundError, RequestError, TransportError

from ti_anomali.clock import Clock
from ti_anomali.ecs.common import bounded_id
from ti_anomali.engine import templates
from ti_anomali.latest_rules import LatestDataset
from ti_anomali.retry import RETRYABLE_STATUSES, Backoff, Deadline, fits_before_deadline

logger = Logger(service="ti-anomali", child=True)
ALREADY_EXISTS_ERROR = "resource_already_exists_exception"
SOURCE_SORT = [
    {"event.ingested": {"order": "asc"}},
    {"data_stream.namespace": {"order": "asc", "missing": "_last"}},
    {"anomali.threatstream.id": {"order": "asc", "missing": "_last"}},
    {"anomali.threatstream.update_id": {"order": "asc", "missing": "_last"}},
]
COPY_POLL_SECONDS = 1.0
COPY_RESERVE_SECONDS = 30.0
LENIENT = {"ignore_unavailable": "true", "allow_no_indices": "true"}
PURGE_BATCH_DOCUMENTS = 50_000


class LatestStoreError(Exception):
    """A request to the latest index failed and was not worth retrying, or ran out of time."""


@dataclass(frozen=True)
class Removal:
    """An indicator leaving the latest index at `update_id`, and why."""

    indicator_id: str
    update_id: int
    reason: str


@dataclass
class ApplyResult:
    """Outcome counts of one batch written to the latest index."""

    upserted: int = 0
    removed: int = 0
    rejected: int = 0


@dataclass(frozen=True)
class IndexSetup:
    """Steps `ensure_index` took; `started_empty` means the index was created with nothing to copy."""

    steps: list[str]
    started_empty: bool


def latest_document_id(dataset: LatestDataset, indicator_id: str) -> str:
    """Return the `_id` of an indicator in the latest and tombstone indices."""
    return bounded_id(f"{dataset.event_dataset}:{indicator_id}")


class LatestStore:
    """Reads source documents and maintains the latest index of one dataset."""

    def __init__(
        self,
        client: OpenSearch,
        dataset: LatestDataset,
        engine_kind: str,
        clock: Clock,
        deadline: Deadline,
        backoff: Backoff | None = None,
        version: int = templates.LATEST_VERSION,
    ) -> None:
        self._client = client
        self._dataset = dataset
        self._engine_kind = engine_kind
        self._clock = clock
        self._deadline = deadline
        self._backoff = backoff or Backoff()
        self.alias = templates.latest_alias(dataset.name)
        self.index = templates.latest_index(dataset.name, version)
        self._version = version

    # ----- the versioned index and its alias

    def ensure_index(self, requested_by: str = "MaintainLatest") -> IndexSetup:
        """Make the alias point at this version's index, migrating older versions; return what was done.

        Every step can be repeated, so a run killed half-way is finished by the next one:
        1. create this version's index, hidden from wildcard patterns while it fills;
        2. copy the documents of every older index behind the alias into it;
        3. in one atomic alias update, point the alias at it and delete the older indices;
        4. unhide it.
        """
        steps: list[str] = []
        created = False
        if not self._client.indices.exists(index=self.index):
            self._create_index(hidden=True)
            created = True
            steps.append(f"created {self.index}")
        aliased = self._aliased_indices()
        older = sorted(name for name in aliased if name != self.index)
        leftovers = sorted(name for name in self._versioned_indices() if name != self.index and name not in aliased)
        for name in older:
            copied = self._copy(name)
            steps.append(f"copied {copied} documents from {name}")
        if older or self.index not in aliased or leftovers:
            actions: list[dict[str, Any]] = [{"add": {"index": self.index, "alias": self.alias}}]
            actions += [{"remove_index": {"index": name}} for name in older + leftovers]
            self._client.indices.update_aliases(body={"actions": actions})
            steps.append(f"alias {self.alias} -> {self.index}; removed {', '.join(older + leftovers) or 'nothing'}")
        if self._is_hidden():
            self._client.indices.put_settings(index=self.index, body={"index.hidden": False})
            steps.append(f"unhid {self.index}")
        self._ensure_tombstone_index()
        for step in steps:
            logger.warning(
                "latest index migration step",
                audit=True,
                requested_by=requested_by,
                alias=self.alias,
                old_indices=older,
                new_index=self.index,
                step=step,
            )
        return IndexSetup(steps=steps, started_empty=created and not older)

    def _create_index(self, *, hidden: bool) -> None:
        try:
            self._client.indices.create(
                index=self.index,
                body=templates.latest_index_body(self._dataset.name, self._engine_kind, hidden=hidden),
            )
        except RequestError as exc:
            if exc.error != ALREADY_EXISTS_ERROR:
                raise

    def _aliased_indices(self) -> set[str]:
        try:
            return set(self._client.indices.get_alias(name=self.alias))
        except NotFoundError:
            return set()

    def _versioned_indices(self) -> set[str]:
        try:
            found = self._client.indices.get(index=f"{self.alias}-*", params={"expand_wildcards": "all"})
        except NotFoundError:
            return set()
        return {name for name in found if name.removeprefix(self.alias + "-").isdigit()}

    def _is_hidden(self) -> bool:
        settings = self._client.indices.get_settings(
            index=self.index, name="index.hidden", params={"expand_wildcards": "all"}
        )
        value = settings.get(self.index, {}).get("settings", {}).get("index", {}).get("hidden", "false")
        return str(value).lower() == "true"

    def _copy(self, source: str) -> int:
        """Copy every document of `source` into this version's index and return how many were created.

        NOTE: the copy runs as a task that is polled. Waiting for it in the request fails on large
        indices: OpenSearch 2.19 responds with one task-resource-usage header per batch, and Python's
        http.client rejects a response with more than 100 headers (opensearch-project/OpenSearch#18245).
        """
        started = self._client.reindex(
            body={
                "conflicts": "proceed",
                "source": {"index": source},
                "dest": {"index": self.index, "op_type": "create"},
            },
            params={"wait_for_completion": "false", "refresh": "true"},
        )
        task_id = started["task"]
        while True:
            status = self._client.tasks.get(task_id=task_id)
            if status.get("completed"):
                response = status.get("response", {})
                if response.get("failures"):
                    raise LatestStoreError(f"copying {source} into {self.index} failed for some documents")
                return int(response.get("created", 0))
            if self._deadline() < COPY_RESERVE_SECONDS:
                # The next run starts the copy again; documents already copied are skipped.
                raise LatestStoreError(f"copying {source} into {self.index} did not finish in this invocation")
            # Real time, not the clock: the engine does the work while we wait.
            time.sleep(COPY_POLL_SECONDS)

    def _ensure_tombstone_index(self) -> None:
        if self._client.indices.exists(index=templates.TOMBSTONE_INDEX, params={"expand_wildcards": "all"}):
            return
        try:
            self._client.indices.create(index=templates.TOMBSTONE_INDEX, body=templates.tombstone_index_body())
        except RequestError as exc:
            if exc.error != ALREADY_EXISTS_ERROR:
                raise

    # ----- reading

    def read_source(self, after_ms: int, up_to_ms: int, batch_size: int) -> Iterator[list[dict[str, Any]]]:
        """Yield batches of source documents with `after_ms < event.ingested <= up_to_ms`, oldest first.

        Paging uses `search_after` without a point in time: the range is closed above at a time the
        sync delay has already passed, so no document joins it while it is read.
        """
        query = {
            "bool": {
                "filter": [
                    {"range": {"event.ingested": {"gt": after_ms, "lte": up_to_ms, "format": "epoch_millis"}}},
                ]
            }
        }
        # NOTE: a refresh first, because the checkpoint moves past everything in the range: a
        # document written before `up_to_ms` but not yet searchable (a raised refresh_interval,
        # or a refresh that caught a bulk request half-way) would otherwise be skipped for good.
        self._client.indices.refresh(index=self._dataset.source_pattern, params=LENIENT)
        search_after: list[Any] | None = None
        while True:
            body: dict[str, Any] = {"query": query, "sort": SOURCE_SORT, "size": batch_size}
            if search_after is not None:
                body["search_after"] = search_after
            response = self._client.search(index=self._dataset.source_pattern, body=body, params=LENIENT)
            hits = response["hits"]["hits"]
            if not hits:
                return
            yield [hit["_source"] | {"_ingested_ms": hit["sort"][0]} for hit in hits]
            if len(hits) < batch_size:
                return
            search_after = hits[-1]["sort"]

    def current_update_ids(self, indicator_ids: Sequence[str]) -> dict[str, int]:
        """Return, per indicator, the highest update_id the latest or tombstone index has seen."""
        if not indicator_ids:
            return {}
        ids = [latest_document_id(self._dataset, indicator_id) for indicator_id in indicator_ids]
        latest_source = ["anomali.threatstream.update_id"]
        # One request reads both indices: the latest documents first, then the tombstones.
        lookups = [{"_index": self.index, "_id": doc_id, "_source": latest_source} for doc_id in ids]
        lookups += [{"_index": templates.TOMBSTONE_INDEX, "_id": doc_id, "_source": ["update_id"]} for doc_id in ids]
        docs = self._client.mget(body={"docs": lookups})["docs"]
        failed = next((doc for doc in docs if "error" in doc), None)
        if failed is not None:
            error = failed["error"]
            reason = error.get("type", "unknown") if isinstance(error, dict) else str(error)
            raise LatestStoreError(f"reading update ids from {failed.get('_index')} failed: {reason}")
        seen: dict[str, int] = {}
        for doc in docs[: len(ids)]:
            if doc.get("found"):
                update_id = doc["_source"].get("anomali", {}).get("threatstream", {}).get("update_id")
                seen[doc["_id"]] = int(update_id)
        for doc in docs[len(ids) :]:
            if doc.get("found"):
                seen[doc["_id"]] = max(seen.get(doc["_id"], -1), int(doc["_source"]["update_id"]))
        prefix = len(self._dataset.event_dataset) + 1
        return {doc_id[prefix:]: update_id for doc_id, update_id in seen.items()}

    # ----- writing

    def apply(self, upserts: Sequence[tuple[str, dict[str, Any]]], removals: Sequence[Removal]) -> ApplyResult:
        """Write upserts and removals in bulk; a removal deletes the document and leaves a tombstone."""
        now = self._clock.now().isoformat().replace("+00:00", "Z")
        lines: list[str] = []
        for indicator_id, document in upserts:
            doc_id = latest_document_id(self._dataset, indicator_id)
            lines.append(json.dumps({"index": {"_index": self.index, "_id": doc_id}}))
            lines.append(json.dumps(document, separators=(",", ":"), ensure_ascii=False))
        for removal in removals:
            doc_id = latest_document_id(self._dataset, removal.indicator_id)
            lines.append(json.dumps({"delete": {"_index": self.index, "_id": doc_id}}))
            lines.append(json.dumps({"index": {"_index": templates.TOMBSTONE_INDEX, "_id": doc_id}}))
            lines.append(json.dumps(self._tombstone(removal, now)))
        result = ApplyResult()
        if not lines:
            return result
        self._bulk(lines, result)
        result.upserted = len(upserts) - result.rejected
        result.removed = len(removals)
        return result

    def _bulk(self, lines: list[str], result: ApplyResult) -> list[dict[str, Any]]:
        """Send bulk actions, resending the whole request on retryable failures; all actions are idempotent.

        Returns the outcome of each action, in order.
        """
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._client.bulk(body="\n".join(lines) + "\n")
            except (EngineConnectionError, TransportError) as exc:
                status = getattr(exc, "status_code", None)
                if (
                    isinstance(exc, TransportError)
                    and not isinstance(exc, EngineConnectionError)
                    and status not in RETRYABLE_STATUSES
                ):
                    raise LatestStoreError(f"bulk write to {self.index} returned {status}") from exc
                self._wait(attempt)
                continue
            statuses = [next(iter(item.values())) for item in response["items"]]
            if any(outcome.get("status") in RETRYABLE_STATUSES for outcome in statuses):
                self._wait(attempt)
                continue
            for outcome in statuses:
                status = int(outcome.get("status", 0))
                if status >= 400 and status != 404:
                    result.rejected += 1
                    logger.warning(
                        "latest document rejected",
                        reason=str(outcome.get("error", {}).get("type", "unknown")),
                        index=outcome.get("_index"),
                        document_id=outcome.get("_id"),
                        status=status,
                    )
            return statuses

    def _wait(self, attempt: int) -> None:
        wait = self._backoff.delay(attempt)
        if attempt >= self._backoff.max_attempts or not fits_before_deadline(wait + 30, self._deadline, 10):
            raise LatestStoreError(f"bulk write to {self.index} gave up after {attempt} attempts")
        self._clock.sleep(wait)

    def sweep_expired(self, now: datetime, grace: timedelta, batch_size: int = 5000) -> int:
        """Delete documents whose expiry lies more than `grace` before `now`; return how many.

        Their ids and update_ids are read first. Then one bulk request per batch writes their
        tombstones and deletes them by id, and the index is refreshed. Only this function writes
        the latest index, under its lease, so no document changes between the read and the delete.
        """
        # NOTE: a `_delete_by_query` would delete them in one request, but OpenSearch 2.x responds
        # to it with one TASK_RESOURCE_USAGE header per scroll batch, and Python's http.client
        # rejects a response with more than 100 headers: from about 100,000 documents on, the
        # request failed (https://github.com/opensearch-project/OpenSearch/issues/18245).
        query = {"range": {self._dataset.expiry_field: {"lt": (now - grace).isoformat()}}}
        self._client.indices.refresh(index=self.index)
        removals: list[Removal] = []
        search_after: list[Any] | None = None
        while True:
            body: dict[str, Any] = {
                "query": query,
                "size": batch_size,
                "sort": [{"anomali.threatstream.id": "asc"}],
                "_source": ["anomali.threatstream.id", "anomali.threatstream.update_id"],
            }
            if search_after is not None:
                body["search_after"] = search_after
            hits = self._client.search(index=self.index, body=body)["hits"]["hits"]
            for hit in hits:
                threatstream = hit["_source"]["anomali"]["threatstream"]
                removals.append(Removal(threatstream["id"], int(threatstream["update_id"]), "expired"))
            if len(hits) < batch_size:
                break
            search_after = hits[-1]["sort"]
        if not removals:
            return 0
        deleted = 0
        for start in range(0, len(removals), batch_size):
            deleted += self._remove(removals[start : start + batch_size])
        self._client.indices.refresh(index=self.index)
        return deleted

    def _remove(self, removals: Sequence[Removal]) -> int:
        """Write the tombstones of `removals`, then delete their documents; return how many were deleted."""
        now = self._clock.now().isoformat().replace("+00:00", "Z")
        lines: list[str] = []
        for removal in removals:
            doc_id = latest_document_id(self._dataset, removal.indicator_id)
            lines.append(json.dumps({"index": {"_index": templates.TOMBSTONE_INDEX, "_id": doc_id}}))
            lines.append(json.dumps(self._tombstone(removal, now)))
            lines.append(json.dumps({"delete": {"_index": self.index, "_id": doc_id}}))
        outcomes = self._bulk(lines, ApplyResult())
        return sum(1 for outcome in outcomes if outcome.get("result") == "deleted")

    def _tombstone(self, removal: Removal, now: str) -> dict[str, Any]:
        return {
            "dataset": self._dataset.event_dataset,
            "indicator_id": removal.indicator_id,
            "update_id": str(removal.update_id),
            "reason": removal.reason,
            "removed_at": now,
        }

    def purge_tombstones(self, older_than: datetime) -> int:
        """Delete tombstones older than `older_than`; return how many.

        Each `_delete_by_query` stops after PURGE_BATCH_DOCUMENTS, because OpenSearch 2.x responds
        with one header per scroll batch of 1000 and Python's http.client rejects more than 100
        (see `sweep_expired`). A request that deletes fewer ends the purge.
        """
        query = {
            "bool": {
                "filter": [
                    {"term": {"dataset": self._dataset.event_dataset}},
                    {"range": {"removed_at": {"lt": older_than.isoformat()}}},
                ]
            }
        }
        purged = 0
        while True:
            response = self._client.delete_by_query(
                index=templates.TOMBSTONE_INDEX,
                body={"query": query},
                params={"conflicts": "proceed", "expand_wildcards": "all", "max_docs": PURGE_BATCH_DOCUMENTS},
            )
            deleted = int(response.get("deleted", 0))
            purged += deleted
            if deleted < PURGE_BATCH_DOCUMENTS:
                return purged

    def refresh(self) -> None:
        """Make every write visible to searches."""
        self._client.indices.refresh(
            index=f"{self.index},{templates.TOMBSTONE_INDEX}", params={"expand_wildcards": "all"}
        )
