"""Backoff, `Retry-After` and deadlines."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from ti_anomali.retry import Backoff, InvocationDeadline, fits_before_deadline, parse_retry_after

NOW = datetime(2026, 12, 4, 12, 0, 0, tzinfo=UTC)


def test_retry_after_in_seconds() -> None:
    assert parse_retry_after("7", NOW) == 7.0


def test_retry_after_as_http_date() -> None:
    assert parse_retry_after("Fri, 04 Dec 2026 12:00:30 GMT", NOW) == 30.0


def test_retry_after_date_in_past_is_zero() -> None:
    assert parse_retry_after("Fri, 04 Dec 2026 11:00:00 GMT", NOW) == 0.0


def test_retry_after_absent_or_garbage_is_none() -> None:
    assert parse_retry_after(None, NOW) is None
    assert parse_retry_after("", NOW) is None
    assert parse_retry_after("soon", NOW) is None


def test_backoff_grows_and_is_capped() -> None:
    backoff = Backoff(base_seconds=1, cap_seconds=4, rng=random.Random(1))

    delays = [backoff.delay(attempt) for attempt in range(1, 50)]

    assert all(0 <= delay <= 4 for delay in delays)
    assert max(delays[:1]) <= 1
    assert max(delays[10:]) > 2


def test_backoff_honours_longer_retry_after() -> None:
    backoff = Backoff(base_seconds=1, cap_seconds=4, rng=random.Random(1))

    assert backoff.delay(1, retry_after=30) == 30


def test_wait_past_deadline_does_not_fit() -> None:
    assert fits_before_deadline(5, lambda: 20.0, reserve_seconds=10)
    assert not fits_before_deadline(11, lambda: 20.0, reserve_seconds=10)


class _Context:
    def get_remaining_time_in_millis(self) -> int:
        return 2500


def test_invocation_deadline_follows_context() -> None:
    deadline = InvocationDeadline()
    assert deadline() == float("inf")

    deadline.start(_Context())

    assert deadline() == 2.5
