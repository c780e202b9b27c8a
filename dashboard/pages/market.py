"""Market: a price index over time for the whole market or one segment (make, model, body type, state) —
retention (median asking ÷ fair price, the mix held fixed by our own model), the median asking price and
listings per day or week, with the model version changes marked — and the deal share over time.

It reads the rollups the drift monitor keeps (``monitoring.market``), never the predictions table.
"""

from __future__ import annotations

from typing import Any, Final

from dash import Dash, Input, Output, dcc, html

from dashboard import figures, market_figures, queries
from dashboard.inputs import InputError, choice_value, text_value
from dashboard.page import Context, Outputs, Page
from dashboard.widgets import Columns, downloads, graph, hint, table, tick


class Id:
    AXIS: Final = "market-axis"
    PERIOD: Final = "market-period"
    SEGMENT: Final = "market-segment"
    VALUE: Final = "market-value"
    STATUS: Final = "market-status"
    INDEX: Final = "market-index"
    DEALS: Final = "market-deals"
    TABLE: Final = "market-periods"
    TICK: Final = "market-tick"
    EXPORTS: Final = "market-exports"


AXES: Final = (("posted", "posting date (listings that give one)"), ("arrived", "day it reached the stream"))
PERIODS: Final = (("week", "week"), ("day", "day"))
SEGMENTS: Final = (("all", "Whole market"), ("make", "Make"), ("model", "Model"), ("type", "Body type"),
                   ("state", "State"))  # fmt: skip
COLUMNS: Final[Columns] = (
    ("period", "Period"), ("listings", "Listings"), ("priced", "With a usable asking price"),
    ("retention", "Retention"), ("asking_median", "Median asking"), ("fair_median", "Median fair price"),
    ("great_share", "Great or good deals"), ("model_version", "Valued mostly by"),
)  # fmt: skip
OUTPUTS: Final[Outputs] = {
    "index": Output(Id.INDEX, "figure"), "deals": Output(Id.DEALS, "figure"), "table": Output(Id.TABLE, "data"),
    "status": Output(Id.STATUS, "children"), "exports": Output(Id.EXPORTS, "children"),
}  # fmt: skip


def choice(element_id: str, label: str, options: tuple[tuple[str, str], ...]) -> html.Div:
    radios = dcc.RadioItems(id=element_id, options=[{"value": v, "label": n} for v, n in options],
                            value=options[0][0], inline=True)  # fmt: skip
    return html.Div([html.Label(label), radios], className="form-field")


def layout(_: Context) -> list[Any]:
    value = dcc.Dropdown(id=Id.VALUE, options=[], value=None, placeholder="the whole market", disabled=True)
    controls = [
        choice(Id.AXIS, "Time by", AXES), choice(Id.PERIOD, "Per", PERIODS),
        choice(Id.SEGMENT, "Segment", SEGMENTS),
        html.Div([html.Label("Which", htmlFor=Id.VALUE), value], className="form-field"),
    ]  # fmt: skip
    return [
        html.Div(controls, className="form-grid"),
        hint("…", Id.STATUS),
        graph(Id.INDEX),
        html.H2("Deal share"),
        graph(Id.DEALS),
        html.H2("Per period"),
        table(Id.TABLE, COLUMNS, page_size=15),
        html.Div(id=Id.EXPORTS, className="exports"),
        tick(Id.TICK, every=15),
    ]


def status(found: dict[str, Any] | None, every_s: float) -> str:
    if found is None:
        return "The market rollups have not been computed yet: the drift monitor refreshes them (make demo runs it)."
    return (f"Rollups of {figures.stamp(found['refreshed_at'])} (valuations scored up to "
            f"{figures.stamp(found['scored_through'])}; the refresh took {found['seconds']:.1f} s). A new valuation "
            f"shows here within {every_s:.0f} s plus one refresh.")  # fmt: skip


def refresh(ctx: Context, axis: str, kind: str, segment: str, value: str | None) -> dict[str, Any]:
    """The index, the deal shares and the table of one segment (the whole market without a value)."""
    try:
        axis, kind = choice_value("axis", axis, tuple(dict(AXES))), choice_value("period", kind, tuple(dict(PERIODS)))
        segment, value = choice_value("segment", segment, tuple(dict(SEGMENTS))), text_value("value", value)
    except InputError as exc:
        return unusable(str(exc))
    if segment != "all" and not value:
        segment = "all"
    value = value if segment != "all" else ""
    rows = queries.market_periods(ctx.pool, axis, segment, value or "", kind)
    title = "whole market" if segment == "all" else f"{dict(SEGMENTS)[segment].lower()} {value}"
    return {"index": market_figures.index_figure(rows, title, kind),
            "deals": market_figures.deal_share_figure(rows, kind),
            "table": market_figures.period_rows(rows),
            "status": status(queries.market_refresh(ctx.pool), ctx.settings.market_refresh_s),
            "exports": downloads("This segment's periods", "market", {"axis": axis, "period": kind, "segment": segment,
                                                                       "value": value}, Id.EXPORTS)}  # fmt: skip


def unusable(why: str) -> dict[str, Any]:
    """A choice the page cannot use (only a hand-made request sends one): nothing drawn, one line why."""
    return {"index": market_figures.index_figure([], "—"), "deals": market_figures.deal_share_figure([]), "table": [],
            "status": why, "exports": ""}  # fmt: skip


def values(ctx: Context, axis: str, segment: str) -> dict[str, Any]:
    """The segment's values (the most listed first), the first chosen; none for the whole market."""
    if segment == "all":
        return {"options": [], "value": None, "disabled": True}
    found = queries.market_values(ctx.pool, axis, segment)
    return {"options": found, "value": found[0] if found else None, "disabled": False}


def register(app: Dash, ctx: Context) -> None:
    app.callback(
        output={k: Output(Id.VALUE, k) for k in ("options", "value", "disabled")},
        inputs={"axis": Input(Id.AXIS, "value"), "segment": Input(Id.SEGMENT, "value")},
    )(lambda axis, segment: values(ctx, axis, segment))
    app.callback(
        output=dict(OUTPUTS),
        inputs={"axis": Input(Id.AXIS, "value"), "kind": Input(Id.PERIOD, "value"),
                "segment": Input(Id.SEGMENT, "value"), "value": Input(Id.VALUE, "value"),
                "tick": Input(Id.TICK, "n_intervals")},
    )(lambda axis, kind, segment, value, tick: refresh(ctx, axis, kind, segment, value))  # fmt: skip


PAGE: Final = Page("/market", "Market", layout, register)
