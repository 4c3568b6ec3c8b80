"""Bar charts drawn on the server as inline SVG: no chart library, no script, nothing from a CDN.

Each chart is an image with a title and a description for screen readers, every bar carries
its label and value as text (and a tooltip with both in full), so the chart reads the same
without colour or a mouse.
"""

from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

# About the width the admin's content column gives it at 1280 px, so text is drawn near 13 px.
WIDTH = 860
LABEL_WIDTH = 300
VALUE_WIDTH = 220
ROW_HEIGHT = 26
BAR_HEIGHT = 16
PADDING = 6
LABEL_CHARS = 44
BAR_COLOUR = "#417690"  # the admin's own blue, so the charts belong to the page
TEXT_COLOUR = "#333"


@dataclass(frozen=True)
class Bar:
    label: str
    value: int  # what the bar's length shows
    value_text: str  # the value in words, printed after the bar


def bar_chart(*, chart_id: str, title: str, description: str, bars: list[Bar]) -> SafeString:
    """A horizontal bar chart, one row per bar, longest bar = largest value."""
    height = max(len(bars), 1) * ROW_HEIGHT + 2 * PADDING
    area = WIDTH - LABEL_WIDTH - VALUE_WIDTH
    largest = max((bar.value for bar in bars), default=0)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{escape(chart_id)}" '
        f'role="img" viewBox="0 0 {WIDTH} {height}" width="100%" '
        f'aria-labelledby="{escape(chart_id)}-title {escape(chart_id)}-desc" '
        f'font-family="inherit" font-size="13" fill="{TEXT_COLOUR}">',
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>',
        f'<desc id="{escape(chart_id)}-desc">{escape(description)}</desc>',
    ]
    if not bars:
        parts.append(f'<text x="{PADDING}" y="{PADDING + 17}">Nothing to show.</text>')
    for index, bar in enumerate(bars):
        top = PADDING + index * ROW_HEIGHT
        middle = top + ROW_HEIGHT / 2 + 4  # text baseline, centred on the bar
        length = round(area * bar.value / largest) if largest > 0 and bar.value > 0 else 0
        parts += [
            '<g class="bar">',
            f"<title>{escape(bar.label)}: {escape(bar.value_text)}</title>",
            f'<text x="{LABEL_WIDTH - 8}" y="{middle}" text-anchor="end">'
            f"{escape(_shortened(bar.label))}</text>",
            f'<rect x="{LABEL_WIDTH}" y="{top + (ROW_HEIGHT - BAR_HEIGHT) / 2}" '
            f'width="{length}" height="{BAR_HEIGHT}" fill="{BAR_COLOUR}" rx="2"/>',
            f'<text x="{LABEL_WIDTH + length + 6}" y="{middle}">{escape(bar.value_text)}</text>',
            "</g>",
        ]
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308  (every piece of text above is escaped)


def _shortened(label: str) -> str:
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1].rstrip() + "…"
