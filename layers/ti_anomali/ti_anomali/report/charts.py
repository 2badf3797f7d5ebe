"""Draw the overview's figures as standalone SVG, and render an SVG to PNG.

The SVG uses presentation attributes only, with no script, style sheet, link or external
reference, so the same text works inline in the page and as a file cairosvg can render. Every
label is escaped here; callers hand in raw text.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from html import escape
from pathlib import Path

from ti_anomali.report.queries import MISSING_LABEL, OTHER_LABEL, Bucket

FONT = "DejaVu Sans, Verdana, Arial, sans-serif"
FONT_SIZE_PX = 12
TEXT_COLOR = "#1f2933"
MUTED_COLOR = "#7b8794"
BAR_COLOR = "#2f6f9f"
REST_COLOR = "#9aa5b1"
GRID_COLOR = "#d9e2ec"

BAR_CHART_WIDTH = 520
BAR_LABEL_WIDTH = 190
BAR_COUNT_WIDTH = 64
BAR_ROW_HEIGHT = 24
BAR_HEIGHT = 16
LABEL_MAX_CHARS = 24

HISTOGRAM_WIDTH = 1060
HISTOGRAM_HEIGHT = 260
HISTOGRAM_MARGINS = {"top": 16, "right": 16, "bottom": 44, "left": 56}
HISTOGRAM_MAX_TICK_LABELS = 8
HISTOGRAM_MAX_BAR_WIDTH = 56
PNG_SCALE = 2

_TICK_FORMATS = {"hour": "%m-%d %H:00", "day": "%Y-%m-%d", "week": "%Y-%m-%d"}


class PngRenderingError(Exception):
    """The PNG of a chart could not be rendered. The message names the packages to install."""


def _text(value: str) -> str:
    return escape(value, quote=True)


def _short(label: str) -> str:
    if len(label) <= LABEL_MAX_CHARS:
        return label
    return label[: LABEL_MAX_CHARS - 1] + "\u2026"


def _open_svg(width: int, height: int, title: str, chart_id: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-labelledby="{chart_id}-title" '
        f'font-family="{_text(FONT)}" font-size="{FONT_SIZE_PX}" fill="{TEXT_COLOR}">',
        f'<title id="{chart_id}-title">{_text(title)}</title>',
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
    ]


def bar_chart_svg(chart_id: str, title: str, buckets: Sequence[Bucket]) -> str:
    """Draw one horizontal bar per bucket, in the given order and scaled to the largest, with its count."""
    if not buckets:
        return _empty_svg(chart_id, title, BAR_CHART_WIDTH)

    height = len(buckets) * BAR_ROW_HEIGHT + 8
    parts = _open_svg(BAR_CHART_WIDTH, height, title, chart_id)
    largest = max(bucket.count for bucket in buckets) or 1
    bar_room = BAR_CHART_WIDTH - BAR_LABEL_WIDTH - BAR_COUNT_WIDTH
    for row, bucket in enumerate(buckets):
        top = 4 + row * BAR_ROW_HEIGHT
        baseline = top + BAR_ROW_HEIGHT / 2 + FONT_SIZE_PX / 2 - 2
        width = max(1.0, bar_room * bucket.count / largest)
        color = REST_COLOR if bucket.label in (OTHER_LABEL, MISSING_LABEL) else BAR_COLOR
        parts += [
            "<g>",
            f"<title>{_text(bucket.label)}: {bucket.count}</title>",
            f'<text x="{BAR_LABEL_WIDTH - 8}" y="{baseline:.1f}" text-anchor="end">'
            f"{_text(_short(bucket.label))}</text>",
            f'<rect x="{BAR_LABEL_WIDTH}" y="{top + (BAR_ROW_HEIGHT - BAR_HEIGHT) / 2:.1f}" '
            f'width="{width:.1f}" height="{BAR_HEIGHT}" fill="{color}"/>',
            f'<text x="{BAR_LABEL_WIDTH + width + 6:.1f}" y="{baseline:.1f}">{bucket.count:,}</text>',
            "</g>",
        ]
    parts.append("</svg>")
    return "".join(parts)


def histogram_svg(chart_id: str, title: str, buckets: Sequence[tuple[datetime, int]], interval: str) -> str:
    """Draw one vertical bar per interval, with a count axis and up to eight date labels."""
    if not buckets:
        return _empty_svg(chart_id, title, HISTOGRAM_WIDTH)

    margins = HISTOGRAM_MARGINS
    plot_width = HISTOGRAM_WIDTH - margins["left"] - margins["right"]
    plot_height = HISTOGRAM_HEIGHT - margins["top"] - margins["bottom"]
    axis_max = nice_ceiling(max(count for _, count in buckets))
    parts = _open_svg(HISTOGRAM_WIDTH, HISTOGRAM_HEIGHT, title, chart_id)

    bottom = margins["top"] + plot_height
    for tick in (0, axis_max / 2, axis_max):
        y = bottom - plot_height * tick / axis_max
        parts.append(
            f'<line x1="{margins["left"]}" y1="{y:.1f}" x2="{HISTOGRAM_WIDTH - margins["right"]}" '
            f'y2="{y:.1f}" stroke="{GRID_COLOR}"/>'
        )
        parts.append(
            f'<text x="{margins["left"] - 6}" y="{y + 4:.1f}" text-anchor="end" fill="{MUTED_COLOR}">'
            f"{_axis_number(tick)}</text>"
        )

    slot = plot_width / len(buckets)
    bar_width = min(HISTOGRAM_MAX_BAR_WIDTH, max(1.0, slot * 0.8))
    label_every = max(1, math.ceil(len(buckets) / HISTOGRAM_MAX_TICK_LABELS))
    tick_format = _TICK_FORMATS.get(interval, "%Y-%m-%d %H:%M")
    for index, (start, count) in enumerate(buckets):
        x = margins["left"] + index * slot
        bar_height = plot_height * count / axis_max
        parts.append("<g>")
        parts.append(f"<title>{_text(start.strftime(tick_format))}: {count}</title>")
        if count:
            parts.append(
                f'<rect x="{x + (slot - bar_width) / 2:.1f}" y="{bottom - bar_height:.1f}" '
                f'width="{bar_width:.1f}" height="{bar_height:.1f}" fill="{BAR_COLOR}"/>'
            )
        if index % label_every == 0:
            parts.append(
                f'<text x="{x + slot / 2:.1f}" y="{bottom + 18}" text-anchor="middle" fill="{MUTED_COLOR}">'
                f"{_text(start.strftime(tick_format))}</text>"
            )
        parts.append("</g>")
    parts.append(
        f'<text x="{margins["left"] + plot_width / 2:.1f}" y="{HISTOGRAM_HEIGHT - 6}" text-anchor="middle" '
        f'fill="{MUTED_COLOR}">@timestamp per {_text(interval)} (UTC)</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def _empty_svg(chart_id: str, title: str, width: int) -> str:
    parts = _open_svg(width, 40, title, chart_id)
    parts.append(f'<text x="8" y="24" fill="{MUTED_COLOR}">No live indicators</text></svg>')
    return "".join(parts)


def nice_ceiling(value: int) -> int:
    """Return the top of the count axis: the smallest even 1, 2, 4 or 6 times a power of ten >= `value`.

    Being even, it puts the middle grid line on a whole number of indicators.
    """
    if value <= 2:
        return 2
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 4, 6, 10):
        top = step * power
        if top >= value and top % 2 == 0:
            return top
    return 10 * power


def _axis_number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def svg_to_png(svg: str, path: Path) -> None:
    """Render an SVG document to a PNG file at twice its size, with cairosvg.

    Raises `PngRenderingError` when cairosvg or the cairo library it loads is missing.
    """
    try:
        import cairosvg
    except (ImportError, OSError) as exc:
        raise PngRenderingError(
            f"rendering PNG files needs cairosvg and libcairo ({type(exc).__name__}: {exc}); "
            "install them with `pip install 'ti-anomali[report]'` and your system's libcairo2 package, "
            "or pass --no-png"
        ) from exc
    cairosvg.svg2png(bytestring=svg.encode("utf-8"), write_to=str(path), scale=PNG_SCALE)
