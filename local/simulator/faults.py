"""Faults that the simulator injects on demand, and the broken responses they produce."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from email.utils import format_datetime
from enum import StrEnum
from typing import Any


class FaultKind(StrEnum):
    """Kind of fault: the change it makes to a response, or to publishing for `LATE_VISIBILITY`."""

    RATE_LIMIT = "rate_limit"  # 429, with or without Retry-After
    SERVER_ERROR = "server_error"  # 500, 502, 503 or 504 with an HTML body
    SLOW = "slow"  # waits `delay_seconds` of real time, then responds normally
    TRUNCATED = "truncated"  # 200 whose JSON body is cut in the middle
    HTML_200 = "html_200"  # 200 with an HTML page instead of JSON
    EMPTY_WITH_NEXT = "empty_with_next"  # 200 with no objects but meta.next set
    RESET = "reset"  # the connection is reset without a response
    REPEAT_PAGE = "repeat_page"  # the previous page is served again
    NEXT_WITH_CREDENTIALS = "next_with_credentials"  # meta.next carries username and api_key
    META_MISSING = "meta_missing"  # the body has no "meta" object
    TOTAL_COUNT_STRING = "total_count_string"  # meta.total_count is a string
    LATE_VISIBILITY = "late_visibility"  # published records become visible after a delay


class RetryAfter(StrEnum):
    """Form of the Retry-After header that a `RATE_LIMIT` fault sends."""

    SECONDS = "seconds"
    HTTP_DATE = "http_date"
    NONE = "none"  # no header at all


SERVER_ERROR_STATUSES = (500, 502, 503, 504)

# Real sleeps slow down the test suite, so the simulator rejects longer delays.
MAX_DELAY_SECONDS = 5.0


@dataclass
class Fault:
    """A fault queued for the next matching request(s), or for the next published records.

    A request fault matches authenticated GET requests on the API path whose request
    number (1-based, in the order the simulator received them) is at least `at_request`,
    or any such request when `at_request` is None. It affects `count` matching requests
    and is then removed. A `LATE_VISIBILITY` fault instead affects the next `count`
    published records, which become visible `visible_after_seconds` after publication.
    """

    kind: FaultKind
    count: int = 1
    at_request: int | None = None
    status: int = 503
    retry_after: RetryAfter = RetryAfter.SECONDS
    retry_after_seconds: int = 1
    delay_seconds: float = 0.5
    visible_after_seconds: float = 30.0

    def __post_init__(self) -> None:
        self.kind = FaultKind(self.kind)
        self.retry_after = RetryAfter(self.retry_after)
        if self.count < 1:
            raise ValueError(f"fault count must be at least 1, got {self.count}")
        if self.at_request is not None and self.at_request < 1:
            raise ValueError(f"at_request is a 1-based request number, got {self.at_request}")
        if self.kind is FaultKind.SERVER_ERROR and self.status not in SERVER_ERROR_STATUSES:
            raise ValueError(f"server_error status must be one of {SERVER_ERROR_STATUSES}, got {self.status}")
        if self.retry_after_seconds < 0:
            raise ValueError(f"retry_after_seconds must not be negative, got {self.retry_after_seconds}")
        if not 0 <= self.delay_seconds <= MAX_DELAY_SECONDS:
            raise ValueError(f"delay_seconds must lie in [0, {MAX_DELAY_SECONDS}], got {self.delay_seconds}")
        if self.visible_after_seconds < 0:
            raise ValueError(f"visible_after_seconds must not be negative, got {self.visible_after_seconds}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fault:
        """Build a fault from a JSON object keyed by field name, or raise ValueError on unknown keys."""
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown fault fields {unknown}, expected some of {sorted(known)}")
        if "kind" not in data:
            raise ValueError("missing fault field 'kind'")
        return cls(**data)

    @property
    def visible_after(self) -> timedelta:
        """Delay between publication and visibility for a `LATE_VISIBILITY` fault."""
        return timedelta(seconds=self.visible_after_seconds)


class FaultQueue:
    """Thread-safe queue of pending faults, consumed in the order they were injected."""

    def __init__(self) -> None:
        self._pending: list[list[Any]] = []  # [fault, remaining count]
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> None:
        """Queue `fault` behind those already pending."""
        with self._lock:
            self._pending.append([fault, fault.count])

    def clear(self) -> None:
        """Drop every pending fault."""
        with self._lock:
            self._pending.clear()

    def take_for_request(self, request_number: int) -> Fault | None:
        """Consume one use of the first request fault that matches `request_number`.

        At most one fault fires per request, so a second matching fault waits for the next one.
        """

        def matches(fault: Fault) -> bool:
            is_request_fault = fault.kind is not FaultKind.LATE_VISIBILITY
            is_due = fault.at_request is None or request_number >= fault.at_request
            return is_request_fault and is_due

        return self._take(matches)

    def take_for_publish(self) -> Fault | None:
        """Consume one use of the first pending `LATE_VISIBILITY` fault, for one published record."""
        return self._take(lambda fault: fault.kind is FaultKind.LATE_VISIBILITY)

    def _take(self, matches: Callable[[Fault], bool]) -> Fault | None:
        with self._lock:
            for position, entry in enumerate(self._pending):
                fault, remaining = entry
                if not matches(fault):
                    continue
                if remaining <= 1:
                    del self._pending[position]
                else:
                    entry[1] = remaining - 1
                return fault
        return None


def retry_after_header(fault: Fault, now: datetime) -> str | None:
    """Return the Retry-After value of a `RATE_LIMIT` fault, or None when it sends no header."""
    if fault.retry_after is RetryAfter.SECONDS:
        return str(fault.retry_after_seconds)
    if fault.retry_after is RetryAfter.HTTP_DATE:
        return format_datetime(now + timedelta(seconds=fault.retry_after_seconds), usegmt=True)
    return None


_STATUS_TITLES = {
    500: "500 Internal Server Error",
    502: "502 Bad Gateway",
    503: "503 Service Unavailable",
    504: "504 Gateway Time-out",
}


def server_error_page(status: int) -> bytes:
    """Return the HTML page that a proxy in front of the API sends with a 5xx status."""
    title = _STATUS_TITLES[status]
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n"
        f"<body>\r\n<center><h1>{title}</h1></center>\r\n<hr><center>proxy</center>\r\n"
        "</body>\r\n</html>\r\n"
    ).encode()


def html_200_page() -> bytes:
    """Return an HTML sign-in page, as a portal or captive proxy serves with status 200."""
    return (
        b'<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8">'
        b"<title>ThreatStream - Sign in</title></head>\n<body>\n"
        b'<form method="post" action="/login/">\n'
        b'<input name="username"><input name="password" type="password">\n'
        b'<button type="submit">Sign in</button>\n</form>\n</body>\n</html>\n'
    )


def truncate_body(body: bytes) -> bytes:
    """Cut a JSON body in the middle, so that it no longer parses."""
    return body[: max(1, len(body) // 2)]
