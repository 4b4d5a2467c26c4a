"""The document: one self-contained HTML file, plotly.js embedded once, nothing fetched.

Each chart is ``fig.to_html(full_html=False, include_plotlyjs=False)``; the library's
own script is inlined at the top (``plotly.offline.get_plotlyjs()``), so the file opens
from a USB stick on a plane. No font, stylesheet or script is loaded from anywhere: the
page uses the system's sans-serif font and no MathJax, and the mode bar has no link out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from html import escape
from typing import Final

import plotly.graph_objects as go
import plotly.offline

__all__ = ["CONFIG", "Section", "document", "embed"]

CONFIG: Final = {"displaylogo": False, "responsive": True, "showSendToCloud": False}

_STYLE: Final = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
       color: #222; background: #fafafa; }
main { max-width: 1200px; margin: 0 auto; padding: 16px 24px 48px; }
h1 { font-size: 1.6em; margin: 8px 0 4px; } h2 { margin-top: 36px; border-bottom: 1px solid #ddd; }
.meta { color: #666; margin: 0 0 16px; }
.summary { border-radius: 6px; padding: 12px 18px; margin: 12px 0; }
.summary.attention { background: #fff4e5; border: 1px solid #f0a04b; }
.summary.fine { background: #edf7ed; border: 1px solid #7bc47f; }
.summary li { margin: 4px 0; }
.chart { background: #fff; border: 1px solid #e5e5e5; border-radius: 6px; margin: 12px 0;
         padding: 4px; }
.empty { color: #555; font-style: italic; background: #fff; border: 1px dashed #ccc;
         padding: 12px; border-radius: 6px; }
.note { color: #333; }
table { border-collapse: collapse; width: 100%; background: #fff; font-size: 0.9em; }
th, td { border-bottom: 1px solid #e5e5e5; padding: 4px 8px; text-align: left;
         vertical-align: top; }
"""


@dataclass(frozen=True)
class Section:
    """One titled part of the report: notes, then charts, or why it is empty."""

    key: str
    title: str
    figures: Sequence[go.Figure] = ()
    notes: Sequence[str] = ()
    empty: str = ""  # why there is nothing to draw; "" when there is
    header: Sequence[str] = ()  # a table after the charts, when it has a header
    rows: Sequence[Sequence[str]] = ()
    status: str = field(init=False, default="")

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", f"empty: {self.empty}" if self.empty else "ok")


def embed(fig: go.Figure, div_id: str) -> str:
    """One chart as a ``<div>`` and its script, with no plotly.js and no MathJax."""
    html: str = fig.to_html(full_html=False, include_plotlyjs=False, include_mathjax=False,
                            config=CONFIG, div_id=div_id)  # fmt: skip
    return html


def document(title: str, meta: str, attention: Sequence[str], sections: Sequence[Section]) -> str:
    """The whole page."""
    body = [f"<h1>{escape(title)}</h1>", f'<p class="meta">{escape(meta)}</p>',
            _summary(attention)]  # fmt: skip
    for section in sections:
        body.append(_section(section))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style>"
        f'<script type="text/javascript">{_plotly_js()}</script></head>'
        f"<body><main>{''.join(body)}</main></body></html>\n"
    )


def _summary(attention: Sequence[str]) -> str:
    if not attention:
        return ('<section id="summary" class="summary fine"><strong>Nothing needs attention'
                "</strong> in this window.</section>")  # fmt: skip
    items = "".join(f"<li>{escape(line)}</li>" for line in attention)
    return (f'<section id="summary" class="summary attention"><strong>Needs attention '
            f"({len(attention)})</strong><ul>{items}</ul></section>")  # fmt: skip


def _section(section: Section) -> str:
    parts = [f'<section id="{section.key}"><h2>{escape(section.title)}</h2>']
    parts += [f'<p class="note">{escape(note)}</p>' for note in section.notes]
    if section.empty:
        parts.append(f'<p class="empty">{escape(section.empty)}</p>')
    for index, fig in enumerate(section.figures):
        parts.append(f'<div class="chart">{embed(fig, f"{section.key}-{index}")}</div>')
    if section.header:
        parts.append(_table(section.header, section.rows))
    parts.append("</section>")
    return "".join(parts)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """
    >>> _table(["when", "what"], [["10:00", "<b>"]])
    '<table><tr><th>when</th><th>what</th></tr><tr><td>10:00</td><td>&lt;b&gt;</td></tr></table>'
    """
    head = "".join(f"<th>{escape(name)}</th>" for name in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>"
                   for row in rows)  # fmt: skip
    return f"<table><tr>{head}</tr>{body}</table>"


@cache
def _plotly_js() -> str:
    """plotly.js, inlined; ``</script>`` inside it cannot occur (minified library)."""
    script: str = plotly.offline.get_plotlyjs()
    return script
