"""Write the saved objects of the dashboards as NDJSON, one file per dashboard, for both front ends.

    python -m local.dashboards_build          # rewrite dashboards/kibana and dashboards/opensearch-dashboards
    python -m local.dashboards_build --check  # exit 1 when a file differs from what this module builds

Each file contains a dashboard and everything it refers to: the data view on the latest aliases, the
visualizations and the saved searches, so it can also be imported alone from the UI. The
overview's figures come from `ti_anomali.report.figures`, which the report draws as well.

Both front ends get aggregation-based visualizations (not Lens), which both still import and
render. The two flavours differ only in how the objects declare their version and how a dashboard
names its panel references:
- Kibana: `coreMigrationVersion` and `typeMigrationVersion`, shaped like the objects Kibana 8.8
  and later export, panel references named `<panel index>:panel_<panel index>`;
- OpenSearch Dashboards: `migrationVersion` of the 7.10 line it was forked from, panel references
  named `panel_<n>`.
Kibana migrates objects of older type versions forward on import.

NOTE: no import into a running Kibana or OpenSearch Dashboards has been tried, because neither
can be installed here. The shapes follow the sample data objects that Kibana 8.x and OpenSearch
Dashboards 2.x ship, and tests/unit/test_dashboards.py checks them against the index templates.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ti_anomali.report.figures import (
    DASHBOARD_TIME_FROM,
    DATA_VIEW_ID,
    DATA_VIEW_TITLE,
    EXPIRING_SOON,
    LIST_COLUMNS,
    LIVE_OVER_TIME,
    NEWLY_ADDED,
    OVERVIEW_DASHBOARD_ID,
    SEVERITY_LABELS,
    TERMS_FIGURES,
    IndicatorList,
    TermsFigure,
)

REPO = Path(__file__).resolve().parent.parent
OUTPUT_DIRS = {
    "kibana": REPO / "dashboards" / "kibana",
    "opensearch-dashboards": REPO / "dashboards" / "opensearch-dashboards",
}
FLAVOURS = tuple(OUTPUT_DIRS)

KIBANA_CORE_VERSION = "8.8.0"
KIBANA_TYPE_VERSIONS = {
    "index-pattern": "7.11.0",
    "search": "7.9.3",
    "visualization": "8.0.0",
    "dashboard": "8.7.0",
}
OSD_TYPE_VERSIONS = {
    "index-pattern": "7.6.0",
    "search": "7.9.3",
    "visualization": "7.10.0",
    "dashboard": "7.9.3",
}
OSD_PANEL_VERSION = "7.10.2"
INDEX_REF_NAME = "kibanaSavedObjectMeta.searchSourceJSON.index"
GRID_COLUMNS = 48

# KQL filters of the topic dashboards. A file indicator has at least one hash.
_HASH_FIELDS = ("md5", "sha1", "sha256", "sha384", "sha512", "ssdeep")
FILES_QUERY = " or ".join(f"threat.indicator.file.hash.{name}:*" for name in _HASH_FIELDS)
URLS_DOMAINS_QUERY = "threat.indicator.url.original:* or threat.indicator.url.domain:*"
OTHER_QUERY = f"not ({FILES_QUERY}) and not ({URLS_DOMAINS_QUERY})"


# --- the objects, independent of the flavour ---------------------------------------------------


@dataclass(frozen=True)
class Visualization:
    """An aggregation-based visualization. The saved object stores `vis_state` as JSON text."""

    id: str
    title: str
    description: str
    query: str
    vis_state: dict[str, Any]


@dataclass(frozen=True)
class SavedSearch:
    """A saved search: a query, the columns Discover shows, and the sort."""

    id: str
    title: str
    description: str
    query: str
    columns: tuple[str, ...]
    sort: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Panel:
    """One panel of a dashboard: what it shows, and its width and height in grid units."""

    item: Visualization | SavedSearch
    width: int
    height: int


@dataclass(frozen=True)
class Dashboard:
    """A dashboard and its panels, laid out left to right and top to bottom."""

    id: str
    title: str
    description: str
    panels: tuple[Panel, ...]


def metric(object_id: str, title: str, label: str, query: str, description: str) -> Visualization:
    """Build a metric visualization: the count of live indicators matching `query`."""
    vis_state = {
        "title": title,
        "type": "metric",
        "aggs": [_count_agg(label)],
        "params": {
            "type": "metric",
            "addTooltip": True,
            "addLegend": False,
            "metric": {
                "percentageMode": False,
                "useRanges": False,
                "colorSchema": "Green to Red",
                "metricColorMode": "None",
                "colorsRange": [{"from": 0, "to": 10000}],
                "labels": {"show": True},
                "invertColors": False,
                "style": {"bgFill": "#000", "bgColor": False, "labelColor": False, "subText": "", "fontSize": 48},
            },
        },
    }
    return Visualization(object_id, title, description, query, vis_state)


def date_histogram(object_id: str, title: str, field: str, query: str, description: str) -> Visualization:
    """Build a vertical bar chart of live indicators per automatic interval of a date field."""
    vis_state = {
        "title": title,
        "type": "histogram",
        "aggs": [
            _count_agg("Indicators"),
            {
                "id": "2",
                "enabled": True,
                "type": "date_histogram",
                "schema": "segment",
                "params": {
                    "field": field,
                    "interval": "auto",
                    "min_doc_count": 1,
                    "extended_bounds": {},
                    "customLabel": field,
                },
            },
        ],
        "params": _xy_params("histogram", category_position="bottom", value_position="left"),
    }
    return Visualization(object_id, title, description, query, vis_state)


def terms_bars(object_id: str, figure: TermsFigure, query: str, description: str) -> Visualization:
    """Build a horizontal bar chart of a terms figure, with `Other` and, for strings, `(no value)`."""
    vis_state = {
        "title": figure.title,
        "type": "horizontal_bar",
        "aggs": [
            _count_agg("Indicators"),
            {
                "id": "2",
                "enabled": True,
                "type": "terms",
                "schema": "segment",
                "params": {
                    "field": figure.field,
                    "size": figure.size,
                    "order": "desc",
                    "orderBy": "1",
                    "otherBucket": True,
                    "otherBucketLabel": "Other",
                    "missingBucket": figure.show_missing,
                    "missingBucketLabel": "(no value)",
                    "customLabel": figure.title,
                },
            },
        ],
        "params": _xy_params("histogram", category_position="left", value_position="bottom"),
    }
    return Visualization(object_id, figure.title, description, query, vis_state)


def _count_agg(label: str) -> dict[str, Any]:
    return {"id": "1", "enabled": True, "type": "count", "schema": "metric", "params": {"customLabel": label}}


def _xy_params(series_type: str, *, category_position: str, value_position: str) -> dict[str, Any]:
    """Return the axis and series settings of a bar chart. Categories on the left make it horizontal."""
    horizontal = category_position == "left"
    return {
        "type": "histogram",
        "addTooltip": True,
        "addLegend": False,
        "legendPosition": "right",
        "times": [],
        "addTimeMarker": False,
        "grid": {"categoryLines": False},
        "labels": {"show": horizontal},
        "categoryAxes": [
            {
                "id": "CategoryAxis-1",
                "type": "category",
                "position": category_position,
                "show": True,
                "style": {},
                "scale": {"type": "linear"},
                "labels": {"show": True, "filter": not horizontal, "truncate": 200 if horizontal else 100},
                "title": {},
            }
        ],
        "valueAxes": [
            {
                "id": "ValueAxis-1",
                "name": "LeftAxis-1",
                "type": "value",
                "position": value_position,
                "show": True,
                "style": {},
                "scale": {"type": "linear", "mode": "normal"},
                "labels": {"show": True, "rotate": 0, "filter": False, "truncate": 100},
                "title": {"text": "Indicators"},
            }
        ],
        "seriesParams": [
            {
                "show": True,
                "type": series_type,
                "mode": "normal",
                "data": {"label": "Indicators", "id": "1"},
                "valueAxis": "ValueAxis-1",
                "drawLinesBetweenPoints": True,
                "showCircles": True,
            }
        ],
    }


def indicator_list(object_id: str, definition: IndicatorList, description: str) -> SavedSearch:
    """Build the saved search of an indicator list: its window as KQL, sorted on each dataset's field."""
    columns = (definition.fields[0], *LIST_COLUMNS, definition.fields[1])
    sort = tuple((name, definition.order) for name in definition.fields)
    return SavedSearch(object_id, definition.title, description, definition.kql(), columns, sort)


# --- the four dashboards ------------------------------------------------------------------------


def overview_dashboard() -> Dashboard:
    """Build the overview: counts, live indicators over time, the six breakdowns, the two lists."""
    prefix = OVERVIEW_DASHBOARD_ID
    panels = [
        Panel(
            metric(
                f"{prefix}-live-total",
                "Live indicators",
                "Live indicators",
                "",
                "Indicators in the latest indices: the newest update of each, while it is live.",
            ),
            16,
            7,
        ),
        Panel(
            metric(
                f"{prefix}-newly-added-total",
                NEWLY_ADDED.title,
                NEWLY_ADDED.title,
                NEWLY_ADDED.kql(),
                "Live indicators that ThreatStream created in the last 7 days.",
            ),
            16,
            7,
        ),
        Panel(
            metric(
                f"{prefix}-expiring-soon-total",
                EXPIRING_SOON.title,
                EXPIRING_SOON.title,
                EXPIRING_SOON.kql(),
                "Live indicators whose expiry or IOC duration ends within 7 days.",
            ),
            16,
            7,
        ),
        Panel(
            date_histogram(
                f"{prefix}-{LIVE_OVER_TIME.id}",
                LIVE_OVER_TIME.title,
                LIVE_OVER_TIME.field,
                "",
                "When the newest update of each live indicator was ingested.",
            ),
            GRID_COLUMNS,
            12,
        ),
        *(
            Panel(terms_bars(f"{prefix}-{figure.id}", figure, "", f"Live indicators by {figure.field}."), 24, 13)
            for figure in TERMS_FIGURES
        ),
        Panel(
            indicator_list(
                f"{prefix}-{NEWLY_ADDED.id}", NEWLY_ADDED, "Live indicators created in the last 7 days, newest first."
            ),
            GRID_COLUMNS,
            15,
        ),
        Panel(
            indicator_list(
                f"{prefix}-{EXPIRING_SOON.id}",
                EXPIRING_SOON,
                "Live indicators that leave the latest index within 7 days, soonest first.",
            ),
            GRID_COLUMNS,
            15,
        ),
    ]
    return Dashboard(
        OVERVIEW_DASHBOARD_ID,
        "Anomali ThreatStream: overview",
        "Live Anomali ThreatStream indicators, read from the latest aliases that detection rules use.",
        tuple(panels),
    )


def topic_dashboard(
    dashboard_id: str,
    title: str,
    subject: str,
    query: str,
    figures: Sequence[TermsFigure],
    columns: tuple[str, ...],
) -> Dashboard:
    """Build a dashboard about one kind of indicator: its count, breakdowns and a list of all of them."""
    panels = [
        Panel(metric(f"{dashboard_id}-total", f"Live {subject}", f"Live {subject}", query, f"Live {subject}."), 16, 7),
        *(
            Panel(
                terms_bars(f"{dashboard_id}-{figure.id}", figure, query, f"Live {subject} by {figure.field}."), 24, 13
            )
            for figure in figures
        ),
        Panel(
            SavedSearch(
                f"{dashboard_id}-list",
                f"Live {subject}",
                "Every live indicator of this dashboard, most recently updated first.",
                query,
                columns,
                (("@timestamp", "desc"),),
            ),
            GRID_COLUMNS,
            18,
        ),
    ]
    return Dashboard(dashboard_id, title, f"Live Anomali ThreatStream {subject}.", tuple(panels))


def all_dashboards() -> tuple[Dashboard, ...]:
    """Return the overview and the three topic dashboards."""
    files = topic_dashboard(
        "ti-anomali-files",
        "Anomali ThreatStream: file hashes",
        "file hash indicators",
        FILES_QUERY,
        (
            TermsFigure("by-itype", "ThreatStream indicator type", "anomali.threatstream.itype"),
            TermsFigure("by-provider", "Provider", "threat.indicator.provider"),
            TermsFigure("by-severity", "Severity", "event.severity", show_missing=False, labels=SEVERITY_LABELS),
        ),
        (
            "threat.indicator.file.hash.md5",
            "threat.indicator.file.hash.sha1",
            "threat.indicator.file.hash.sha256",
            "threat.indicator.file.hash.ssdeep",
            "anomali.threatstream.itype",
            "threat.indicator.provider",
            "threat.indicator.confidence",
        ),
    )
    urls = topic_dashboard(
        "ti-anomali-urls-domains",
        "Anomali ThreatStream: URLs and domains",
        "URL and domain indicators",
        URLS_DOMAINS_QUERY,
        (
            TermsFigure("by-domain", "Domain", "threat.indicator.url.domain"),
            TermsFigure("by-scheme", "URL scheme", "threat.indicator.url.scheme"),
            TermsFigure("by-itype", "ThreatStream indicator type", "anomali.threatstream.itype"),
            TermsFigure("by-provider", "Provider", "threat.indicator.provider"),
        ),
        (
            "threat.indicator.url.original",
            "threat.indicator.url.domain",
            "threat.indicator.type",
            "anomali.threatstream.itype",
            "threat.indicator.provider",
            "threat.indicator.confidence",
        ),
    )
    other = topic_dashboard(
        "ti-anomali-other-indicators",
        "Anomali ThreatStream: other indicators",
        "IP, email and other indicators",
        OTHER_QUERY,
        (
            TermsFigure("by-type", "Indicator type", "threat.indicator.type"),
            TermsFigure("by-as-organization", "Autonomous system", "threat.indicator.as.organization.name"),
            TermsFigure("by-country", "Country", "threat.indicator.geo.country_iso_code"),
            TermsFigure("by-itype", "ThreatStream indicator type", "anomali.threatstream.itype"),
        ),
        (
            "threat.indicator.name",
            "threat.indicator.type",
            "threat.indicator.ip",
            "threat.indicator.email.address",
            "anomali.threatstream.itype",
            "threat.indicator.provider",
        ),
    )
    return (overview_dashboard(), files, urls, other)


# --- saved objects, per flavour ------------------------------------------------------------------


def data_view(flavour: str) -> dict[str, Any]:
    """Return the data view (index pattern) on the latest aliases, with severity shown by name."""
    lookup = [{"key": key, "value": value} for key, value in SEVERITY_LABELS.items()]
    attributes: dict[str, Any] = {
        "title": DATA_VIEW_TITLE,
        "timeFieldName": "@timestamp",
        "fields": "[]",
        "fieldFormatMap": _json(
            {"event.severity": {"id": "static_lookup", "params": {"lookupEntries": lookup, "unknownKeyValue": None}}}
        ),
    }
    if flavour == "kibana":
        attributes["name"] = "Anomali ThreatStream latest indicators"
    return _saved_object(flavour, "index-pattern", DATA_VIEW_ID, attributes, [])


def _search_source(query: str) -> str:
    return _json({"query": {"query": query, "language": "kuery"}, "filter": [], "indexRefName": INDEX_REF_NAME})


def _data_view_reference() -> dict[str, str]:
    return {"name": INDEX_REF_NAME, "type": "index-pattern", "id": DATA_VIEW_ID}


def visualization_object(flavour: str, item: Visualization) -> dict[str, Any]:
    """Return the saved object of a visualization."""
    attributes = {
        "title": item.title,
        "description": item.description,
        "visState": _json(item.vis_state),
        "uiStateJSON": "{}",
        "version": 1,
        "kibanaSavedObjectMeta": {"searchSourceJSON": _search_source(item.query)},
    }
    return _saved_object(flavour, "visualization", item.id, attributes, [_data_view_reference()])


def search_object(flavour: str, item: SavedSearch) -> dict[str, Any]:
    """Return the saved object of a saved search."""
    attributes = {
        "title": item.title,
        "description": item.description,
        "hits": 0,
        "columns": list(item.columns),
        "sort": [list(pair) for pair in item.sort],
        "version": 1,
        "kibanaSavedObjectMeta": {"searchSourceJSON": _search_source(item.query)},
    }
    return _saved_object(flavour, "search", item.id, attributes, [_data_view_reference()])


def dashboard_object(flavour: str, dashboard: Dashboard) -> dict[str, Any]:
    """Return the saved object of a dashboard, its panels placed in rows of the 48-column grid."""
    panels: list[dict[str, Any]] = []
    references: list[dict[str, str]] = []
    x = y = row_height = 0
    for number, panel in enumerate(dashboard.panels):
        if x + panel.width > GRID_COLUMNS:
            x, y, row_height = 0, y + row_height, 0
        panel_index = str(number + 1)
        kind = "visualization" if isinstance(panel.item, Visualization) else "search"
        grid = {"x": x, "y": y, "w": panel.width, "h": panel.height, "i": panel_index}
        x, row_height = x + panel.width, max(row_height, panel.height)

        if flavour == "kibana":
            ref_name = f"panel_{panel_index}"
            panels.append(
                {
                    "version": KIBANA_TYPE_VERSIONS["dashboard"],
                    "type": kind,
                    "gridData": grid,
                    "panelIndex": panel_index,
                    "embeddableConfig": {"enhancements": {}},
                    "panelRefName": ref_name,
                }
            )
            references.append({"name": f"{panel_index}:{ref_name}", "type": kind, "id": panel.item.id})
        else:
            ref_name = f"panel_{number}"
            panels.append(
                {
                    "version": OSD_PANEL_VERSION,
                    "gridData": grid,
                    "panelIndex": panel_index,
                    "embeddableConfig": {},
                    "panelRefName": ref_name,
                }
            )
            references.append({"name": ref_name, "type": kind, "id": panel.item.id})

    attributes = {
        "title": dashboard.title,
        "description": dashboard.description,
        "hits": 0,
        "panelsJSON": _json(panels),
        "optionsJSON": _json({"useMargins": True, "hidePanelTitles": False}),
        "version": 1,
        "timeRestore": True,
        "timeFrom": DASHBOARD_TIME_FROM,
        "timeTo": "now",
        "refreshInterval": {"pause": True, "value": 0},
        "kibanaSavedObjectMeta": {
            "searchSourceJSON": _json({"query": {"query": "", "language": "kuery"}, "filter": []})
        },
    }
    return _saved_object(flavour, "dashboard", dashboard.id, attributes, references)


def _saved_object(
    flavour: str, object_type: str, object_id: str, attributes: dict[str, Any], references: list[dict[str, str]]
) -> dict[str, Any]:
    saved: dict[str, Any] = {"id": object_id, "type": object_type, "attributes": attributes, "references": references}
    if flavour == "kibana":
        saved["coreMigrationVersion"] = KIBANA_CORE_VERSION
        saved["typeMigrationVersion"] = KIBANA_TYPE_VERSIONS[object_type]
    else:
        saved["migrationVersion"] = {object_type: OSD_TYPE_VERSIONS[object_type]}
    return saved


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def saved_objects(flavour: str, dashboard: Dashboard) -> list[dict[str, Any]]:
    """Return the objects of one dashboard's file: the data view, its panels' objects, the dashboard."""
    builders: dict[type, Callable[[str, Any], dict[str, Any]]] = {
        Visualization: visualization_object,
        SavedSearch: search_object,
    }
    objects = [data_view(flavour)]
    objects += [builders[type(panel.item)](flavour, panel.item) for panel in dashboard.panels]
    objects.append(dashboard_object(flavour, dashboard))
    return objects


def render_files() -> dict[Path, str]:
    """Return the text of every NDJSON file by path: one object a line, ending with a newline."""
    files = {}
    for flavour, folder in OUTPUT_DIRS.items():
        for dashboard in all_dashboards():
            lines = [
                json.dumps(obj, ensure_ascii=False, separators=(",", ":")) for obj in saved_objects(flavour, dashboard)
            ]
            files[folder / f"{dashboard.id}.ndjson"] = "\n".join(lines) + "\n"
    return files


def main(argv: list[str] | None = None) -> int:
    """Write the files, or with --check list the ones that differ, and return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m local.dashboards_build", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 when a file is out of date")
    args = parser.parse_args(argv)

    files = render_files()
    stale = [path for path, text in files.items() if not path.exists() or path.read_text(encoding="utf-8") != text]
    extra = [path for folder in OUTPUT_DIRS.values() for path in sorted(folder.glob("*.ndjson")) if path not in files]
    if args.check:
        for path in stale:
            print(f"out of date: {path.relative_to(REPO)}; run python -m local.dashboards_build", file=sys.stderr)
        for path in extra:
            print(f"not built by local.dashboards_build: {path.relative_to(REPO)}", file=sys.stderr)
        return 1 if stale or extra else 0

    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    for path in extra:
        path.unlink()
    print(f"wrote {len(files)} files, {len(stale)} changed, {len(extra)} removed", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
