"""The page's building blocks, shared by its sections: escaping, tables, numbers, figures."""

from __future__ import annotations

import base64
import html
from collections.abc import Callable
from typing import Any

import numpy as np


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def figure(chart_id: str, png: bytes, caption: str) -> str:
    data = base64.b64encode(png).decode()
    return (
        f'<figure id="{esc(chart_id)}"><img src="data:image/png;base64,{data}" '
        f'alt="{esc(caption)}"><figcaption>{esc(caption)}</figcaption></figure>'
    )


def table(header: list[str], rows: list[list[Any]], numeric: set[int] = frozenset()) -> str:
    """Header text is escaped here; cells are HTML already (escape what goes in)."""

    def cell(tag: str, i: int, value: Any) -> str:
        css = ' class="num"' if i in numeric else ""
        return f"<{tag}{css}>{value}</{tag}>"

    head = "".join(cell("th", i, esc(h)) for i, h in enumerate(header))
    body = "".join(
        "<tr>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def number(value: float | None, digits: int = 4) -> str:
    return "&ndash;" if value is None or np.isnan(value) else f"{value:.{digits}f}"


def not_reached(what: str) -> str:
    return f'<p class="na">{esc(what)}: not reached in this run.</p>'


def chart(chart_id: str, plot: Callable[[], bytes], caption: str) -> str:
    """A chart, or a line saying why it could not be drawn: one bad artifact must not cost
    the whole page."""
    try:
        return figure(chart_id, plot(), caption)
    except Exception as error:
        why = f"{type(error).__name__}: {error}"
        return f'<p class="na">{esc(caption)}: not drawn ({esc(why)})</p>'
