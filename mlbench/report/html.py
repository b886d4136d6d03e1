"""One self-contained HTML page: every plot embedded (base64 PNG), every table inline.

Tables wrap their cells' text rather than run off the page: on a 1400-px screen the
findings' evidence columns fit (tests/test_report_page.py renders the page in headless
Chromium and checks that nothing overflows).
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1150px;
       color: #222; padding: 0 1em; }
h1 { margin-bottom: .2em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em;
     margin-top: 2em; }
.meta { color: #555; } .note { background: #fff8e1; border-left: 4px solid #f0b400;
        padding: .5em .8em; margin: 1em 0; }
figure { margin: 1em 0; } figure img { max-width: 100%; height: auto; }
figcaption { color: #555; font-size: 13px; }
table { border-collapse: collapse; font-size: 13px; margin: .5em 0; max-width: 100%; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; }
td { overflow-wrap: break-word; }
th { background: #f4f4f4; } td:nth-child(-n+4) { text-align: left; }
details { margin: .8em 0; } summary { cursor: pointer; font-weight: 600; }
.scroll { overflow-x: auto; }
"""


@dataclass
class Plot:
    """A plot file to embed, with the sentence that says what it shows."""

    png: Path
    caption: str


@dataclass
class Section:
    """One panel of the report: a heading, notes, figures and tables."""

    title: str
    notes: list[str] = field(default_factory=list)
    figures: list[Plot] = field(default_factory=list)
    tables: list[tuple[str, pd.DataFrame, bool]] = field(default_factory=list)  # title, df, open


def render(title: str, meta: Sequence[str], notes: Sequence[str], sections: Sequence[Section]
           ) -> str:
    """The whole page as a string (no external resources: opens offline, in the MLflow UI)."""
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
             f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>",
             f"<h1>{_e(title)}</h1>"]
    parts += [f"<p class='meta'>{_e(line)}</p>" for line in meta]
    parts += [f"<p class='note'>{_e(note)}</p>" for note in notes]
    for section in sections:
        parts.append(f"<h2>{_e(section.title)}</h2>")
        parts += [f"<p class='note'>{_e(note)}</p>" for note in section.notes]
        parts += [_figure(fig) for fig in section.figures]
        for name, df, is_open in section.tables:
            table = df.to_html(index=False, border=0, na_rep="–")
            parts.append(f"<details{' open' if is_open else ''}><summary>{_e(name)}</summary>"
                         f"<div class='scroll'>{table}</div></details>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _figure(fig: Plot) -> str:
    data = base64.b64encode(fig.png.read_bytes()).decode("ascii")
    return (f"<figure><img alt='{_e(fig.caption)}' src='data:image/png;base64,{data}'>"
            f"<figcaption>{_e(fig.caption)}</figcaption></figure>")


def _e(text: str) -> str:
    return html.escape(str(text), quote=True)
