"""Local simulator of the ThreatStream intelligence API (`GET /api/v2/intelligence/`).

It serves a generated corpus with the API's authentication, filters, paging and `q`
queries, publishes new updates on request, injects faults, and records every request.
It reads time only from the `Clock` it is given, so a `ManualClock` shared with the code
under test lets minutes pass instantly. The one exception is the `slow` fault, which
sleeps real seconds because it tests a client timeout.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import gc
import hmac
import json
import logging
import random
import re
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import Message
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from local.simulator.corpus import (
    DEFAULT_CONFORMANCE_DIR,
    FIRST_INEXACT_FLOAT_INT,
    INITIAL_RETIREMENT_SHARE,
    INITIAL_REVISION_SHARE,
    PUBLISHED_NEW_SHARE,
    IndicatorFactory,
    Update,
    UpdateLog,
    copy_object,
    format_api_timestamp,
    load_benchmark_enumerations,
    load_templates,
    parse_api_timestamp,
    stamp,
    truncate_to_milliseconds,
)
from local.simulator.faults import (
    Fault,
    FaultKind,
    FaultQueue,
    html_200_page,
    retry_after_header,
    server_error_page,
    truncate_body,
)
from ti_anomali.clock import Clock

logger = logging.getLogger(__name__)

API_PATH = "/api/v2/intelligence/"
CONTROL_PATH_PREFIX = "/_simulator/"
MAX_PAGE_SIZE = 1000
# NOTE: an assumption, because no ThreatStream documentation at hand states the default page
# size. 20 is the default of Tastypie, the framework behind the /api/v2/ resources.
DEFAULT_PAGE_SIZE = 20

# Markers stored in place of secrets in `Simulator.requests`.
AUTH_MATCHED = "[redacted: matched]"
AUTH_MISMATCHED = "[redacted: did not match]"
REDACTED = "[redacted]"

# The newest record of the initial corpus lies this far before the clock's start, so a first
# run that requests records older than "now minus the 1-minute delay" receives the whole corpus.
INITIAL_CORPUS_MARGIN = timedelta(minutes=2)

_FIRST_UPDATE_ID = 300_000_000
_MAX_UPDATE_ID_STEP = 40
_MAX_CONTROL_BODY_BYTES = 1 << 20

_ACCEPTED_PARAMETERS = frozenset(
    {
        "order_by",
        "update_id__gt",
        "modified_ts__gt",
        "modified_ts__lt",
        "limit",
        "offset",
        "q",
        "search_after",
        "remote_api",
        "format",
        "username",
        "api_key",
    }
)
# Parameters that never go into meta.next: credentials, and those that each page sets anew.
_NOT_FORWARDED = frozenset({"username", "api_key", "offset", "search_after"})


class BadRequest(ValueError):
    """A request parameter that the API rejects with 400."""


# --- the q query language ---------------------------------------------------------------------

_NUMERIC_FIELDS = frozenset(
    {
        "id",
        "update_id",
        "confidence",
        "threatscore",
        "source_reported_confidence",
        "retina_confidence",
        "feed_id",
        "owner_organization_id",
    }
)
_TIMESTAMP_FIELDS = frozenset({"modified_ts", "created_ts", "expiration_ts"})
_BOOLEAN_FIELDS = frozenset({"is_public", "is_anonymous"})
_TEXT_FIELDS = frozenset(
    {
        "value",
        "itype",
        "type",
        "status",
        "tlp",
        "source",
        "threat_type",
        "subtype",
        "country",
        "asn",
        "ip",
        "org",
        "uuid",
    }
)
_FIELD_ALIASES = {"meta.severity": "severity", "tags.name": "tags"}
_QUERY_FIELDS = sorted(
    _NUMERIC_FIELDS | _TIMESTAMP_FIELDS | _BOOLEAN_FIELDS | _TEXT_FIELDS | {"severity", "tags", "trusted_circle_ids"}
)

_QUERY_TOKEN = re.compile(
    r"""\s*(?:
        (?P<open>\()
      | (?P<close>\))
      | (?P<connective>(?i:AND|OR))(?=[\s(]|$)
      | (?P<field>[A-Za-z_][A-Za-z0-9_.]*)\s*(?P<operator>>=|<=|!=|=|>|<)\s*
        (?P<value>"[^"]*"|'[^']*'|[^\s()"']+)
    )""",
    re.VERBOSE,
)

ObjectPredicate = Callable[[dict[str, Any]], bool]


@functools.lru_cache(maxsize=128)
def compile_query(text: str) -> ObjectPredicate:
    """Compile a `q` expression into a predicate over API objects, or raise BadRequest if unsupported.

    The supported subset of ThreatStream's query language: terms `field<op>value` with
    `=`, `!=`, `>`, `>=`, `<`, `<=`, joined by AND and OR (AND binds tighter), and
    parentheses. Values may be quoted. Text compares case-insensitively, and `null`
    matches a missing value. `tags` matches any tag name, `severity` is `meta.severity`.
    """
    tokens = list(_tokenize_query(text))
    if not tokens:
        raise BadRequest("q is empty: remove the parameter or give a query such as itype=mal_ip")
    predicate, position = _parse_disjunction(tokens, 0)
    if position != len(tokens):
        raise BadRequest(f"unsupported q syntax near token {position + 1} of {text!r}")
    return predicate


def _tokenize_query(text: str) -> Iterator[dict[str, str]]:
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            return
        match = _QUERY_TOKEN.match(text, position)
        if match is None:
            raise BadRequest(
                f"unsupported q syntax at character {position + 1} of {text!r}, "
                "expected field<op>value terms joined by AND or OR"
            )
        yield {name: value for name, value in match.groupdict().items() if value is not None}
        position = match.end()


def _parse_disjunction(tokens: list[dict[str, str]], position: int) -> tuple[ObjectPredicate, int]:
    terms = []
    term, position = _parse_conjunction(tokens, position)
    terms.append(term)
    while position < len(tokens) and tokens[position].get("connective", "").upper() == "OR":
        term, position = _parse_conjunction(tokens, position + 1)
        terms.append(term)
    if len(terms) == 1:
        return terms[0], position
    return (lambda obj: any(term(obj) for term in terms)), position


def _parse_conjunction(tokens: list[dict[str, str]], position: int) -> tuple[ObjectPredicate, int]:
    factors = []
    factor, position = _parse_factor(tokens, position)
    factors.append(factor)
    while position < len(tokens) and tokens[position].get("connective", "").upper() == "AND":
        factor, position = _parse_factor(tokens, position + 1)
        factors.append(factor)
    if len(factors) == 1:
        return factors[0], position
    return (lambda obj: all(factor(obj) for factor in factors)), position


def _parse_factor(tokens: list[dict[str, str]], position: int) -> tuple[ObjectPredicate, int]:
    if position >= len(tokens):
        raise BadRequest("q ends early: a term is missing after AND, OR or '('")
    token = tokens[position]
    if "open" in token:
        inner, position = _parse_disjunction(tokens, position + 1)
        if position >= len(tokens) or "close" not in tokens[position]:
            raise BadRequest("q has an unclosed '('")
        return inner, position + 1
    if "field" in token:
        return _compile_term(token["field"], token["operator"], _unquote(token["value"])), position + 1
    raise BadRequest(f"unsupported q syntax at token {position + 1}, expected a field<op>value term or '('")


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _compile_term(name: str, operator: str, text: str) -> ObjectPredicate:
    name = _FIELD_ALIASES.get(name, name)
    if name in _NUMERIC_FIELDS:
        return _numeric_term(name, operator, text)
    if name in _TIMESTAMP_FIELDS:
        return _timestamp_term(name, operator, text)
    if name == "trusted_circle_ids":
        return _list_term(lambda obj: obj.get("trusted_circle_ids"), operator, text, numeric=True)
    if name == "tags":
        return _list_term(_tag_names, operator, text, numeric=False)
    if name in _BOOLEAN_FIELDS:
        return _boolean_term(name, operator, text)
    if name in _TEXT_FIELDS or name == "severity":
        getter = _severity if name == "severity" else (lambda obj: obj.get(name))
        return _text_term(getter, operator, text)
    raise BadRequest(f"unsupported q field {name!r}, supported fields: {', '.join(_QUERY_FIELDS)}")


_ORDERINGS: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda actual, expected: actual == expected,
    "!=": lambda actual, expected: actual != expected,
    ">": lambda actual, expected: actual > expected,
    ">=": lambda actual, expected: actual >= expected,
    "<": lambda actual, expected: actual < expected,
    "<=": lambda actual, expected: actual <= expected,
}


def _numeric_term(name: str, operator: str, text: str) -> ObjectPredicate:
    expected = _parse_number(name, text)
    compare = _ORDERINGS[operator]

    def matches(obj: dict[str, Any]) -> bool:
        actual = obj.get(name)
        if not _is_number(actual):
            return operator == "!="
        return compare(actual, expected)

    return matches


def _timestamp_term(name: str, operator: str, text: str) -> ObjectPredicate:
    try:
        expected = parse_api_timestamp(text)
    except ValueError as error:
        raise BadRequest(f"invalid q value for {name}: {error}") from error
    compare = _ORDERINGS[operator]

    def matches(obj: dict[str, Any]) -> bool:
        try:
            actual = parse_api_timestamp(obj.get(name) or "")
        except ValueError:
            return operator == "!="
        return compare(actual, expected)

    return matches


def _boolean_term(name: str, operator: str, text: str) -> ObjectPredicate:
    if operator not in ("=", "!="):
        raise BadRequest(f"q operator {operator} does not apply to the boolean field {name}, use = or !=")
    if text.lower() not in ("true", "false"):
        raise BadRequest(f"invalid q value {text!r} for {name}, expected true or false")
    expected = text.lower() == "true"
    return lambda obj: (obj.get(name) is expected) == (operator == "=")


def _text_term(getter: Callable[[dict[str, Any]], Any], operator: str, text: str) -> ObjectPredicate:
    if operator not in ("=", "!="):
        raise BadRequest(f"q operator {operator} applies only to numeric and timestamp fields")
    expected = None if text.lower() == "null" else text.lower()

    def matches(obj: dict[str, Any]) -> bool:
        actual = getter(obj)
        normalized = None if actual is None else str(actual).lower()
        return (normalized == expected) == (operator == "=")

    return matches


def _list_term(getter: Callable[[dict[str, Any]], Any], operator: str, text: str, *, numeric: bool) -> ObjectPredicate:
    if operator not in ("=", "!="):
        raise BadRequest(f"q operator {operator} does not apply to list fields, use = or !=")
    expected: Any = _parse_number("trusted_circle_ids", text) if numeric else text.lower()

    def matches(obj: dict[str, Any]) -> bool:
        items = getter(obj) or []
        found = any((item if numeric else str(item).lower()) == expected for item in items)
        return found == (operator == "=")

    return matches


def _tag_names(obj: dict[str, Any]) -> list[Any]:
    return [tag.get("name") for tag in obj.get("tags") or [] if isinstance(tag, dict)]


def _severity(obj: dict[str, Any]) -> Any:
    meta = obj.get("meta")
    return meta.get("severity") if isinstance(meta, dict) else None


def _parse_number(name: str, text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise BadRequest(f"invalid q value {text!r} for the numeric field {name}") from None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# --- request parameters -----------------------------------------------------------------------


@dataclass(frozen=True)
class PageRequest:
    """The validated query parameters of one API request."""

    update_id_gt: int | None
    search_after: int | None
    modified_gt: datetime | None
    modified_lt: datetime | None
    limit: int
    offset: int
    query: str | None
    matches: ObjectPredicate | None
    forwarded: dict[str, str]  # parameters that meta.next repeats

    @property
    def cursor(self) -> int | None:
        """Highest update_id that this request excludes, from update_id__gt and search_after."""
        bounds = [bound for bound in (self.update_id_gt, self.search_after) if bound is not None]
        return max(bounds) if bounds else None


def parse_page_request(query: dict[str, str]) -> PageRequest:
    """Validate the query parameters of an API request, or raise BadRequest with the reason."""
    unknown = sorted(set(query) - _ACCEPTED_PARAMETERS)
    if unknown:
        raise BadRequest(f"unsupported query parameters {unknown}, supported: {sorted(_ACCEPTED_PARAMETERS)}")
    if query.get("order_by") != "update_id":
        raise BadRequest(f"order_by must be 'update_id', got {query.get('order_by')!r}")
    if query.get("remote_api", "true") not in ("true", "false"):
        raise BadRequest(f"remote_api must be 'true' or 'false', got {query['remote_api']!r}")
    if query.get("format", "json") != "json":
        raise BadRequest(f"format must be 'json', got {query['format']!r}")

    limit = _integer_parameter(query, "limit")
    if limit is None:
        limit = DEFAULT_PAGE_SIZE
    elif limit == 0 or limit > MAX_PAGE_SIZE:
        # Like Tastypie, limit=0 requests the maximum page size.
        limit = MAX_PAGE_SIZE

    text = query.get("q")
    matches = compile_query(text) if text is not None else None
    forwarded = {name: value for name, value in query.items() if name not in _NOT_FORWARDED}
    forwarded["limit"] = str(limit)
    return PageRequest(
        update_id_gt=_integer_parameter(query, "update_id__gt"),
        search_after=_integer_parameter(query, "search_after"),
        modified_gt=_timestamp_parameter(query, "modified_ts__gt"),
        modified_lt=_timestamp_parameter(query, "modified_ts__lt"),
        limit=limit,
        offset=_integer_parameter(query, "offset") or 0,
        query=text,
        matches=matches,
        forwarded=forwarded,
    )


def _integer_parameter(query: dict[str, str], name: str) -> int | None:
    value = query.get(name)
    if value is None:
        return None
    if not re.fullmatch(r"\d{1,30}", value):
        raise BadRequest(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def _timestamp_parameter(query: dict[str, str], name: str) -> datetime | None:
    value = query.get(name)
    if value is None:
        return None
    try:
        return parse_api_timestamp(value)
    except ValueError as error:
        raise BadRequest(f"invalid {name}: {error}") from error


def next_page_url(request: PageRequest, cursor: int) -> str:
    """Return the relative URL of the page after `cursor`.

    Without q it moves update_id__gt, with q it sets search_after, as ThreatStream does.
    """
    parameters = dict(request.forwarded)
    parameters["search_after" if request.query is not None else "update_id__gt"] = str(cursor)
    return f"{API_PATH}?{urlencode(sorted(parameters.items()))}"


# --- requests and responses -------------------------------------------------------------------


@dataclass
class RecordedRequest:
    """A request the simulator received, with secrets replaced by markers.

    `number` counts requests from 1, in arrival order, leaving out control requests.
    `status` is None while the response is pending and when the connection was reset.
    The Authorization header contains `AUTH_MATCHED` or `AUTH_MISMATCHED`, and an api_key
    query parameter contains `REDACTED`.
    """

    number: int
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    received_at: datetime
    status: int | None = None


@dataclass
class _Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    reset: bool = False
    delay_seconds: float = 0.0


def _json_response(status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> _Response:
    return _Response(status, json.dumps(payload).encode(), headers=headers or {})


def _error_response(status: int, message: str, headers: dict[str, str] | None = None) -> _Response:
    return _json_response(status, {"error": message}, headers)


class _Credentials(enum.Enum):
    MISSING = "missing"
    MALFORMED = "malformed"
    WRONG = "wrong"
    VALID = "valid"


# --- the simulator ----------------------------------------------------------------------------


class Simulator:
    """A ThreatStream intelligence API on 127.0.0.1, serving a seeded corpus that grows on `publish`.

    The initial corpus contains `corpus_size` updates whose modified_ts lie within
    `corpus_age` before the clock's time at construction, and at least
    `INITIAL_CORPUS_MARGIN` before it unless `corpus_age` is shorter than twice that.
    With `big_ids`, about one new indicator id in ten and every update_id from the middle
    of the initial corpus on lie above 2**53.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        username: str = "sim-user",
        api_key: str = "sim-key",
        seed: int = 7,
        corpus_size: int = 2500,
        corpus_age: timedelta = timedelta(days=30),
        big_ids: bool = False,
        conformance_dir: Path | None = None,
    ) -> None:
        if corpus_size < 0:
            raise ValueError(f"corpus_size must not be negative, got {corpus_size}")
        if corpus_age <= timedelta(0):
            raise ValueError(f"corpus_age must be positive, got {corpus_age}")
        self.clock = clock
        self.username = username
        self._api_key = api_key
        self.requests: list[RecordedRequest] = []
        self._requests_lock = threading.Lock()
        self._request_count = 0
        self._faults = FaultQueue()
        self._log = UpdateLog()
        self._publish_lock = threading.Lock()
        self._last_page_body: bytes | None = None
        self._server: _ApiServer | None = None
        self._thread: threading.Thread | None = None

        self._rng = random.Random(seed)
        self._factory = self._build_factory(conformance_dir or DEFAULT_CONFORMANCE_DIR, big_ids)
        self._indicator_ids: list[int] = []
        self._last_update_id = _FIRST_UPDATE_ID + self._rng.randint(0, 999_999)
        self._assigned_update_ids = 0
        self._big_update_ids_from = corpus_size // 2 if big_ids else None
        self._publish_initial_corpus(corpus_size, corpus_age)

    def __repr__(self) -> str:
        return f"Simulator(url={self.url!r}, username={self.username!r}, updates={len(self._log)})"

    def __enter__(self) -> Simulator:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self, port: int = 0) -> str:
        """Serve on 127.0.0.1:`port` (0 picks a free port) in a daemon thread and return the base URL."""
        if self._server is not None:
            raise RuntimeError(f"the simulator is already running at {self.url}")
        self._server = _ApiServer(("127.0.0.1", port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="threatstream-simulator",
            daemon=True,
        )
        self._thread.start()
        url = self._base_url(self._server)
        logger.info("simulator started url=%s updates=%d", url, len(self._log))
        return url

    def stop(self) -> None:
        """Stop serving and close the listening socket. Responses still in progress are abandoned."""
        if self._server is None:
            return
        url = self.url
        self._server.shutdown()
        self._server.server_close()
        self._server.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None
        logger.info("simulator stopped url=%s", url)

    @property
    def url(self) -> str | None:
        """Base URL such as http://127.0.0.1:8123, or None while stopped."""
        if self._server is None:
            return None
        return self._base_url(self._server)

    @staticmethod
    def _base_url(server: _ApiServer) -> str:
        host, port = server.server_address[:2]
        host_text = host.decode() if isinstance(host, bytes) else host
        return f"http://{host_text}:{port}"

    # --- faults and recorded requests -----------------------------------------------------------

    def inject(self, fault: Fault) -> None:
        """Queue `fault` for the next matching request(s), or for the next published records."""
        self._faults.add(fault)

    def clear_faults(self) -> None:
        """Drop every fault not yet used."""
        self._faults.clear()

    def clear_requests(self) -> None:
        """Forget the recorded requests. Request numbers keep counting from where they were."""
        with self._requests_lock:
            self.requests.clear()

    # --- publishing -----------------------------------------------------------------------------

    def publish(self, count: int, *, status_changes: float = 0.2) -> list[Update]:
        """Publish `count` updates modified at the clock's current time and return them.

        About `status_changes` of them change the status of active indicators to
        'inactive' (three in four) or 'falsepos' (one in four). Of the rest, about 70 %
        add new indicators and 30 % revise existing ones. update_ids keep rising.
        A queued late_visibility fault delays when the records become visible.
        """
        if count < 0:
            raise ValueError(f"count must not be negative, got {count}")
        if not 0 <= status_changes <= 1:
            raise ValueError(f"status_changes must lie in [0, 1], got {status_changes}")
        with self._publish_lock:
            now = self.clock.now()
            modified = truncate_to_milliseconds(now)
            published = []
            for action, indicator_id, status in self._plan_publication(count, status_changes):
                if action == "new":
                    obj = self._factory.new_indicator(modified, now)
                elif action == "revise":
                    obj = self._factory.revise(self._newest_object(indicator_id), modified, now)
                else:
                    obj = self._factory.retire(self._newest_object(indicator_id), modified, status)
                stamp(obj, self._allocate_update_id())
                published.append(self._add(obj, modified, now + self._late_visibility_delay()))
        logger.info("published updates=%d last_update_id=%s", len(published), self._log.last_update_id)
        return published

    def publish_object(self, obj: dict[str, Any], *, visible_after: timedelta = timedelta(0)) -> Update:
        """Publish a copy of a hand-written API object and return its update.

        Missing `update_id`, `modified_ts` and `id` are filled in with the next update_id,
        the clock's time and a new id. Other fields stay as given, so tests can publish
        broken objects. A modified_ts that does not parse orders the record at the clock's
        time. The record becomes visible `visible_after` after the clock's time, plus the
        delay of a queued late_visibility fault.
        """
        obj = copy_object(obj)
        with self._publish_lock:
            now = self.clock.now()
            if "update_id" not in obj:
                obj["update_id"] = self._allocate_update_id()
            update_id = obj["update_id"]
            if not isinstance(update_id, int) or isinstance(update_id, bool) or update_id <= 0:
                raise ValueError(f"update_id must be a positive integer, got {update_id!r}")
            self._last_update_id = max(self._last_update_id, update_id)
            obj.setdefault("modified_ts", format_api_timestamp(now))
            obj.setdefault("id", self._factory.new_id())
            if _integer_or_none(obj["id"]) is not None:
                self._factory.reserve_id(obj["id"])
            try:
                modified = parse_api_timestamp(str(obj["modified_ts"]))
            except ValueError:
                modified = truncate_to_milliseconds(now)
            visible_at = now + visible_after + self._late_visibility_delay()
            return self._add(obj, modified, visible_at)

    def published_updates(self) -> list[Update]:
        """Return every update ever published, the initial corpus included, in update_id order."""
        return self._log.updates()

    def live_indicator_ids(
        self,
        now: datetime,
        live_statuses: tuple[str, ...] = ("active",),
        grace: timedelta = timedelta(minutes=1),
        ioc_duration: timedelta | None = timedelta(days=90),
        ingested_at: Callable[[Update], datetime] | None = None,
    ) -> set[str]:
        """Return the ids, as decimal strings, that the latest index should contain at `now`.

        Only updates visible at `now` count. An id is live when its newest such update has
        a status in `live_statuses` and has not expired. Its expiry is the earlier of
        expiration_ts and ingest time plus `ioc_duration`, like the mapper's
        deletion_scheduled_at, and it has expired when that lies more than `grace` before
        `now`. Ingest time is `ingested_at(update)`, by default the update's visible_at,
        the earliest moment a collector could have fetched it. An expiration_ts that is
        missing or does not parse sets no limit.
        """
        newest: dict[int, Update] = {}
        for update in self._log.updates():
            if update.id is not None and update.visible_at <= now:
                newest[update.id] = update

        live = set()
        for indicator_id, update in newest.items():
            if update.status not in live_statuses:
                continue
            expiry = _expiry(update, ioc_duration, ingested_at)
            if expiry is not None and expiry < now - grace:
                continue
            live.add(str(indicator_id))
        return live

    def _build_factory(self, conformance_dir: Path, big_ids: bool) -> IndicatorFactory:
        templates = load_templates(conformance_dir) if conformance_dir.is_dir() else ()
        enumerations = load_benchmark_enumerations(conformance_dir) if conformance_dir.is_dir() else {}
        if not templates:
            logger.warning(
                "no conformance inputs found in %s, so the generator builds the whole corpus", conformance_dir
            )
        return IndicatorFactory(self._rng, templates=templates, enumerations=enumerations, big_ids=big_ids)

    def _publish_initial_corpus(self, size: int, age: timedelta) -> None:
        # The corpus is cycle-free JSON, so pausing the cyclic garbage collector while it grows
        # loses nothing, and it cuts the build time of a 100,000-update corpus by about a third.
        collector_was_enabled = gc.isenabled()
        gc.disable()
        try:
            self._generate_initial_corpus(size, age)
        finally:
            if collector_was_enabled:
                gc.enable()

    def _generate_initial_corpus(self, size: int, age: timedelta) -> None:
        start = self.clock.now()
        newest = start - min(INITIAL_CORPUS_MARGIN, age / 2)
        oldest = start - age
        span = newest - oldest
        times = sorted(truncate_to_milliseconds(oldest + span * self._rng.random()) for _ in range(size))
        for modified in times:
            obj = self._initial_object(modified, start)
            stamp(obj, self._allocate_update_id())
            self._add(obj, modified, modified)

    def _initial_object(self, modified: datetime, start: datetime) -> dict[str, Any]:
        roll = self._rng.random()
        if self._indicator_ids and roll < INITIAL_REVISION_SHARE:
            previous = self._newest_object(self._rng.choice(self._indicator_ids))
            return self._factory.revise(previous, modified, start)
        if self._indicator_ids and roll < INITIAL_REVISION_SHARE + INITIAL_RETIREMENT_SHARE:
            previous = self._newest_object(self._rng.choice(self._indicator_ids))
            status = "falsepos" if self._rng.random() < 0.25 else "inactive"
            return self._factory.retire(previous, modified, status)
        status_roll = self._rng.random()
        status = "active"
        if status_roll >= 0.97:
            status = "falsepos"
        elif status_roll >= 0.85:
            status = "inactive"
        return self._factory.new_indicator(modified, start, status)

    def _plan_publication(self, count: int, status_changes: float) -> list[tuple[str, int | None, str]]:
        active_ids = [
            indicator_id for indicator_id, update in self._log.newest_by_id().items() if update.status == "active"
        ]
        retire_count = min(round(count * status_changes), len(active_ids))
        plan: list[tuple[str, int | None, str]] = [
            ("retire", indicator_id, "falsepos" if position % 4 == 3 else "inactive")
            for position, indicator_id in enumerate(self._rng.sample(active_ids, retire_count))
        ]
        for _ in range(count - retire_count):
            if self._indicator_ids and self._rng.random() >= PUBLISHED_NEW_SHARE:
                plan.append(("revise", self._rng.choice(self._indicator_ids), "active"))
            else:
                plan.append(("new", None, "active"))
        self._rng.shuffle(plan)
        return plan

    def _newest_object(self, indicator_id: int | None) -> dict[str, Any]:
        update = self._log.newest(indicator_id) if indicator_id is not None else None
        if update is None:
            raise LookupError(f"no update published for indicator id {indicator_id}")
        return update.obj

    def _allocate_update_id(self) -> int:
        self._assigned_update_ids += 1
        candidate = self._last_update_id + self._rng.randint(1, _MAX_UPDATE_ID_STEP)
        crossing_due = self._big_update_ids_from is not None and self._assigned_update_ids > self._big_update_ids_from
        if crossing_due and candidate < FIRST_INEXACT_FLOAT_INT:
            candidate = FIRST_INEXACT_FLOAT_INT
        self._last_update_id = candidate
        return candidate

    def _late_visibility_delay(self) -> timedelta:
        fault = self._faults.take_for_publish()
        return fault.visible_after if fault is not None else timedelta(0)

    def _add(self, obj: dict[str, Any], modified: datetime, visible_at: datetime) -> Update:
        indicator_id = _integer_or_none(obj.get("id"))
        expiration = obj.get("expiration_ts")
        update = Update(
            id=indicator_id,
            update_id=obj["update_id"],
            status=obj["status"] if isinstance(obj.get("status"), str) else "",
            modified_ts=modified,
            visible_at=visible_at,
            expiration_ts=expiration if isinstance(expiration, str) else None,
            obj=obj,
        )
        is_new_indicator = indicator_id is not None and self._log.newest(indicator_id) is None
        self._log.add(update)
        if indicator_id is not None and is_new_indicator:
            self._indicator_ids.append(indicator_id)
        return update

    # --- HTTP handling --------------------------------------------------------------------------

    def _handle(self, handler: _RequestHandler) -> None:
        body = _read_body(handler)
        target = urlsplit(handler.path)
        if target.path.startswith(CONTROL_PATH_PREFIX):
            response = self._control_response(handler, target.path, target.query, body)
            if response.status >= 400:
                logger.warning("control request rejected path=%s status=%d", target.path, response.status)
            _send(handler, response)
            return

        query = dict(parse_qsl(target.query, keep_blank_values=True))
        credentials = self._check_credentials(handler.headers.get("Authorization"))
        record = self._record(handler, target.path, query, credentials)
        response = self._api_response(handler.command, target.path, query, credentials, record.number)
        record.status = None if response.reset else response.status
        if 400 <= response.status < 500:
            # The body is one of this module's messages, which name parameters but never a credential.
            logger.info("request rejected request=%d status=%d body=%s", record.number, response.status, response.body)
        _send(handler, response)

    def _record(
        self, handler: _RequestHandler, path: str, query: dict[str, str], credentials: _Credentials
    ) -> RecordedRequest:
        headers = dict(handler.headers.items())
        for name in headers:
            if name.lower() == "authorization":
                headers[name] = AUTH_MATCHED if credentials is _Credentials.VALID else AUTH_MISMATCHED
        recorded_query = {name: REDACTED if name == "api_key" else value for name, value in query.items()}
        with self._requests_lock:
            self._request_count += 1
            record = RecordedRequest(
                number=self._request_count,
                method=handler.command,
                path=path,
                query=recorded_query,
                headers=headers,
                received_at=self.clock.now(),
            )
            self.requests.append(record)
        return record

    def _check_credentials(self, header: str | None) -> _Credentials:
        if header is None:
            return _Credentials.MISSING
        scheme, _, credentials = header.strip().partition(" ")
        username, separator, api_key = credentials.strip().partition(":")
        if scheme.lower() != "apikey" or not separator:
            return _Credentials.MALFORMED
        username_matches = hmac.compare_digest(username.encode(), self.username.encode())
        key_matches = hmac.compare_digest(api_key.encode(), self._api_key.encode())
        return _Credentials.VALID if username_matches and key_matches else _Credentials.WRONG

    def _api_response(
        self, method: str, path: str, query: dict[str, str], credentials: _Credentials, number: int
    ) -> _Response:
        if path != API_PATH:
            return _error_response(404, f"no resource at {path}, the intelligence API is at {API_PATH}")
        if method != "GET":
            return _error_response(405, f"method {method} is not allowed on {API_PATH}, use GET", {"Allow": "GET"})
        if credentials is not _Credentials.VALID:
            return _error_response(401, _credentials_message(credentials, query))

        fault = self._faults.take_for_request(number)
        if fault is not None:
            logger.info("fault injected kind=%s request=%d", fault.kind, number)
            replacement = self._fault_replacement(fault)
            if replacement is not None:
                return replacement

        try:
            page_request = parse_page_request(query)
        except BadRequest as error:
            return _error_response(400, str(error))
        response = _Response(200, self._page_body(page_request, fault))
        if fault is not None and fault.kind is FaultKind.SLOW:
            response.delay_seconds = fault.delay_seconds
        return response

    def _fault_replacement(self, fault: Fault) -> _Response | None:
        """Return the response that replaces the page for faults that need no page, else None."""
        if fault.kind is FaultKind.RATE_LIMIT:
            retry_after = retry_after_header(fault, self.clock.now())
            headers = {"Retry-After": retry_after} if retry_after is not None else {}
            return _error_response(429, "request was throttled, retry later", headers)
        if fault.kind is FaultKind.SERVER_ERROR:
            return _Response(fault.status, server_error_page(fault.status), content_type="text/html")
        if fault.kind is FaultKind.HTML_200:
            return _Response(200, html_200_page(), content_type="text/html; charset=utf-8")
        if fault.kind is FaultKind.RESET:
            return _Response(0, reset=True)
        if fault.kind is FaultKind.REPEAT_PAGE and self._last_page_body is not None:
            return _Response(200, self._last_page_body)
        return None

    def _page_body(self, request: PageRequest, fault: Fault | None) -> bytes:
        selection = self._log.select(
            now=self.clock.now(),
            update_id_gt=request.cursor,
            modified_gt=request.modified_gt,
            modified_lt=request.modified_lt,
            matches=request.matches,
            offset=request.offset,
            limit=request.limit,
        )
        kind = fault.kind if fault is not None else None
        objects = selection.encoded_objects
        has_more = selection.total_count > request.offset + len(objects)
        next_url = None
        if has_more and selection.last_update_id is not None:
            next_url = next_page_url(request, selection.last_update_id)

        if kind is FaultKind.EMPTY_WITH_NEXT:
            objects = []
            next_url = next_page_url(request, request.cursor or 0)
        elif kind is FaultKind.NEXT_WITH_CREDENTIALS:
            cursor = selection.last_update_id or request.cursor or 0
            credentials = urlencode({"username": self.username, "api_key": self._api_key})
            next_url = f"{next_url or next_page_url(request, cursor)}&{credentials}"

        total_count: int | str = selection.total_count
        if kind is FaultKind.TOTAL_COUNT_STRING:
            total_count = str(total_count)
        meta: dict[str, Any] = {
            "offset": request.offset,
            "limit": request.limit,
            "total_count": total_count,
            "next": next_url,
            # NOTE: synthetic. ThreatStream reports its query time in ms, which the simulator doesn't measure.
            "took": 1 + len(objects) // 250,
        }
        body = _join_page(objects, None if kind is FaultKind.META_MISSING else meta)
        if kind in (None, FaultKind.SLOW, FaultKind.REPEAT_PAGE):
            self._last_page_body = body
        if kind is FaultKind.TRUNCATED:
            return truncate_body(body)
        return body

    def _control_response(self, handler: _RequestHandler, path: str, query_text: str, body: bytes) -> _Response:
        if handler.client_address[0] not in ("127.0.0.1", "::1"):
            return _error_response(403, "control requests are accepted from loopback addresses only")
        query = dict(parse_qsl(query_text, keep_blank_values=True))
        try:
            if path == f"{CONTROL_PATH_PREFIX}publish" and handler.command == "POST":
                updates = self.publish(
                    int(query.get("count", "1")), status_changes=float(query.get("status_changes", "0.2"))
                )
                update_ids = [update.update_id for update in updates]
                return _json_response(200, {"published": len(updates), "update_ids": update_ids})
            if path == f"{CONTROL_PATH_PREFIX}faults" and handler.command == "POST":
                fault = Fault.from_dict(json.loads(body or b"{}"))
                self.inject(fault)
                return _json_response(200, {"queued": fault.kind.value, "count": fault.count})
            if path == f"{CONTROL_PATH_PREFIX}faults" and handler.command == "DELETE":
                self.clear_faults()
                return _json_response(200, {"cleared": True})
            if path == f"{CONTROL_PATH_PREFIX}status" and handler.command == "GET":
                return _json_response(200, {"updates": len(self._log), "last_update_id": self._log.last_update_id})
        except (ValueError, TypeError) as error:
            return _error_response(400, f"invalid control request: {error}")
        return _error_response(
            404, "unknown control request, use POST publish?count=N, POST or DELETE faults, or GET status"
        )


def _credentials_message(credentials: _Credentials, query: dict[str, str]) -> str:
    if credentials is _Credentials.MISSING and ("api_key" in query or "username" in query):
        return "credentials in query parameters are not accepted, send 'Authorization: apikey <username>:<api_key>'"
    if credentials is _Credentials.MISSING:
        return "missing Authorization header, send 'Authorization: apikey <username>:<api_key>'"
    if credentials is _Credentials.MALFORMED:
        return "invalid Authorization header, expected 'apikey <username>:<api_key>'"
    return "invalid username or API key"


def _expiry(
    update: Update, ioc_duration: timedelta | None, ingested_at: Callable[[Update], datetime] | None
) -> datetime | None:
    limits = []
    if update.expiration_ts is not None:
        with contextlib.suppress(ValueError):
            limits.append(parse_api_timestamp(update.expiration_ts))
    if ioc_duration is not None:
        ingested = ingested_at(update) if ingested_at is not None else update.visible_at
        limits.append(ingested + ioc_duration)
    return min(limits) if limits else None


def _integer_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _join_page(encoded_objects: list[bytes], meta: dict[str, Any] | None) -> bytes:
    parts = [b'{"objects":[', b",".join(encoded_objects), b"]"]
    if meta is not None:
        parts += [b',"meta":', json.dumps(meta).encode()]
    parts.append(b"}")
    return b"".join(parts)


# --- the HTTP server --------------------------------------------------------------------------


class _ApiServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], simulator: Simulator) -> None:
        self.simulator = simulator
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _RequestHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Shut down open keep-alive connections, so that a stopped simulator serves nothing more."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError):
            logger.debug("client closed the connection client=%s error=%s", client_address, error)
            return
        logger.exception("request handling failed client=%s", client_address)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ThreatStreamSimulator/1.0"
    disable_nagle_algorithm = True
    # Idle keep-alive connections are closed after this many seconds of real time.
    timeout = 120
    server: _ApiServer

    def do_GET(self) -> None:  # noqa: N802 - name fixed by BaseHTTPRequestHandler
        self.server.simulator._handle(self)  # noqa: SLF001 - the handler is part of the simulator

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET  # noqa: N815

    def version_string(self) -> str:
        return self.server_version

    def date_time_string(self, timestamp: float | None = None) -> str:
        # The Date header follows the simulator's clock, which may be a manual one.
        return format_datetime(self.server.simulator.clock.now(), usegmt=True)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature fixed by the base class
        logger.debug("%s %s", self.address_string(), format % args)


def _read_body(handler: _RequestHandler) -> bytes:
    headers: Message = handler.headers
    length_text = headers.get("Content-Length", "0")
    length = int(length_text) if length_text.isdigit() else 0
    if length > _MAX_CONTROL_BODY_BYTES:
        handler.close_connection = True
        return b""
    return handler.rfile.read(length) if length else b""


def _send(handler: _RequestHandler, response: _Response) -> None:
    try:
        if response.delay_seconds:
            time.sleep(response.delay_seconds)
        if response.reset:
            _reset_connection(handler)
            return
        handler.send_response(response.status)
        handler.send_header("Content-Type", response.content_type)
        handler.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(response.body)
    except ConnectionError as error:
        logger.debug("client closed the connection before the response was sent: %s", error)
        handler.close_connection = True


def _reset_connection(handler: _RequestHandler) -> None:
    # SO_LINGER with a zero timeout makes close() send a TCP RST instead of a FIN.
    connection: socket.socket = handler.connection
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    connection.close()
    handler.close_connection = True
