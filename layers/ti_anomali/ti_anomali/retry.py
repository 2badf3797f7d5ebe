"""Retry decisions shared by the adapters: which failures to repeat and how long to wait.

Only what can succeed a second time is retried: connection errors, timeouts, 429 and
500/502/503/504. Waits grow exponentially with full jitter, honour `Retry-After` in both of its
forms (seconds or an HTTP date), and never run past the time the invocation has left.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})

# A deadline returns the seconds the invocation has left; Lambda hands out the remaining time in
# milliseconds, the handler converts it.
Deadline = Callable[[], float]


def no_deadline() -> float:
    """Return a deadline that never runs out (command line and tests)."""
    return float("inf")


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Return the wait a `Retry-After` header requests, in seconds, or None when absent or invalid.

    The header is either a number of seconds or an HTTP date (RFC 9110, section 10.2.3).
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - now).total_seconds(), 0.0)


@dataclass
class Backoff:
    """Exponential backoff with full jitter and a cap."""

    base_seconds: float = 0.5
    cap_seconds: float = 20.0
    max_attempts: int = 6
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Return the wait before retry number `attempt` (1 for the first retry)."""
        ceiling = min(self.cap_seconds, self.base_seconds * 2 ** (attempt - 1))
        jittered = self.rng.uniform(0, ceiling)
        if retry_after is not None:
            return max(retry_after, jittered)
        return jittered


def fits_before_deadline(wait_seconds: float, deadline: Deadline, reserve_seconds: float) -> bool:
    """Return True when waiting `wait_seconds` still leaves `reserve_seconds` of the invocation."""
    return wait_seconds + reserve_seconds < deadline()


class InvocationDeadline:
    """The remaining time of the current Lambda invocation, as a `Deadline`.

    Adapters are built once per container, but each invocation has its own end: the handler
    calls `start` with the new context before any work.
    """

    def __init__(self) -> None:
        self._context: Any = None

    def start(self, context: Any) -> None:
        """Follow the remaining time of `context`; a context without it means no deadline."""
        self._context = context if hasattr(context, "get_remaining_time_in_millis") else None

    def __call__(self) -> float:
        if self._context is None:
            return float("inf")
        return float(self._context.get_remaining_time_in_millis()) / 1000
