"""Read the overview's figures from the latest aliases of a running engine.

Every search names the latest aliases themselves, never a wildcard, with `ignore_unavailable`, so
a missing alias (no threatstream push deployed, say) counts as no indicators instead of an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from opensearchpy.exceptions import ConnectionError as EngineConnectionError
from opensearchpy.exceptions import TransportError

from ti_anomali.ecs.common import format_timestamp_millis, get_field, parse_timestamp
from ti_anomali.report.figures import (
    EXPIRING_SOON,
    LATEST_ALIASES,
    LIST_COLUMNS,
    LIST_ROWS,
    LIVE_OVER_TIME,
    NEWLY_ADDED,
    TERMS_FIGURES,
    HistogramFigure,
    IndicatorList,
    TermsFigure,
)

OTHER_LABEL = "Other"
MISSING_LABEL = "(no value)"
SEARCH_PARAMS = {"ignore_unavailable": "true", "allow_no_indices": "true"}

# Fields tried in order for the value shown in the lists. Both mappers set the first one.
VALUE_FIELDS = (
    "threat.indicator.name",
    "threat.indicator.url.original",
    "threat.indicator.url.domain",
    "threat.indicator.ip",
    "threat.indicator.email.address",
    "threat.indicator.file.hash.sha256",
    "threat.indicator.file.hash.sha1",
    "threat.indicator.file.hash.md5",
    "anomali.threatstream.value",
)

# Histogram intervals by the time span the live indicators cover: (largest span, interval).
_INTERVALS = ((timedelta(days=2), "hour"), (timedelta(days=120), "day"))
_MAX_INTERVAL = "week"


class ReportQueryError(Exception):
    """A search of the latest aliases failed. The message names the search and the engine's status."""


@dataclass(frozen=True)
class Bucket:
    """One bar of a chart: the value's display label and how many live indicators have it."""

    label: str
    count: int


@dataclass(frozen=True)
class TermsResult:
    """The bars of a terms figure: the most frequent values, then `Other` and `(no value)` if any."""

    figure: TermsFigure
    buckets: tuple[Bucket, ...]


@dataclass(frozen=True)
class HistogramResult:
    """Live indicators per interval, oldest first, with empty intervals included."""

    figure: HistogramFigure
    interval: str
    buckets: tuple[tuple[datetime, int], ...]


@dataclass(frozen=True)
class IndicatorRow:
    """One indicator of a list, as raw text: the page escapes and defangs it."""

    when: datetime | None
    value: str
    indicator_type: str
    provider: str
    confidence: str
    tlp: str


@dataclass(frozen=True)
class IndicatorListResult:
    """The first rows of an indicator list and how many indicators match it in all."""

    definition: IndicatorList
    total: int
    rows: tuple[IndicatorRow, ...]


@dataclass(frozen=True)
class Overview:
    """Everything the report shows, read at one moment."""

    now: datetime
    live_total: int
    live_by_dataset: dict[str, int]
    over_time: HistogramResult
    terms: tuple[TermsResult, ...]
    newly_added: IndicatorListResult
    expiring_soon: IndicatorListResult


def read_overview(client: Any, now: datetime) -> Overview:
    """Run the overview's searches against the latest aliases and return their results.

    `now` anchors the two time windows (added in the last 7 days, leaving in the next 7), as
    `now` anchors the saved searches' date math. Raises `ReportQueryError` when a search fails.
    """
    now = now.astimezone(UTC)
    summary = _search(client, "overview aggregations", _summary_body(now))
    # NOTE: when neither alias exists the engine searches no shard and returns no aggregations.
    aggregations = summary.get("aggregations") or {}
    live_total = _total_hits(summary)

    first = aggregations.get("first_update", {}).get("value")
    last = aggregations.get("last_update", {}).get("value")
    over_time = _read_histogram(client, first, last)

    datasets = aggregations.get("datasets", {}).get("buckets", [])
    return Overview(
        now=now,
        live_total=live_total,
        live_by_dataset={bucket["key"]: bucket["doc_count"] for bucket in datasets},
        over_time=over_time,
        terms=tuple(_terms_result(figure, aggregations) for figure in TERMS_FIGURES),
        newly_added=_read_list(client, NEWLY_ADDED, now),
        expiring_soon=_read_list(client, EXPIRING_SOON, now),
    )


def window_query(definition: IndicatorList, now: datetime) -> dict[str, Any]:
    """Return the query matching the list's window: any of its date fields within it."""
    if definition.order == "desc":
        bound = {"gte": format_timestamp_millis(now - definition.window)}
    else:
        bound = {"lte": format_timestamp_millis(now + definition.window)}
    return {
        "bool": {
            "should": [{"range": {name: bound}} for name in definition.fields],
            "minimum_should_match": 1,
        }
    }


def _summary_body(now: datetime) -> dict[str, Any]:
    aggregations: dict[str, Any] = {
        "datasets": {"terms": {"field": "event.dataset", "size": 10}},
        "first_update": {"min": {"field": LIVE_OVER_TIME.field}},
        "last_update": {"max": {"field": LIVE_OVER_TIME.field}},
    }
    for figure in TERMS_FIGURES:
        aggregations[figure.id] = {"terms": {"field": figure.field, "size": figure.size}}
        if figure.show_missing:
            aggregations[f"{figure.id}-missing"] = {"missing": {"field": figure.field}}
    return {"size": 0, "track_total_hits": True, "aggregations": aggregations}


def _terms_result(figure: TermsFigure, aggregations: dict[str, Any]) -> TermsResult:
    terms = aggregations.get(figure.id, {"buckets": []})
    buckets = [
        Bucket(figure.labels.get(_key_text(bucket), _key_text(bucket)), bucket["doc_count"])
        for bucket in terms["buckets"]
    ]
    other = terms.get("sum_other_doc_count", 0)
    if other:
        buckets.append(Bucket(OTHER_LABEL, other))
    missing = aggregations.get(f"{figure.id}-missing", {}).get("doc_count", 0)
    if missing:
        buckets.append(Bucket(MISSING_LABEL, missing))
    return TermsResult(figure, tuple(buckets))


def _key_text(bucket: dict[str, Any]) -> str:
    key = bucket.get("key_as_string", bucket["key"])
    if isinstance(key, float) and key.is_integer():
        key = int(key)
    return str(key)


def histogram_interval(first: datetime, last: datetime) -> str:
    """Return the calendar interval for a span: hours up to 2 days, days up to 120, then weeks."""
    span = last - first
    for longest, interval in _INTERVALS:
        if span <= longest:
            return interval
    return _MAX_INTERVAL


def _read_histogram(client: Any, first_ms: float | None, last_ms: float | None) -> HistogramResult:
    if first_ms is None or last_ms is None:
        return HistogramResult(LIVE_OVER_TIME, "day", ())
    first, last = _from_millis(first_ms), _from_millis(last_ms)
    interval = histogram_interval(first, last)
    body = {
        "size": 0,
        "aggregations": {
            "over_time": {
                "date_histogram": {
                    "field": LIVE_OVER_TIME.field,
                    "calendar_interval": interval,
                    "min_doc_count": 0,
                }
            }
        },
    }
    response = _search(client, "live indicators over time", body)
    buckets = tuple(
        (_from_millis(bucket["key"]), bucket["doc_count"])
        for bucket in response["aggregations"]["over_time"]["buckets"]
    )
    return HistogramResult(LIVE_OVER_TIME, interval, buckets)


def _read_list(client: Any, definition: IndicatorList, now: datetime) -> IndicatorListResult:
    body = {
        "size": LIST_ROWS,
        "track_total_hits": True,
        "query": window_query(definition, now),
        "sort": [
            {name: {"order": definition.order, "unmapped_type": "date", "missing": "_last"}}
            for name in definition.fields
        ],
        "_source": sorted({*LIST_COLUMNS, *VALUE_FIELDS, *definition.fields}),
    }
    response = _search(client, f"indicator list {definition.id}", body)
    rows = tuple(_indicator_row(hit.get("_source", {}), definition) for hit in response["hits"]["hits"])
    return IndicatorListResult(definition, _total_hits(response), rows)


def _indicator_row(source: dict[str, Any], definition: IndicatorList) -> IndicatorRow:
    when = None
    for name in definition.fields:
        when = _parse_date(get_field(source, name))
        if when is not None:
            break
    value = next((text for name in VALUE_FIELDS if (text := as_text(get_field(source, name)))), "")
    return IndicatorRow(
        when=when,
        value=value,
        indicator_type=as_text(get_field(source, "threat.indicator.type")),
        provider=as_text(get_field(source, "threat.indicator.provider")),
        confidence=as_text(get_field(source, "threat.indicator.confidence")),
        tlp=as_text(get_field(source, "threat.indicator.marking.tlp")),
    )


def as_text(value: Any) -> str:
    """Return a field value as display text: lists joined with commas, None as empty text."""
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(as_text(item) for item in value if item is not None)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _parse_date(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_timestamp(value).astimezone(UTC)
    except ValueError:
        return None


def _from_millis(value: float) -> datetime:
    return datetime.fromtimestamp(value / 1000, tz=UTC)


def _total_hits(response: dict[str, Any]) -> int:
    total = response["hits"]["total"]
    return int(total["value"] if isinstance(total, dict) else total)


def _search(client: Any, operation: str, body: dict[str, Any]) -> dict[str, Any]:
    try:
        response: dict[str, Any] = client.search(index=",".join(LATEST_ALIASES), body=body, params=SEARCH_PARAMS)
    except EngineConnectionError as exc:
        raise ReportQueryError(f"{operation}: the engine could not be reached ({type(exc).__name__})") from exc
    except TransportError as exc:
        raise ReportQueryError(f"{operation}: the engine returned HTTP {exc.status_code}: {exc.error}") from exc
    return response
