"""The figures of the overview: one definition that the report and the saved objects both read.

Each figure names the field it aggregates and how. `local/dashboards_build.py` turns these into
Kibana and OpenSearch Dashboards visualizations, and the report queries and draws the same ones,
so the overview dashboard and the report show the same numbers for the same data.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import timedelta

from ti_anomali.ecs.common import FEED_DASHBOARD_ID, SEVERITY_BY_NAME
from ti_anomali.engine import templates

# NOTE: the documents of both datasets carry this id in `threat.feed.dashboard_id`, so a rule
# alert or a document in Discover can link to the overview dashboard.
OVERVIEW_DASHBOARD_ID = FEED_DASHBOARD_ID
DATA_VIEW_ID = "ti-anomali-latest"
DATA_VIEW_TITLE = "logs-ti_anomali_latest.*"
LATEST_ALIASES = tuple(templates.latest_alias(dataset) for dataset in templates.DATASETS)

# The dashboards open on this time range of `@timestamp`, the time the newest update of each live
# indicator was ingested. It covers every live indicator as long as IOC_DURATION is at most 90 days.
DASHBOARD_TIME_FROM = "now-90d"

NEW_WINDOW = timedelta(days=7)
EXPIRY_WINDOW = timedelta(days=7)
TOP_TERMS = 10
LIST_ROWS = 20

# When ThreatStream added an indicator: `event.created` in the intelligence dataset, `added_at` in
# the threatstream dataset. Lists sort by both, so intelligence documents come first.
ADDED_FIELDS = ("event.created", "anomali.threatstream.added_at")
# When an indicator leaves the latest index, per dataset in the same order.
EXPIRY_FIELDS = ("anomali.threatstream.deletion_scheduled_at", "anomali.threatstream.deleted_at")

SEVERITY_LABELS = {str(score): f"{name} ({score})" for name, score in SEVERITY_BY_NAME.items()}


@dataclass(frozen=True)
class TermsFigure:
    """A bar chart of the most frequent values of one field, with the rest counted as `Other`."""

    id: str
    title: str
    field: str
    show_missing: bool = True
    """Whether to add a `(no value)` bar. Kibana and OpenSearch Dashboards offer it for string fields only."""
    labels: dict[str, str] = dataclasses.field(default_factory=dict)
    """Display text of some values. The data view carries the same text as a static lookup format."""
    size: int = TOP_TERMS


@dataclass(frozen=True)
class HistogramFigure:
    """Live indicators counted per interval of a date field."""

    id: str
    title: str
    field: str


@dataclass(frozen=True)
class IndicatorList:
    """Indicators whose date field lies within a window from now, the past one or the next one.

    `fields` contains one date field per dataset. `order` is `desc` for a window in the past, which
    lists the newest first, and `asc` for a window in the future, which lists the soonest first.
    """

    id: str
    title: str
    fields: tuple[str, ...]
    order: str
    window: timedelta

    def kql(self) -> str:
        """Return the filter as a KQL query with date math, as the saved objects store it."""
        days = self.window.days
        condition = f'>= "now-{days}d"' if self.order == "desc" else f'<= "now+{days}d"'
        return " or ".join(f"{name} {condition}" for name in self.fields)


LIVE_OVER_TIME = HistogramFigure("live-over-time", "Live indicators by time of last update", "@timestamp")
TERMS_FIGURES = (
    TermsFigure("by-type", "Indicator type", "threat.indicator.type"),
    TermsFigure("by-severity", "Severity", "event.severity", show_missing=False, labels=SEVERITY_LABELS),
    TermsFigure("by-tlp", "TLP marking", "threat.indicator.marking.tlp"),
    TermsFigure("by-confidence", "Confidence", "threat.indicator.confidence"),
    TermsFigure("by-provider", "Provider", "threat.indicator.provider"),
    TermsFigure("by-country", "Country", "threat.indicator.geo.country_iso_code"),
)
NEWLY_ADDED = IndicatorList("newly-added", "Added in the last 7 days", ADDED_FIELDS, "desc", NEW_WINDOW)
EXPIRING_SOON = IndicatorList("expiring-soon", "Leaving in the next 7 days", EXPIRY_FIELDS, "asc", EXPIRY_WINDOW)

# Columns of the indicator lists, in the report and in the saved searches.
LIST_COLUMNS = (
    "threat.indicator.name",
    "threat.indicator.type",
    "threat.indicator.provider",
    "threat.indicator.confidence",
    "threat.indicator.marking.tlp",
)
