"""Paging decisions for the intelligence endpoint: which page to ask for next, and when to stop.

Pure code: no I/O, no clock. The adapter in `adapters/threatstream.py` sends what this builds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urljoin, urlsplit

INTELLIGENCE_PATH = "/api/v2/intelligence/"
# NOTE: ThreatStream accepts credentials as query parameters too. A `meta.next` link that
# carries them must never be followed as it is, or they would land in access logs and traces.
CREDENTIAL_PARAMETERS = frozenset({"username", "api_key"})


class ForeignNextLink(ValueError):
    """`meta.next` points outside the configured API origin or endpoint."""


@dataclass(frozen=True)
class RequestWindow:
    """Query window of one invocation, before any `meta.next` link is followed."""

    page_size: int
    delay: timedelta
    initial_interval: timedelta
    query: str | None
    remote_api: bool


def format_api_time(moment: datetime) -> str:
    """Format a time as the API's filters expect it: `YYYY-MM-DDTHH:MM:SSZ` in UTC."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def first_page_parameters(window: RequestWindow, cursor: int | None, now: datetime) -> dict[str, str]:
    """Build the query of the first request of an invocation.

    The upper bound `modified_ts__lt = now - delay` leaves records that become visible late for a
    later run. The very first run has no cursor and requests only the initial window. Every later
    run continues after the cursor and never filters on `modified_ts__gt` again.
    """
    parameters = {
        "order_by": "update_id",
        "modified_ts__lt": format_api_time(now - window.delay),
        "limit": str(window.page_size),
    }
    if cursor is None:
        parameters["modified_ts__gt"] = format_api_time(now - window.initial_interval)
    else:
        parameters["update_id__gt"] = str(cursor)
    if window.query:
        parameters["q"] = window.query
    if window.remote_api:
        parameters["remote_api"] = "true"
    return parameters


def next_page_parameters(next_link: str, base_url: str) -> dict[str, str]:
    """Return the query of a `meta.next` link, without any credentials it carries.

    The request is always sent to the configured endpoint, so the `Authorization` header can only
    reach the configured scheme, host and port. A link to another origin or path raises
    `ForeignNextLink`.
    """
    base = urlsplit(base_url)
    try:
        target = urlsplit(urljoin(base_url + INTELLIGENCE_PATH, next_link))
        target_port = target.port
    except ValueError:
        raise ForeignNextLink("meta.next is not a valid URL (bad port or host)") from None
    same_origin = (target.scheme, target.hostname, target_port) == (base.scheme, base.hostname, base.port)
    same_endpoint = target.path.rstrip("/") == (base.path.rstrip("/") + INTELLIGENCE_PATH).rstrip("/")
    if not (same_origin and same_endpoint):
        raise ForeignNextLink(
            f"meta.next points to {target.scheme}://{target.hostname}:{target_port}{target.path}, "
            f"outside the configured endpoint"
        )
    return {
        name: value
        for name, value in parse_qsl(target.query, keep_blank_values=True)
        if name.lower() not in CREDENTIAL_PARAMETERS
    }


def page_cursor(update_ids: Iterable[int]) -> int | None:
    """Return the cursor a page moves to: the maximum `update_id` on it, or None when it has none."""
    return max(update_ids, default=None)


def moves_forward(page_max: int | None, cursor: int | None) -> bool:
    """Return True when a page contains updates past the cursor."""
    if page_max is None:
        return False
    return cursor is None or page_max > cursor
