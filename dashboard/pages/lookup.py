"""Listing look-up: one listing by its site and id — every valuation of it across model versions, the
factors behind its price, and its comparables (recent similar listings, by the valuation API's own query:
another site's listing shows its car and prices, never its id or site)."""

from __future__ import annotations

from typing import Any, Final

import plotly.graph_objects as go
from dash import Dash, Input, Output, State, dcc, html
from pydantic import ValidationError

from api import comparables
from dashboard import figures, queries
from dashboard.inputs import InputError, text_value
from dashboard.page import Context, Page
from dashboard.valuation import value
from dashboard.widgets import Columns, downloads, hint, table
from pricemyride.listing import Listing


class Id:
    SOURCE: Final = "lookup-source"
    SOURCES: Final = "lookup-sources"
    LISTING: Final = "lookup-id"
    SUBMIT: Final = "lookup-submit"
    STATUS: Final = "lookup-status"
    CAR: Final = "lookup-car"
    VALUATIONS: Final = "lookup-valuations"
    FACTORS: Final = "lookup-factors"
    EXPLAINED: Final = "lookup-explained"
    COMPARABLES: Final = "lookup-comparables"
    EXPORTS: Final = "lookup-exports"


COMPARABLES: Final = 10
VALUATION_COLUMNS: Final[Columns] = (
    ("model_version", "Model"), ("predicted_price", "Fair price"), ("range", "80% range"), ("deal_rating", "Deal"),
    ("asking_price", "Asking"), ("scored_at", "Valued at"),
)  # fmt: skip
COMPARABLE_COLUMNS: Final[Columns] = (
    ("car", "Car"), ("odometer", "Miles"), ("state", "State"), ("asking_price", "Asking"),
    ("fair_price", "Fair price"), ("deal_rating", "Deal"), ("posted", "Posted"), ("listing", "Listing (your site's)"),
)  # fmt: skip
OUTPUTS: Final = {
    "status": Output(Id.STATUS, "children"), "car": Output(Id.CAR, "children"),
    "valuations": Output(Id.VALUATIONS, "data"), "factors": Output(Id.FACTORS, "figure"),
    "explained": Output(Id.EXPLAINED, "children"), "comparables": Output(Id.COMPARABLES, "data"),
    "exports": Output(Id.EXPORTS, "children"),
}  # fmt: skip


def layout(ctx: Context) -> list[Any]:
    source = dcc.Input(id=Id.SOURCE, type="text", placeholder="the listing's site", className="form-input",
                       list=Id.SOURCES, debounce=True)  # fmt: skip
    listing = dcc.Input(id=Id.LISTING, type="text", placeholder="its id", className="form-input", debounce=True)
    controls = [html.Div([html.Label("Site", htmlFor=Id.SOURCE), source], className="form-field"),
                html.Div([html.Label("Listing id", htmlFor=Id.LISTING), listing], className="form-field")]  # fmt: skip
    return [
        html.Datalist(id=Id.SOURCES, children=[html.Option(value=s) for s in queries.sources(ctx.pool)]),
        html.Div(controls, className="form-grid"),
        html.Button("Look up", id=Id.SUBMIT, n_clicks=0, className="button"),
        html.P(id=Id.STATUS, className="field-error"),
        html.H2(id=Id.CAR),
        html.H2("Every valuation"),
        table(Id.VALUATIONS, VALUATION_COLUMNS, page_size=10),
        html.Div(id=Id.EXPORTS, className="exports"),
        html.H2("Why this price"),
        hint("", Id.EXPLAINED),
        dcc.Graph(id=Id.FACTORS, figure=no_factors(), config={"displayModeBar": False}),
        html.H2("Comparables"),
        table(Id.COMPARABLES, COMPARABLE_COLUMNS, page_size=COMPARABLES),
    ]  # fmt: skip


def valuation_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"model_version": f"v{r['model_version']}", "predicted_price": figures.money(r["predicted_price"]),
         "range": f"{figures.money(r['price_low'])} – {figures.money(r['price_high'])}",
         "deal_rating": r["deal_rating"] or "—", "asking_price": figures.money(r["asking_price"]),
         "scored_at": figures.stamp(r["scored_at"])}
        for r in rows
    ]  # fmt: skip


def comparable_rows(found: list[comparables.Comparable]) -> list[dict[str, Any]]:
    return [
        {"car": figures.car(c.listing), "odometer": "—" if c.listing.get("odometer") is None
         else f"{float(c.listing['odometer']):,.0f}", "state": (c.listing.get("state") or "—").upper(),
         "asking_price": figures.money(c.asking_price), "fair_price": figures.money(c.fair_price),
         "deal_rating": c.deal_rating or "—", "posted": c.posted.date().isoformat(), "listing": c.listing_id or "—"}
        for c in found
    ]  # fmt: skip


def explained(ctx: Context, listing: Listing, latest: int) -> tuple[Any, str]:
    """The factors chart by the champion, and which model it is (the latest valuation's, or not)."""
    loaded, why = ctx.registry.champion_or_reason()
    if loaded is None:
        return no_factors(), f"No explanation: {why}"
    result = value(loaded.model, listing)
    same = "the model of its latest valuation" if loaded.version == latest else (
        f"the champion now; its latest valuation was by v{latest}")  # fmt: skip
    return figures.factors_figure(result.factors), (
        f"Explained by v{loaded.version} ({same}): how much each factor moves its price from the typical listing's "
        f"{figures.money(result.baseline)} (tree SHAP, multiplicative).")  # fmt: skip


def no_factors() -> go.Figure:
    figure = go.Figure()
    figure.update_layout(height=160, **figures.LAYOUT)
    return figures.empty(figure, "Look up a listing to see the factors behind its price.")


def nothing(status: str, valuations: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"status": status, "car": "", "valuations": valuations or [], "factors": no_factors(), "explained": "",
            "comparables": [], "exports": ""}  # fmt: skip


def looked_up(ctx: Context, source: str | None, listing_id: str | None) -> dict[str, Any]:
    """Everything the page shows of one listing; a one-line reason when there is nothing to show."""
    try:
        source, listing_id = text_value("source", source), text_value("id", listing_id, longest=200)
    except InputError as exc:
        return nothing(str(exc))
    if not source or not listing_id:
        return nothing("Pick the listing's site and type its id.")
    rows = queries.valuations(ctx.pool, source, listing_id)
    if not rows:
        return nothing(f"No valuation of listing {listing_id[:80]!r} from {source!r}.")
    try:
        listing = Listing.model_validate(rows[0]["listing"])
    except ValidationError as exc:
        why = f"its stored fields no longer fit the listing schema ({exc.error_count()} error(s))"
        return nothing(why, valuation_rows(rows))
    factors, note = explained(ctx, listing, rows[0]["model_version"])
    return {"status": "", "car": f"{figures.car(rows[0]['listing'])} · {source} · {listing_id}",
            "valuations": valuation_rows(rows), "factors": factors, "explained": note,
            "comparables": comparable_rows(comparables.find_blocking(ctx.pool, listing, source, COMPARABLES)),
            "exports": exports_of(source, listing_id)}  # fmt: skip


def exports_of(source: str, listing_id: str) -> list[Any]:
    return downloads("Download its valuations", "valuations", {"source": source, "id": listing_id}, Id.EXPORTS)


def register(app: Dash, ctx: Context) -> None:
    app.callback(
        output=dict(OUTPUTS),
        inputs={"_": Input(Id.SUBMIT, "n_clicks")},
        state={"source": State(Id.SOURCE, "value"), "listing_id": State(Id.LISTING, "value")},
        prevent_initial_call=True,
    )(lambda _, source, listing_id: looked_up(ctx, source, listing_id))


PAGE: Final = Page("/lookup", "Look up", layout, register)
