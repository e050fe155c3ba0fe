"""Bar charts as SVG text, drawn on the server: no JavaScript, a few hundred bytes, readable on any phone.

A chart is a picture of a table the page also prints, so it only needs to be legible, not interactive.
Every label goes through XML escaping (labels are data: category and department names an admin typed),
so the output is well-formed on its own (served as image/svg+xml) and safe inline in HTML.
"""

from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import escape, quoteattr

WIDTH = 440
LABEL_WIDTH = 190
ROW = 24
TOP = 30
MAX_LABEL = 28
COLOR = "#0b5cab"


def _short(label: str) -> str:
    return label if len(label) <= MAX_LABEL else label[: MAX_LABEL - 1].rstrip() + "…"


def bar_chart(title: str, bars: Sequence[tuple[str, int]], *, element_id: str = "chart") -> str:
    """A horizontal bar chart of (label, count), in the order given; scales to its container's width."""
    height = TOP + ROW * max(len(bars), 1) + 8
    top = max((count for _, count in bars), default=0)
    room = WIDTH - LABEL_WIDTH - 60
    title_id = quoteattr(f"{element_id}-title")
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" '
        f'height="{height}" role="img" aria-labelledby={title_id} '
        'style="max-width:100%;height:auto" font-family="system-ui, sans-serif" font-size="12">',
        f"<title id={title_id}>{escape(title)}</title>",
        f'<text x="0" y="16" font-size="14" font-weight="700" fill="#1d2433">{escape(title)}</text>',
    ]
    if not bars:
        parts.append(f'<text x="0" y="{TOP + 14}" fill="#5b6577">0</text>')
    for index, (label, count) in enumerate(bars):
        y = TOP + index * ROW
        length = max(1, round(room * count / top)) if count else 0
        short = escape(_short(label))
        parts += [
            "<g>",
            f"<title>{escape(label)}: {count}</title>",
            f'<text x="{LABEL_WIDTH - 8}" y="{y + 15}" text-anchor="end" fill="#1d2433">{short}</text>',
            f'<rect x="{LABEL_WIDTH}" y="{y + 3}" width="{length}" height="{ROW - 8}" fill="{COLOR}"/>',
            f'<text x="{LABEL_WIDTH + length + 6}" y="{y + 15}" fill="#1d2433">{count}</text>',
            "</g>",
        ]
    parts.append("</svg>")
    return "".join(parts)
