"""MaintainLatest: reflect new source documents into the latest index, then sweep expired ones.

For each dataset a run takes the lease on the dataset's checkpoint and makes sure the alias points
at the current index version, migrating if needed. It reads the source documents ingested after the
checkpoint and before `now - sync delay`, and keeps the newest update of each indicator. That
update is applied only if it is newer than what the latest and tombstone indices have seen. Then
the checkpoint moves and expired documents are swept. Repeating a run, or any part of it, changes
nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from aws_lambda_powertools import Logger

from ti_anomali.adapters.cursor_store import CursorKey, CursorStore, LeasedCursor
from ti_anomali.adapters.latest_store import LatestStore, Removal
from ti_anomali.clock import Clock
from ti_anomali.latest_rules import (
    DATASETS,
    EXPIRY_GRACE,
    Guardrails,
    LatestDataset,
    Verdict,
    indicator_key,
    judge,
    newest_per_indicator,
)
from ti_anomali.retry import Deadline
from ti_anomali.settings import LatestSettings

logger = Logger(service="ti-anomali", child=True)
TOMBSTONE_MARGIN = timedelta(days=2)


@dataclass
class DatasetOutcome:
    """Figures of one run for one dataset's latest index."""

    dataset: str
    status: str = "done"
    source_documents: int = 0
    upserted: int = 0
    retired: int = 0
    expired: int = 0
    held_back: int = 0
    stale: int = 0
    unkeyed: int = 0
    rejected: int = 0
    checkpoint_ms: int | None = None
    lag_seconds: float | None = None
    catch_up_gap: bool = False
    migration_steps: list[str] = field(default_factory=list)


@dataclass
class LatestDependencies:
    """The adapters a run works with, built once per container."""

    settings: LatestSettings
    engine_client: Any
    cursors: CursorStore
    clock: Clock


class LatestJob:
    """Runs one invocation of MaintainLatest."""

    def __init__(self, deps: LatestDependencies, deadline: Deadline, owner: str) -> None:
        self._deps = deps
        self._settings = deps.settings
        self._deadline = deadline
        self._owner = owner
        self._guardrails = Guardrails.parse(
            self._settings.allowlist_values, self._settings.allowlist_networks, self._settings.blocked_tlp
        )

    def run(self) -> list[DatasetOutcome]:
        """Maintain every configured dataset in turn."""
        return [self._run_dataset(DATASETS[name]) for name in self._settings.datasets]

    def _store(self, dataset: LatestDataset) -> LatestStore:
        return LatestStore(
            self._deps.engine_client, dataset, self._settings.engine.kind, self._deps.clock, self._deadline
        )

    def _run_dataset(self, dataset: LatestDataset) -> DatasetOutcome:
        outcome = DatasetOutcome(dataset.name)
        key = CursorKey(dataset.name, "all", None, purpose="latest")
        leased = self._deps.cursors.acquire(key, self._owner, self._deps.clock.now(), self._lease_duration())
        if leased is None:
            logger.info("lease held by another invocation; nothing to do", dataset=dataset.name)
            outcome.status = "lease_busy"
            return outcome
        try:
            store = self._store(dataset)
            setup = store.ensure_index()
            outcome.migration_steps = setup.steps
            if setup.started_empty and leased.cursor is not None:
                leased = self._rebuild_from_source(dataset, leased)
            self._reflect(dataset, store, leased, outcome)
            now = self._deps.clock.now()
            outcome.expired += store.sweep_expired(now, EXPIRY_GRACE)
            if outcome.checkpoint_ms is not None:
                outcome.lag_seconds = now.timestamp() - outcome.checkpoint_ms / 1000
            store.purge_tombstones(now - self._settings.source_retention - TOMBSTONE_MARGIN)
        finally:
            self._deps.cursors.release(leased)
        logger.info("latest maintained", **{k: v for k, v in outcome.__dict__.items() if k != "migration_steps"})
        return outcome

    def _rebuild_from_source(self, dataset: LatestDataset, leased: LeasedCursor) -> LeasedCursor:
        """Read the whole source again when the latest index was lost (deleted by hand, for example)."""
        logger.warning(
            "latest index was missing; rebuilding it from the source",
            audit=True,
            reason="the index behind the alias did not exist although a checkpoint did",
            requested_by="MaintainLatest",
            dataset=dataset.name,
            old_checkpoint_ms=leased.cursor,
            new_checkpoint_ms="unset",
        )
        return self._deps.cursors.reset(leased, None)

    def _lease_duration(self) -> timedelta:
        remaining = self._deadline()
        if remaining == float("inf"):
            return self._settings.lease_duration
        return timedelta(seconds=remaining + 30)

    def _reflect(
        self, dataset: LatestDataset, store: LatestStore, leased: LeasedCursor, outcome: DatasetOutcome
    ) -> None:
        now = self._deps.clock.now()
        up_to_ms = int((now - self._settings.sync_delay).timestamp() * 1000)
        checkpoint = leased.cursor or 0
        oldest_kept_ms = int((now - self._settings.source_retention).timestamp() * 1000)
        if leased.cursor is not None and checkpoint < oldest_kept_ms:
            outcome.catch_up_gap = True
            logger.warning(
                "checkpoint is older than the source retention; rebuilding from what the source still contains",
                reason="updates ingested and deleted from the source while this function did not run are missing",
                dataset=dataset.name,
                checkpoint_ms=checkpoint,
                source_retention_days=self._settings.source_retention.days,
            )
        if up_to_ms <= checkpoint:
            outcome.checkpoint_ms = checkpoint
            return

        for batch in store.read_source(checkpoint, up_to_ms, self._settings.batch_size):
            self._apply_batch(dataset, store, batch, outcome)
            last_ms = int(batch[-1]["_ingested_ms"])
            # Documents ingested in the same millisecond as the last one may still follow, so the
            # checkpoint stops one millisecond short of it until the whole range is read.
            if last_ms - 1 > checkpoint:
                leased = self._deps.cursors.commit(leased, last_ms - 1, self._deps.clock.now())
                checkpoint = last_ms - 1
            if self._deadline() < 30:
                logger.warning(
                    "stopped before the end of the backlog",
                    reason="invocation running out of time",
                    dataset=dataset.name,
                    checkpoint_ms=checkpoint,
                )
                outcome.checkpoint_ms = checkpoint
                return
        if up_to_ms > checkpoint:
            leased = self._deps.cursors.commit(leased, up_to_ms, self._deps.clock.now())
        outcome.checkpoint_ms = up_to_ms
        store.refresh()

    def _apply_batch(
        self, dataset: LatestDataset, store: LatestStore, batch: list[dict[str, Any]], outcome: DatasetOutcome
    ) -> None:
        outcome.source_documents += len(batch)
        newest = newest_per_indicator(batch)
        outcome.unkeyed += sum(1 for document in batch if indicator_key(document) is None)
        seen = store.current_update_ids(list(newest))
        now = self._deps.clock.now()
        upserts: list[tuple[str, dict[str, Any]]] = []
        removals: list[Removal] = []
        for indicator_id, (update_id, document) in newest.items():
            if seen.get(indicator_id, -1) >= update_id:
                outcome.stale += 1
                continue
            verdict = judge(document, dataset, self._settings.live_statuses, self._guardrails, now)
            if verdict is Verdict.LIVE:
                upserts.append((indicator_id, _latest_document(document)))
                continue
            removals.append(Removal(indicator_id, update_id, verdict.value))
            if verdict is Verdict.RETIRED:
                outcome.retired += 1
            elif verdict is Verdict.EXPIRED:
                outcome.expired += 1
            else:
                outcome.held_back += 1
        result = store.apply(upserts, removals)
        outcome.upserted += result.upserted
        outcome.rejected += result.rejected


def _latest_document(document: dict[str, Any]) -> dict[str, Any]:
    """Return the source document as the latest index keeps it."""
    latest = {key: value for key, value in document.items() if key != "_ingested_ms"}
    labels = dict(latest.get("labels") or {})
    labels["is_ioc_transform_source"] = "false"
    latest["labels"] = labels
    return latest
