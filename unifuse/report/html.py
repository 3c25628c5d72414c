"""A minimal static HTML report: sections of image rows and tables, relative image links."""

from __future__ import annotations

import html
import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Figure:
    """An image shown with a caption; ``path`` is relative to the report's folder."""

    path: str
    caption: str


@dataclass
class Section:
    title: str
    text: str = ""
    figures: list[Figure] = field(default_factory=list)
    table_header: list[str] = field(default_factory=list)
    table_rows: list[list[str]] = field(default_factory=list)


_CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccc}
.row{display:flex;flex-wrap:wrap;gap:10px}.fig{text-align:center;font-size:.85em}
.fig img{max-width:260px;max-height:260px;display:block;border:1px solid #ddd}
table{border-collapse:collapse;margin:.8em 0;font-size:.9em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}.note{color:#555}"""


def write_html_report(path: str | os.PathLike, title: str, intro: str, sections: list[Section]) -> Path:
    """Write a self-contained page (CSS inline, images linked relatively); atomic."""
    path = Path(path)
    esc = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title><style>{_CSS}</style></head><body>",
             f"<h1>{esc(title)}</h1><p class='note'>{esc(intro)}</p>"]
    for s in sections:
        parts.append(f"<h2>{esc(s.title)}</h2>")
        if s.text:
            parts.append(f"<p class='note'>{esc(s.text)}</p>")
        if s.figures:
            parts.append("<div class='row'>")
            for f in s.figures:
                parts.append(f"<div class='fig'><img src='{esc(f.path)}' alt='{esc(f.caption)}'>{esc(f.caption)}</div>")
            parts.append("</div>")
        if s.table_header:
            parts.append("<table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in s.table_header) + "</tr>")
            for row in s.table_rows:
                parts.append("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>")
            parts.append("</table>")
    parts.append("</body></html>")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(parts), encoding="utf-8")
    os.replace(tmp, path)
    return path
