"""Adapter for the ThreatStream intelligence endpoint: one page per call, retried where safe."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from ti_anomali.clock import Clock
from ti_anomali.paging import INTELLIGENCE_PATH
from ti_anomali.retry import RETRYABLE_STATUSES, Backoff, Deadline, fits_before_deadline, parse_retry_after

NON_RETRYABLE_AUTH_STATUSES = frozenset({401, 403})
MAX_COUNT = 2**53


class ThreatStreamError(Exception):
    """A request to ThreatStream failed."""


class ThreatStreamTransportError(ThreatStreamError):
    """No response arrived: connection refused or reset, or the timeout passed."""


class ThreatStreamResponseError(ThreatStreamError):
    """ThreatStream returned an error status or a body that is not an intelligence page."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ThreatStreamAuthError(ThreatStreamResponseError):
    """ThreatStream rejected the credentials (401) or the permissions (403)."""


@dataclass(frozen=True)
class Credentials:
    """ThreatStream user name and API key; the repr never shows the key."""

    username: str
    api_key: str

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, api_key='***')"

    def header(self) -> str:
        """Return the `Authorization` header value."""
        return f"apikey {self.username}:{self.api_key}"


@dataclass(frozen=True)
class Page:
    """One page of the intelligence endpoint."""

    objects: list[dict[str, Any]]
    next_link: str | None
    total_count: int | None
    attempts: int


class ThreatStreamClient:
    """Fetches intelligence pages; the session, clock and deadline come from the caller."""

    def __init__(
        self,
        base_url: str,
        credentials: Credentials,
        session: requests.Session,
        *,
        timeout_seconds: float,
        verify: bool | str,
        clock: Clock,
        deadline: Deadline,
        backoff: Backoff | None = None,
        reserve_seconds: float = 5.0,
        reload_credentials: Callable[[], Credentials] | None = None,
    ) -> None:
        self._endpoint = base_url.rstrip("/") + INTELLIGENCE_PATH
        self._credentials = credentials
        self._session = session
        self._timeout = timeout_seconds
        self._verify = verify
        self._clock = clock
        self._deadline = deadline
        self._backoff = backoff or Backoff()
        self._reserve = reserve_seconds
        self._reload_credentials = reload_credentials

    def fetch_page(self, parameters: dict[str, str]) -> Page:
        """Fetch one page, retrying connection errors, timeouts, 429 and 5xx within the deadline.

        A 401 first re-reads the credentials once (the key may have been rotated), then raises
        `ThreatStreamAuthError`. Other error statuses raise `ThreatStreamResponseError` at once.
        """
        attempt = 0
        credentials_reloaded = False
        while True:
            attempt += 1
            try:
                return self._fetch_once(parameters, attempt)
            except ThreatStreamAuthError as exc:
                if exc.status == 401 and self._reload_credentials and not credentials_reloaded:
                    self._credentials = self._reload_credentials()
                    credentials_reloaded = True
                    continue
                raise
            except _RetryableFailure as failure:
                if attempt >= self._backoff.max_attempts:
                    raise failure.error from failure.error.__cause__
                wait = self._backoff.delay(attempt, failure.retry_after)
                if not fits_before_deadline(wait + self._timeout, self._deadline, self._reserve):
                    raise failure.error from failure.error.__cause__
                self._clock.sleep(wait)

    def _fetch_once(self, parameters: dict[str, str], attempt: int) -> Page:
        try:
            response = self._session.get(
                self._endpoint,
                params=parameters,
                headers={"Authorization": self._credentials.header(), "Accept": "application/json"},
                timeout=self._timeout,
                verify=self._verify,
                allow_redirects=False,
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            transport_error = ThreatStreamTransportError(f"GET {INTELLIGENCE_PATH} failed: {type(exc).__name__}")
            transport_error.__cause__ = exc
            raise _RetryableFailure(transport_error, None) from exc

        status = response.status_code
        if status in NON_RETRYABLE_AUTH_STATUSES:
            raise ThreatStreamAuthError(
                f"GET {INTELLIGENCE_PATH} returned {status}: check the user name and API key in the "
                "ThreatStream secret and that the user may read intelligence",
                status,
            )
        if status in RETRYABLE_STATUSES:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), self._clock.now())
            status_error = ThreatStreamResponseError(f"GET {INTELLIGENCE_PATH} returned {status}", status)
            raise _RetryableFailure(status_error, retry_after)
        if status != 200:
            raise ThreatStreamResponseError(f"GET {INTELLIGENCE_PATH} returned {status}", status)

        try:
            return parse_page(response.text, attempt)
        except ThreatStreamResponseError as error:
            # NOTE: a 200 whose body is cut off or is not JSON is treated as a lost response:
            # the request is a GET and repeating it is safe.
            raise _RetryableFailure(error, None) from error


class _RetryableFailure(Exception):
    def __init__(self, error: ThreatStreamError, retry_after: float | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


def parse_page(body: str, attempts: int) -> Page:
    """Parse a page body; the stdlib parser keeps integers of any size exact."""
    try:
        # NaN and Infinity are not JSON: they stay strings, so the mapper and the engine see a
        # wrong type (an error record or a dead letter) instead of a float no JSON can carry.
        document = json.loads(body, parse_constant=str, parse_int=_integer_or_text)
    except (ValueError, RecursionError) as exc:
        raise ThreatStreamResponseError(
            f"GET {INTELLIGENCE_PATH} returned 200 with a body that is not JSON ({len(body)} bytes)", 200
        ) from exc
    if not isinstance(document, dict) or not isinstance(document.get("objects"), list):
        raise ThreatStreamResponseError(f"GET {INTELLIGENCE_PATH} returned 200 without an 'objects' list", 200)
    meta = document.get("meta")
    meta = meta if isinstance(meta, dict) else {}
    next_link = meta.get("next")
    return Page(
        objects=document["objects"],
        next_link=next_link if isinstance(next_link, str) and next_link else None,
        total_count=_as_count(meta.get("total_count")),
        attempts=attempts,
    )


def _integer_or_text(digits: str) -> int | str:
    """Parse a JSON integer exactly; one longer than Python converts (4300 digits) stays text."""
    try:
        return int(digits)
    except ValueError:
        return digits


def _as_count(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    # A count beyond what a metric can carry is as useless as none.
    if isinstance(value, int) and 0 <= value <= MAX_COUNT:
        return value
    return None
