"""Clocks: the system clock in Lambda, a manual one that local runs share with the simulator."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Source of the current time and of waiting."""

    def now(self) -> datetime:
        """Return the current time, timezone-aware in UTC."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait for the given number of seconds."""
        ...


class SystemClock:
    """The wall clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class ManualClock:
    """A clock that moves only when advanced. Its `sleep` advances it instead of waiting.

    Local runs and tests hand the same instance to the simulator and to the functions, so
    delays of minutes pass in no real time. It is safe to share between threads.
    """

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start time")
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        self.advance(timedelta(seconds=max(seconds, 0)))

    def advance(self, delta: timedelta) -> datetime:
        """Move the clock forward by `delta` and return the new time."""
        if delta < timedelta(0):
            raise ValueError("a clock never moves backwards")
        with self._lock:
            self._now += delta
            return self._now


_current: Clock = SystemClock()


def current() -> Clock:
    """Return the process-wide clock the functions read."""
    return _current


def use(clock: Clock) -> None:
    """Make `clock` the process-wide clock (local runs and tests only)."""
    global _current  # noqa: PLW0603
    _current = clock
