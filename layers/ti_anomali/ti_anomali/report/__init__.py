"""The overview report: the overview dashboard's figures as one HTML file and a PNG per chart.

The report reads the latest aliases of a running engine and needs no Kibana or OpenSearch
Dashboards. The HTML opens offline. The PNG files need cairosvg, from the `report` extra.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ti_anomali.report.charts import bar_chart_svg, histogram_svg, svg_to_png
from ti_anomali.report.page import render_page
from ti_anomali.report.queries import Overview, read_overview

__all__ = ["HTML_NAME", "ReportFiles", "render_charts", "write_report"]

HTML_NAME = "ti-anomali-report.html"


@dataclass(frozen=True)
class ReportFiles:
    """The files one report run wrote, and the figures it read."""

    html: Path
    pngs: tuple[Path, ...]
    overview: Overview


def render_charts(overview: Overview) -> dict[str, str]:
    """Return the SVG of every chart of the overview, by figure id, in the page's order."""
    over_time = overview.over_time
    charts = {
        over_time.figure.id: histogram_svg(
            over_time.figure.id, over_time.figure.title, over_time.buckets, over_time.interval
        )
    }
    for result in overview.terms:
        charts[result.figure.id] = bar_chart_svg(result.figure.id, result.figure.title, result.buckets)
    return charts


def write_report(client: Any, output_dir: Path, *, now: datetime | None = None, png: bool = True) -> ReportFiles:
    """Read the latest aliases through `client` and write the HTML page and, with `png`, one PNG per chart.

    The HTML goes to `output_dir/ti-anomali-report.html` and each PNG to `output_dir/<figure id>.png`,
    replacing files of an earlier run. Raises `ReportQueryError` when a search fails and
    `PngRenderingError` when cairosvg cannot render; the HTML is written before the PNG files.
    """
    overview = read_overview(client, now or datetime.now(UTC))
    charts = render_charts(overview)

    output_dir.mkdir(parents=True, exist_ok=True)
    html_path = output_dir / HTML_NAME
    html_path.write_text(render_page(overview, charts), encoding="utf-8")

    pngs: list[Path] = []
    if png:
        for figure_id, svg in charts.items():
            path = output_dir / f"{figure_id}.png"
            svg_to_png(svg, path)
            pngs.append(path)
    return ReportFiles(html_path, tuple(pngs), overview)
