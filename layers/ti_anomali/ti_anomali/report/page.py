"""Assemble the report as one self-contained HTML page.

Indicator values are hostile input. Every piece of text from the engine passes through `escape`
on its way into the page, and indicator values are defanged first. The page has no link, script,
form or external reference. Its content security policy allows inline styles and `data:` images
only, so even a missed escape could not make the page fetch or run anything.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from html import escape

from ti_anomali.report.defang import defang
from ti_anomali.report.figures import LATEST_ALIASES
from ti_anomali.report.queries import HistogramResult, IndicatorListResult, Overview, TermsResult

CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
PAGE_TITLE = "Anomali ThreatStream: live indicators"

_STYLE = """
body { font-family: "DejaVu Sans", Verdana, Arial, sans-serif; color: #1f2933; margin: 24px; max-width: 1120px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 0 0 8px; }
p.note { color: #52606d; margin: 4px 0; }
.summary { display: flex; gap: 16px; flex-wrap: wrap; margin: 16px 0; }
.summary div { border: 1px solid #d9e2ec; border-radius: 4px; padding: 8px 16px; min-width: 180px; }
.summary dt { color: #52606d; }
.summary dd { font-size: 28px; margin: 0; }
.summary dd.detail { font-size: 13px; color: #52606d; }
.grid { display: flex; flex-wrap: wrap; gap: 16px; }
section.figure, section.list { border: 1px solid #d9e2ec; border-radius: 4px; padding: 12px; margin: 0 0 16px; }
details { margin-top: 8px; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border-bottom: 1px solid #e4e7eb; padding: 3px 8px; text-align: left; vertical-align: top; }
td.count { text-align: right; }
td.time { white-space: nowrap; }
td.value { font-family: "DejaVu Sans Mono", monospace; word-break: break-all; max-width: 420px; }
"""


def escape_text(value: str) -> str:
    """Escape text for HTML content and quoted attribute values."""
    return escape(value, quote=True)


def format_time(moment: datetime | None) -> str:
    """Format a time in UTC to the minute, or return an empty string for None."""
    if moment is None:
        return ""
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def render_page(overview: Overview, charts: dict[str, str]) -> str:
    """Return the whole page. `charts` maps each figure id to its SVG, which is trusted markup."""
    generated = format_time(overview.now)
    aliases = " and ".join(LATEST_ALIASES)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{escape_text(CONTENT_SECURITY_POLICY)}">',
        '<meta name="referrer" content="no-referrer">',
        f"<title>{escape_text(PAGE_TITLE)}, {escape_text(generated)}</title>",
        f"<style>{_STYLE}</style>",
        "</head>",
        "<body>",
        f"<h1>{escape_text(PAGE_TITLE)}</h1>",
        f'<p class="note">Read from {escape_text(aliases)} at <time id="generated-at">{escape_text(generated)}'
        "</time>. Indicator values are defanged: hxxp for http, [.] for each dot, [@] for each at sign.</p>",
        *_summary(overview),
        *_histogram_section(overview.over_time, charts),
        '<div class="grid">',
        *(line for result in overview.terms for line in _terms_section(result, charts)),
        "</div>",
        *_list_section(overview.newly_added),
        *_list_section(overview.expiring_soon),
        "</body>",
        "</html>",
    ]
    return "\n".join(parts) + "\n"


def _summary(overview: Overview) -> list[str]:
    datasets = ", ".join(f"{escape_text(name)}: {count:,}" for name, count in sorted(overview.live_by_dataset.items()))
    return [
        '<dl class="summary">',
        _metric("live-total", "Live indicators", overview.live_total, datasets),
        _metric(
            "newly-added-total",
            overview.newly_added.definition.title,
            overview.newly_added.total,
            "",
        ),
        _metric(
            "expiring-soon-total",
            overview.expiring_soon.definition.title,
            overview.expiring_soon.total,
            "",
        ),
        "</dl>",
    ]


def _metric(element_id: str, title: str, count: int, detail: str) -> str:
    note = f'<dd class="detail" id="{element_id}-detail">{detail}</dd>' if detail else ""
    return f'<div><dt>{escape_text(title)}</dt><dd id="{element_id}" data-count="{count}">{count:,}</dd>{note}</div>'


def _histogram_section(result: HistogramResult, charts: dict[str, str]) -> list[str]:
    figure = result.figure
    rows = [(start.strftime("%Y-%m-%d %H:%M"), count) for start, count in result.buckets]
    return [
        f'<section class="figure" id="figure-{figure.id}" data-figure="{figure.id}">',
        f"<h2>{escape_text(figure.title)}</h2>",
        charts[figure.id],
        *_data_table(figure.id, f"{result.interval} starting (UTC)", rows),
        "</section>",
    ]


def _terms_section(result: TermsResult, charts: dict[str, str]) -> list[str]:
    figure = result.figure
    return [
        f'<section class="figure" id="figure-{figure.id}" data-figure="{figure.id}">',
        f"<h2>{escape_text(figure.title)}</h2>",
        f'<p class="note">{escape_text(figure.field)}</p>',
        charts[figure.id],
        *_data_table(figure.id, figure.field, [(bucket.label, bucket.count) for bucket in result.buckets]),
        "</section>",
    ]


def _data_table(figure_id: str, heading: str, rows: Iterable[tuple[str, int]]) -> list[str]:
    lines = [
        "<details><summary>Data</summary>",
        f'<table class="figure-data" data-figure="{figure_id}">',
        f"<tr><th>{escape_text(heading)}</th><th>indicators</th></tr>",
    ]
    for label, count in rows:
        text = escape_text(label)
        lines.append(
            f'<tr data-label="{text}" data-count="{count}"><td>{text}</td><td class="count">{count:,}</td></tr>'
        )
    lines += ["</table>", "</details>"]
    return lines


def _list_section(result: IndicatorListResult) -> list[str]:
    definition = result.definition
    listed = len(result.rows)
    fields = " or ".join(definition.fields)
    lines = [
        f'<section class="list" id="list-{definition.id}" data-total="{result.total}">',
        f"<h2>{escape_text(definition.title)}</h2>",
        f'<p class="note">{listed} of {result.total:,} by {escape_text(fields)}, '
        f"{'newest' if definition.order == 'desc' else 'soonest'} first.</p>",
        f'<table class="indicators" data-list="{definition.id}">',
        "<tr><th>time</th><th>value</th><th>type</th><th>provider</th><th>confidence</th><th>TLP</th></tr>",
    ]
    for row in result.rows:
        cells = (
            f'<td class="time">{escape_text(format_time(row.when))}</td>',
            f'<td class="value">{escape_text(defang(row.value))}</td>',
            f"<td>{escape_text(row.indicator_type)}</td>",
            f"<td>{escape_text(row.provider)}</td>",
            f"<td>{escape_text(row.confidence)}</td>",
            f"<td>{escape_text(row.tlp)}</td>",
        )
        lines.append(f"<tr>{''.join(cells)}</tr>")
    if not result.rows:
        lines.append('<tr><td colspan="6">None</td></tr>')
    lines += ["</table>", "</section>"]
    return lines
