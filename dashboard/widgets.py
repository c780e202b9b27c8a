"""The pieces every page is built from: tables, stat tiles, graphs and the refresh timer."""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import urlencode

from dash import dash_table, dcc, html

from dashboard.figures import DEAL_COLORS

REFRESH_MS: Final = 2_000
EXPORT_CAP: Final = 100_000  # the most rows one export holds (dashboard.exports)
CELL: Final = {"fontFamily": "inherit", "padding": "4px 8px", "textAlign": "left", "whiteSpace": "normal",
               "height": "auto", "maxWidth": "420px"}  # fmt: skip
HEADER: Final = {"fontWeight": "600", "backgroundColor": "#eef1f5"}

Columns = tuple[tuple[str, str], ...]


def table(element_id: str, columns: Columns, page_size: int = 25, **extra: Any) -> Any:
    return dash_table.DataTable(  # type: ignore[attr-defined]
        id=element_id, columns=[{"id": c, "name": n} for c, n in columns], page_size=page_size, style_cell=CELL,
        style_header=HEADER, **extra,
    )  # fmt: skip


def deal_styles() -> list[dict[str, Any]]:
    """A table's deal_rating cells in their rating's colour."""
    return [
        {"if": {"filter_query": f'{{deal_rating}} = "{rating}"', "column_id": "deal_rating"},
         "backgroundColor": color, "color": "white", "fontWeight": "600"}
        for rating, color in DEAL_COLORS.items()
    ]  # fmt: skip


def stat(label: str, element_id: str) -> html.Div:
    return html.Div(
        [html.Div(label, className="stat-label"), html.Div("…", id=element_id, className="stat-value")],
        className="stat",
    )


def graph(element_id: str) -> dcc.Graph:
    return dcc.Graph(id=element_id, config={"displayModeBar": False})


def tick(element_id: str, every: int = 1) -> dcc.Interval:
    """The page's refresh timer: every ``every`` × REFRESH_MS."""
    return dcc.Interval(id=element_id, interval=REFRESH_MS * every)


def hint(text: str, element_id: str | None = None) -> html.P:
    if element_id is None:
        return html.P(text, className="hint")
    return html.P(text, id=element_id, className="hint")


def downloads(label: str, view: str, params: dict[str, Any] | None = None, element_id: str | None = None) -> list[Any]:
    """ "<label>: CSV Parquet" links to the export of ``view`` with ``params`` (``dashboard.exports``); the
    links' ids are ``<element_id>-csv`` and ``-parquet`` (``export-<view>-csv`` … without one)."""
    query = urlencode({k: v for k, v in (params or {}).items() if v not in (None, "")})
    links: list[Any] = [f"{label}: "]
    for fmt, name in (("csv", "CSV"), ("parquet", "Parquet")):
        href = f"/export/{view}.{fmt}" + (f"?{query}" if query else "")
        link_id = f"{element_id}-{fmt}" if element_id else f"export-{view}-{fmt}"
        links += [html.A(name, id=link_id, href=href, className="button"), " "]
    return links
