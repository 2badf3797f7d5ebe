"""Cursors and leases in DynamoDB: one item per (purpose, dataset, namespace, query).

Every write is conditional, so two invocations can never both hold the lease, and the cursor
only moves from the value the writer read to a larger one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

CONDITION_FAILED = "ConditionalCheckFailedException"


class CursorStoreError(Exception):
    """A read or write of the cursor item failed."""


class CursorConflict(CursorStoreError):
    """The item changed under us: the lease was lost or the cursor is not the value we read."""


@dataclass(frozen=True)
class CursorKey:
    """Identifies one cursor item."""

    dataset: str
    namespace: str
    query: str | None
    purpose: str = "fetch"

    @property
    def partition_key(self) -> str:
        # NOTE: the query is hashed so that the key stays short and carries no user text;
        # IAM policies grant the functions only items whose key starts with their prefix.
        query_hash = hashlib.sha256((self.query or "").encode()).hexdigest()[:16]
        return f"{self.purpose}#{self.dataset}#{self.namespace}#{query_hash}"


@dataclass(frozen=True)
class LeasedCursor:
    """A cursor read under a lease this invocation holds."""

    key: CursorKey
    owner: str
    cursor: int | None
    lease_expires_at: datetime
    took_over_expired_lease: bool = False


def _epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class CursorStore:
    """Reads and writes cursor items; the boto3 DynamoDB client comes from the caller."""

    def __init__(self, dynamodb_client: Any, table_name: str) -> None:
        self._client = dynamodb_client
        self._table = table_name

    def acquire(self, key: CursorKey, owner: str, now: datetime, duration: timedelta) -> LeasedCursor | None:
        """Take the lease and return the cursor, or None when another invocation holds the lease.

        The lease is granted when the item has none, when it has expired, or when `owner`
        already holds it (a retried invocation keeps its own lease).
        """
        expires_at = now + duration
        no_lease = "attribute_not_exists(lease_owner)"
        lease_expired = "lease_expires_at < :now"
        lease_is_ours = "lease_owner = :owner"
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": key.partition_key}},
                UpdateExpression="SET lease_owner = :owner, lease_expires_at = :expires",
                ConditionExpression=f"{no_lease} OR {lease_expired} OR {lease_is_ours}",
                ExpressionAttributeValues={
                    ":owner": {"S": owner},
                    ":now": {"N": str(_epoch_ms(now))},
                    ":expires": {"N": str(_epoch_ms(expires_at))},
                },
                ReturnValues="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == CONDITION_FAILED:
                return None
            raise CursorStoreError(f"taking the lease on {key.partition_key} failed") from exc
        # ALL_OLD returns the item as it was: the cursor is unchanged by this update, and a
        # previous owner shows that an invocation died holding the lease.
        item = response.get("Attributes", {})
        cursor = int(item["cursor"]["N"]) if "cursor" in item else None
        previous_owner = item.get("lease_owner", {}).get("S")
        return LeasedCursor(
            key=key,
            owner=owner,
            cursor=cursor,
            lease_expires_at=expires_at,
            took_over_expired_lease=previous_owner is not None and previous_owner != owner,
        )

    def commit(self, leased: LeasedCursor, new_cursor: int, now: datetime) -> LeasedCursor:
        """Move the cursor to `new_cursor`, only from the value read and only while the lease is ours.

        Raises `CursorConflict` when the lease was lost or the stored cursor changed, and
        `ValueError` when `new_cursor` would not move it forward.
        """
        if leased.cursor is not None and new_cursor <= leased.cursor:
            raise ValueError(f"cursor may only move forward: {leased.cursor} -> {new_cursor}")
        lease_is_ours = "lease_owner = :owner"
        cursor_unchanged = "attribute_not_exists(#cursor)" if leased.cursor is None else "#cursor = :old"
        values = {
            ":owner": {"S": leased.owner},
            ":new": {"N": str(new_cursor)},
            ":at": {"N": str(_epoch_ms(now))},
        }
        if leased.cursor is not None:
            values[":old"] = {"N": str(leased.cursor)}
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": leased.key.partition_key}},
                UpdateExpression="SET #cursor = :new, cursor_committed_at = :at",
                ConditionExpression=f"{lease_is_ours} AND {cursor_unchanged}",
                ExpressionAttributeNames={"#cursor": "cursor"},
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == CONDITION_FAILED:
                raise CursorConflict(
                    f"cursor {leased.key.partition_key} changed or its lease was lost; not moved to {new_cursor}"
                ) from exc
            raise CursorStoreError(f"committing cursor {leased.key.partition_key} failed") from exc
        return replace(leased, cursor=new_cursor)

    def release(self, leased: LeasedCursor) -> None:
        """Give the lease back; a lease already taken over by someone else is left alone."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": leased.key.partition_key}},
                UpdateExpression="REMOVE lease_owner, lease_expires_at",
                ConditionExpression="lease_owner = :owner",
                ExpressionAttributeValues={":owner": {"S": leased.owner}},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != CONDITION_FAILED:
                raise CursorStoreError(f"releasing the lease on {leased.key.partition_key} failed") from exc

    def reset(self, leased: LeasedCursor, new_cursor: int | None) -> LeasedCursor:
        """Overwrite the cursor under our lease, backwards included (the explicit backfill reset)."""
        expression = "REMOVE #cursor" if new_cursor is None else "SET #cursor = :new"
        values: dict[str, dict[str, str]] = {":owner": {"S": leased.owner}}
        if new_cursor is not None:
            values[":new"] = {"N": str(new_cursor)}
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": leased.key.partition_key}},
                UpdateExpression=expression,
                ConditionExpression="lease_owner = :owner",
                ExpressionAttributeNames={"#cursor": "cursor"},
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == CONDITION_FAILED:
                raise CursorConflict(f"lease on {leased.key.partition_key} was lost before the reset") from exc
            raise CursorStoreError(f"resetting cursor {leased.key.partition_key} failed") from exc
        return replace(leased, cursor=new_cursor)

    def read(self, key: CursorKey) -> int | None:
        """Return the committed cursor without taking the lease (status and tests)."""
        response = self._client.get_item(
            TableName=self._table, Key={"pk": {"S": key.partition_key}}, ConsistentRead=True
        )
        item = response.get("Item", {})
        return int(item["cursor"]["N"]) if "cursor" in item else None
