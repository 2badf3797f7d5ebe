"""Cursor and lease semantics, against moto's DynamoDB."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ti_anomali.adapters.cursor_store import CursorConflict, CursorKey, CursorStore

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
KEY = CursorKey("intelligence", "default", None)
LEASE = timedelta(minutes=5)


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> Iterator[CursorStore]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client: Any = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="cursor",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield CursorStore(client, "cursor")


def test_first_lease_has_no_cursor(store: CursorStore) -> None:
    leased = store.acquire(KEY, "a", NOW, LEASE)

    assert leased is not None
    assert leased.cursor is None
    assert not leased.took_over_expired_lease


def test_held_lease_refused_to_others(store: CursorStore) -> None:
    store.acquire(KEY, "a", NOW, LEASE)

    assert store.acquire(KEY, "b", NOW + timedelta(minutes=1), LEASE) is None


def test_expired_lease_taken_over(store: CursorStore) -> None:
    store.acquire(KEY, "a", NOW, LEASE)

    leased = store.acquire(KEY, "b", NOW + LEASE + timedelta(seconds=1), LEASE)

    assert leased is not None
    assert leased.took_over_expired_lease


def test_released_lease_free_for_next(store: CursorStore) -> None:
    leased = store.acquire(KEY, "a", NOW, LEASE)
    assert leased is not None
    store.release(leased)

    following = store.acquire(KEY, "b", NOW, LEASE)

    assert following is not None
    assert not following.took_over_expired_lease


def test_commit_stores_exact_big_integer(store: CursorStore) -> None:
    leased = store.acquire(KEY, "a", NOW, LEASE)
    assert leased is not None

    store.commit(leased, 2**63 + 12345, NOW)

    assert store.read(KEY) == 2**63 + 12345
    assert isinstance(store.read(KEY), int)


def test_commit_never_moves_backwards(store: CursorStore) -> None:
    leased = store.acquire(KEY, "a", NOW, LEASE)
    assert leased is not None
    leased = store.commit(leased, 100, NOW)

    with pytest.raises(ValueError, match="forward"):
        store.commit(leased, 100, NOW)
    assert store.read(KEY) == 100


def test_commit_after_lease_lost_conflicts(store: CursorStore) -> None:
    stale = store.acquire(KEY, "a", NOW, LEASE)
    assert stale is not None
    newer = store.acquire(KEY, "b", NOW + LEASE + timedelta(seconds=1), LEASE)
    assert newer is not None
    store.commit(newer, 50, NOW)

    with pytest.raises(CursorConflict):
        store.commit(stale, 40, NOW)
    assert store.read(KEY) == 50


def test_commit_conflicts_when_cursor_changed(store: CursorStore) -> None:
    leased = store.acquire(KEY, "a", NOW, LEASE)
    assert leased is not None
    store.commit(leased, 10, NOW)

    with pytest.raises(CursorConflict):
        store.commit(leased, 20, NOW)


def test_reset_moves_backwards_explicitly(store: CursorStore) -> None:
    leased = store.acquire(KEY, "a", NOW, LEASE)
    assert leased is not None
    leased = store.commit(leased, 10, NOW)

    store.reset(leased, None)

    assert store.read(KEY) is None


def test_query_gets_its_own_item() -> None:
    assert CursorKey("intelligence", "default", "itype=mal_ip").partition_key != KEY.partition_key
    assert "mal_ip" not in CursorKey("intelligence", "default", "itype=mal_ip").partition_key
