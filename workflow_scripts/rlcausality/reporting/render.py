"""The block model of a report (headings, paragraphs, tables, images) and its two renderers:
self-contained HTML and Markdown."""

from __future__ import annotations

import base64
import datetime as _dt
import html
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from string import Template
from typing import Any

TEMPLATES = files("rlcausality.reporting") / "templates"


@dataclass
class Table:
    headers: list[str]
    rows: list[list[Any]]
    caption: str = ""
    row_classes: list[str] = field(default_factory=list)


@dataclass
class Image:
    png: bytes
    alt: str
    path: Path | None = None  # where the PNG was written (Markdown links to it)


@dataclass
class Text:
    text: str
    kind: str = "p"  # p, note, warning, ok, h2, h3


Block = Table | Image | Text


@dataclass(frozen=True)
class Estimate:
    """A number and its 95% interval, shown as ``0.435 [0.34, 0.53]``."""

    value: float | None
    ci: Sequence[float] | None = None


def fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, Estimate):
        if value.ci is None or value.value is None:
            return fmt(value.value)
        lo, hi = value.ci
        return f"{fmt(value.value)} [{lo:.2f}, {hi:.2f}]"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def render_html(title: str, subtitle: str, blocks: Sequence[Block]) -> str:
    parts = []
    for block in blocks:
        if isinstance(block, Text):
            text = html.escape(block.text)
            if block.kind in ("h2", "h3"):
                parts.append(f"<{block.kind}>{text}</{block.kind}>")
            elif block.kind == "p":
                parts.append(f"<p>{text}</p>")
            else:
                parts.append(f'<p class="{block.kind}">{text}</p>')
        elif isinstance(block, Table):
            parts.append(_html_table(block))
        else:
            data = base64.b64encode(block.png).decode("ascii")
            alt = html.escape(block.alt)
            parts.append(
                f'<figure><img alt="{alt}" src="data:image/png;base64,{data}">'
                f"<figcaption>{alt}</figcaption></figure>"
            )
    page = Template((TEMPLATES / "page.html").read_text("utf-8"))
    return page.substitute(
        title=html.escape(title),
        subtitle=html.escape(subtitle),
        css=(TEMPLATES / "report.css").read_text("utf-8"),
        body="\n".join(parts),
        created=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    )


def _html_table(table: Table) -> str:
    out = ["<table>"]
    if table.caption:
        out.append(f"<caption>{html.escape(table.caption)}</caption>")
    out.append("<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in table.headers) + "</tr>")
    for index, row in enumerate(table.rows):
        css = table.row_classes[index] if index < len(table.row_classes) else ""
        attr = f' class="{css}"' if css else ""
        cells = "".join(
            f'<td class="text">{html.escape(fmt(c))}</td>'
            if isinstance(c, str) and i > 0
            else f"<td>{html.escape(fmt(c))}</td>"
            for i, c in enumerate(row)
        )
        out.append(f"<tr{attr}>{cells}</tr>")
    out.append("</table>")
    return "\n".join(out)


def render_markdown(title: str, subtitle: str, blocks: Sequence[Block], md_path: Path) -> str:
    lines = [f"# {title}", "", subtitle, ""]
    for block in blocks:
        if isinstance(block, Text):
            prefix = {"h2": "## ", "h3": "### ", "warning": "> **", "note": "> ", "ok": "> "}
            suffix = "**" if block.kind == "warning" else ""
            lines += [f"{prefix.get(block.kind, '')}{block.text}{suffix}", ""]
        elif isinstance(block, Table):
            if block.caption:
                lines += [f"**{block.caption}**", ""]
            lines.append("| " + " | ".join(block.headers) + " |")
            lines.append("|" + "|".join("---" for _ in block.headers) + "|")
            for row in block.rows:
                lines.append("| " + " | ".join(fmt(c).replace("|", "\\|") for c in row) + " |")
            lines.append("")
        elif block.path is not None:
            link = Path(os.path.relpath(block.path, md_path.parent)).as_posix()
            lines += [f"![{block.alt}]({link})", ""]
    return "\n".join(lines)
