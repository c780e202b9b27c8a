"""The Market page's pictures and rows, built from ``market_cells`` rows (pure functions: rows in, figure out)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Final

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.figures import BLUE, DEAL_COLORS, GREEN, GREY, LAYOUT, empty, money, vertical_lines

DEALS: Final = (("great", "great"), ("good", "good"), ("fair", "fair"), ("high", "high"),
                ("overpriced", "overpriced"), ("unsure", "not enough information"))  # fmt: skip
STEPS: Final = {"day": timedelta(days=1), "week": timedelta(days=7)}


def with_gaps(rows: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """The rows, with an empty period after each one that the next does not follow: the index lines break
    over weeks without a listing (the 2020 file's November, then 2021's April) instead of drawing across."""
    step, out = STEPS[kind], []
    for row, following in zip(rows, [*rows[1:], None], strict=True):
        out.append(row)
        if following is not None and following["period"] - row["period"] > step:
            out.append({"period": row["period"] + step, "retention": None, "asking_median": None})
    return out


def time_axis(figure: go.Figure, rows: list[dict[str, Any]], kind: str) -> None:
    """A period either side of the data (one period alone otherwise gets an axis of a millisecond), and bars
    as wide as most of a period."""
    step = STEPS[kind]
    figure.update_xaxes(range=[rows[0]["period"] - step, rows[-1]["period"] + step], type="date")
    figure.update_traces(width=0.8 * step.total_seconds() * 1000, selector={"type": "bar"})


def version_changes(rows: list[dict[str, Any]]) -> list[tuple[Any, int]]:
    """(period, version) where a newer version than any before first valued most of a period's listings: the
    promotions as the market saw them (a period where an older version still valued most is not a change)."""
    changes, newest = [], None
    for r in rows:
        if newest is not None and r["model_version"] > newest:
            changes.append((r["period"], r["model_version"]))
        newest = r["model_version"] if newest is None else max(newest, r["model_version"])
    return changes


def version_marks(rows: list[dict[str, Any]], subplots: int) -> list[dict[str, Any]]:
    """A dashed green line on every subplot where the valuing model changed."""
    return vertical_lines([(at, "dash", GREEN) for at, _ in version_changes(rows)], subplots)


def index_figure(rows: list[dict[str, Any]], title: str, kind: str = "week") -> go.Figure:
    """Retention (median asking ÷ fair price: the mix held fixed by our model), median asking price and
    listings per ``kind`` (day or week); dashed green lines where the valuing model version changed."""
    figure = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.07, row_heights=[0.4, 0.35, 0.25],
                           subplot_titles=(f"Retention: median asking ÷ fair price — {title}", "Median asking price",
                                           "Listings"))  # fmt: skip
    if not rows:
        figure.update_layout(height=560, **LAYOUT)
        return empty(figure, "No listings in this segment yet (rollups refresh every PRICEMYRIDE_MARKET_REFRESH_S).")
    lines = with_gaps(rows, kind)
    x = [r["period"] for r in lines]
    figure.add_scatter(x=x, y=[r["retention"] for r in lines], mode="lines+markers", name="retention",
                       line={"color": BLUE}, row=1, col=1)  # fmt: skip
    figure.add_hline(y=1.0, line_dash="dot", line_color=GREY, row=1, col=1, annotation_text="asking = fair")
    figure.add_scatter(x=x, y=[r["asking_median"] for r in lines], mode="lines+markers", name="median asking",
                       line={"color": "#7a4fbf"}, row=2, col=1)  # fmt: skip
    figure.add_bar(x=[r["period"] for r in rows], y=[r["listings"] for r in rows], name="listings",
                   marker_color=GREY, row=3, col=1)  # fmt: skip
    labels = [{"x": at, "y": 1, "xref": "x", "yref": "y domain", "text": f"v{version}", "showarrow": False,
               "font": {"color": GREEN}, "xanchor": "left"} for at, version in version_changes(rows)]  # fmt: skip
    for label in labels:  # one by one: handing the annotations back whole re-checks them all (15 ms)
        figure.add_annotation(label)
    figure.update_layout(shapes=[*figure.layout.shapes, *version_marks(rows, 3)], height=560, **LAYOUT)
    figure.update_yaxes(tickformat=".0%", row=1, col=1)
    figure.update_yaxes(tickprefix="$", rangemode="tozero", row=2, col=1)
    time_axis(figure, rows, kind)
    return figure


def deal_share_figure(rows: list[dict[str, Any]], kind: str = "week") -> go.Figure:
    """The share of each deal rating per period, stacked to 100%: a bar a period (an area would draw across
    the months without listings, and a lone period would not show)."""
    figure = go.Figure()
    if not rows:
        figure.update_layout(height=300, **LAYOUT)
        return empty(figure, "No deal ratings in this segment yet.")
    x = [r["period"] for r in rows]
    for column, rating in DEALS:
        share = [r[column] / r["listings"] if r["listings"] else 0 for r in rows]
        figure.add_bar(x=x, y=share, name=rating, marker={"color": DEAL_COLORS[rating], "line": {"width": 0}})
    figure.update_layout(height=300, barmode="stack", yaxis={"tickformat": ".0%", "range": [0, 1]},
                         **LAYOUT)  # fmt: skip
    time_axis(figure, rows, kind)
    return figure


def period_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The table beside the pictures, newest period first."""
    return [
        {"period": r["period"].isoformat(), "listings": f"{r['listings']:,}", "priced": f"{r['priced']:,}",
         "retention": "—" if r["retention"] is None else f"{r['retention']:.1%}",
         "asking_median": money(r["asking_median"]), "fair_median": money(r["fair_median"]),
         "great_share": f"{(r['great'] + r['good']) / r['listings']:.0%}" if r["listings"] else "—",
         "model_version": f"v{r['model_version']}"}
        for r in reversed(rows)
    ]  # fmt: skip
