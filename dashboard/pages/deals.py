"""Deal finder: listings filtered by make, model, year, price, state, rating, source and arrival, the best
discount to the fair price first, with the 80% range shown; paginated in the database (LIMIT/OFFSET over
the ``market_listings`` rollup, whose deal index keeps the order cheap), exportable as CSV or Parquet."""

from __future__ import annotations

import math
from typing import Any, Final

from dash import Dash, Input, Output, callback_context, dcc, html

from dashboard import figures, queries
from dashboard.deal_query import COUNT_CAP, PAGE_SIZE, DealFilters
from dashboard.inputs import InputError
from dashboard.page import Context, Page
from dashboard.widgets import Columns, deal_styles, downloads, hint, table
from pricemyride.rules import US_STATES


class Id:
    MAKE: Final = "deals-make"
    FAMILY: Final = "deals-family"
    YEAR_FROM: Final = "deals-year-from"
    YEAR_TO: Final = "deals-year-to"
    PRICE_FROM: Final = "deals-price-from"
    PRICE_TO: Final = "deals-price-to"
    STATE: Final = "deals-state"
    RATINGS: Final = "deals-ratings"
    SOURCE: Final = "deals-source"
    SINCE: Final = "deals-since"
    TABLE: Final = "deals-table"
    MATCHES: Final = "deals-matches"
    EXPORTS: Final = "deals-exports"  # its links: deals-exports-csv, deals-exports-parquet


RATINGS: Final = ("great", "good", "fair", "high", "overpriced")
SINCE: Final = (("7", "last 7 days"), ("30", "last 30 days"), ("", "any time"))
COLUMNS: Final[Columns] = (
    ("discount", "Below fair"), ("car", "Car"), ("odometer", "Miles"), ("state", "State"), ("source", "Source"),
    ("listing_id", "Listing"), ("asking_price", "Asking"), ("predicted_price", "Fair price"), ("range", "80% range"),
    ("deal_rating", "Deal"), ("arrived_on", "Arrived"), ("model_version", "Model"),
)  # fmt: skip
# Filter → (component id, property): the same names as DealFilters' fields.
FILTERS: Final = {
    "make": (Id.MAKE, "value"), "family": (Id.FAMILY, "value"), "year_from": (Id.YEAR_FROM, "value"),
    "year_to": (Id.YEAR_TO, "value"), "price_from": (Id.PRICE_FROM, "value"), "price_to": (Id.PRICE_TO, "value"),
    "state": (Id.STATE, "value"), "ratings": (Id.RATINGS, "value"), "source": (Id.SOURCE, "value"),
    "since": (Id.SINCE, "value"),
}  # fmt: skip


def field(label: str, control: Any, element_id: str) -> html.Div:
    return html.Div([html.Label(label, htmlFor=element_id), control], className="form-field")


def number(element_id: str, placeholder: str) -> dcc.Input:
    return dcc.Input(id=element_id, type="number", debounce=True, placeholder=placeholder, className="form-input")


def controls(ctx: Context) -> list[html.Div]:
    makes = queries.market_values(ctx.pool, "arrived", "make")
    return [
        field("Make", dcc.Dropdown(id=Id.MAKE, options=makes, placeholder="any"), Id.MAKE),
        field("Model", dcc.Input(id=Id.FAMILY, type="text", debounce=True, placeholder="any, e.g. camry",
                                 className="form-input"), Id.FAMILY),
        field("Year from", number(Id.YEAR_FROM, "any"), Id.YEAR_FROM),
        field("Year to", number(Id.YEAR_TO, "any"), Id.YEAR_TO),
        field("Asking from ($)", number(Id.PRICE_FROM, "any"), Id.PRICE_FROM),
        field("Asking to ($)", number(Id.PRICE_TO, "any"), Id.PRICE_TO),
        field("State", dcc.Dropdown(id=Id.STATE, options=sorted(US_STATES), placeholder="any"), Id.STATE),
        field("Source", dcc.Dropdown(id=Id.SOURCE, options=queries.sources(ctx.pool), placeholder="any"), Id.SOURCE),
        field("Deal", dcc.Checklist(id=Id.RATINGS, options=list(RATINGS), value=["great", "good"], inline=True),
              Id.RATINGS),
        field("Arrived", dcc.RadioItems(id=Id.SINCE, options=[{"value": v, "label": n} for v, n in SINCE], value="30",
                                        inline=True), Id.SINCE),
    ]  # fmt: skip


def layout(ctx: Context) -> list[Any]:
    return [
        hint("Every listing with a usable asking price, at its latest valuation; the rollups behind this page "
             f"refresh every {ctx.settings.market_refresh_s:.0f} s."),
        html.Div(controls(ctx), className="form-grid"),
        html.P(id=Id.MATCHES, className="hint"),
        html.Div(id=Id.EXPORTS, className="exports"),
        table(Id.TABLE, COLUMNS, page_size=PAGE_SIZE, page_action="custom", page_current=0, page_count=1,
              style_data_conditional=deal_styles()),
    ]  # fmt: skip


def deal_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"discount": f"{r['discount']:.0%}", "car": figures.car(r), "source": r["source"],
         "listing_id": r["listing_id"], "odometer": "—" if r["odometer"] is None else f"{r['odometer']:,.0f}",
         "state": (r["state"] or "—").upper(), "asking_price": figures.money(r["asking_price"]),
         "predicted_price": figures.money(r["predicted_price"]),
         "range": f"{figures.money(r['price_low'])} – {figures.money(r['price_high'])}",
         "deal_rating": r["deal_rating"] or "—", "arrived_on": r["arrived_on"].isoformat(),
         "model_version": f"v{r['model_version']}"}
        for r in rows
    ]  # fmt: skip


def export_links(values: dict[str, Any]) -> list[Any]:
    chosen = {k: (",".join(v) if isinstance(v, list) else v) for k, v in values.items() if v not in (None, "", [])}
    return downloads("Download this view", "deals", chosen, Id.EXPORTS)


def refresh(ctx: Context, values: dict[str, Any], page: int) -> dict[str, Any]:
    """One page of matches, their count, and the export links of the same filters; for a value the finder
    cannot use, no rows and one line saying which and why."""
    try:
        filters = DealFilters.parsed(values)
    except InputError as exc:
        return {"data": [], "page": 0, "page_count": 1, "matches": str(exc), "exports": ""}
    count = queries.deal_count(ctx.pool, filters)
    shown = f"{COUNT_CAP:,}+" if count > COUNT_CAP else f"{count:,}"
    return {
        "data": deal_rows(queries.deals(ctx.pool, filters, page)), "page": page,
        "page_count": max(1, math.ceil(min(count, COUNT_CAP) / PAGE_SIZE)),
        "matches": f"{shown} listing{'' if count == 1 else 's'} match ({filters.described()}).",
        "exports": export_links(values),
    }  # fmt: skip


OUTPUTS: Final = {
    "data": Output(Id.TABLE, "data"), "page": Output(Id.TABLE, "page_current"),
    "page_count": Output(Id.TABLE, "page_count"),
    "matches": Output(Id.MATCHES, "children"), "exports": Output(Id.EXPORTS, "children"),
}  # fmt: skip


def register(app: Dash, ctx: Context) -> None:
    inputs = {name: Input(element, prop) for name, (element, prop) in FILTERS.items()}

    def refreshed(page: int | None, **values: Any) -> dict[str, Any]:
        paging = callback_context.triggered_id == Id.TABLE  # a changed filter starts again at the first page
        return refresh(ctx, values, (page or 0) if paging else 0)

    app.callback(output=dict(OUTPUTS), inputs={"page": Input(Id.TABLE, "page_current"), **inputs})(refreshed)


PAGE: Final = Page("/deals", "Deals", layout, register)
