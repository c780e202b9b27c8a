"""Value a car: the champion's price, range, deal and the factors behind the price for any car described
with the listing schema's fields (blank = not given, as on the stream)."""

from __future__ import annotations

from typing import Any, Final

from dash import Dash, Input, Output, State, dcc, html

from dashboard import figures
from dashboard.page import Context, Page
from dashboard.valuation import Valuation, form_listing, listing_from_form, value
from dashboard.widgets import hint
from pricemyride import rules


class Id:
    SUBMIT: Final = "value-submit"
    STATUS: Final = "form-status"
    RESULT: Final = "valuation"
    SUGGESTIONS: Final = "model-suggestions"
    FAIR: Final = "value-fair"
    RANGE: Final = "value-range"
    DEAL: Final = "value-deal"
    FACTORS: Final = "factors-chart"

    @staticmethod
    def field(name: str) -> str:
        return f"form-{name}"

    @staticmethod
    def error(name: str) -> str:
        return f"error-{name}"


# The form: (field, label, kind, choices, default). Blank fields are "not given", as on the stream.
FORM_FIELDS: Final[tuple[tuple[str, str, str, tuple[str, ...], Any], ...]] = (
    ("manufacturer", "Manufacturer", "make", (), "toyota"),
    ("model", "Model", "model", (), "camry"),
    ("year", "Year", "number", (), 2016),
    ("odometer", "Odometer (miles)", "number", (), 70_000),
    ("condition", "Condition", "choice", rules.CONDITIONS, "good"),
    ("title_status", "Title", "choice", rules.TITLE_STATUSES, "clean"),
    ("fuel", "Fuel", "choice", rules.FUELS, "gas"),
    ("transmission", "Transmission", "choice", rules.TRANSMISSIONS, "automatic"),
    ("drive", "Drive", "choice", rules.DRIVES, "fwd"),
    ("type", "Body type", "choice", rules.TYPES, "sedan"),
    ("cylinders", "Cylinders", "choice", rules.CYLINDERS, "4 cylinders"),
    ("size", "Size", "choice", rules.SIZES, None),
    ("paint_color", "Paint colour", "choice", rules.PAINT_COLORS, None),
    ("state", "State", "choice", tuple(sorted(rules.US_STATES)), "ca"),
    ("region", "Region", "text", (), None),
    ("posting_date", "Posting date", "date", (), None),
    ("price", "Asking price (optional)", "number", (), None),
)
FIELDS: Final = tuple(f[0] for f in FORM_FIELDS)


def form_input(field: str, kind: str, choices: tuple[str, ...], default: Any, makes: list[str]) -> Any:
    element_id = Id.field(field)
    if kind == "make":
        return dcc.Dropdown(id=element_id, options=sorted({*makes, default}), value=default, placeholder="e.g. toyota")
    if kind == "choice":
        return dcc.Dropdown(id=element_id, options=list(choices), value=default, placeholder="not given")
    if kind == "number":
        return dcc.Input(id=element_id, type="number", value=default, debounce=True, className="form-input")
    if kind == "date":
        return dcc.DatePickerSingle(id=element_id, date=default, display_format="YYYY-MM-DD",
                                    placeholder="today")  # fmt: skip
    suggestions = Id.SUGGESTIONS if kind == "model" else None
    return dcc.Input(id=element_id, type="text", value=default, debounce=True, className="form-input",
                     list=suggestions)  # fmt: skip


def layout(ctx: Context) -> list[Any]:
    """The form; the champion's categories (manufacturers, models) feed its suggestions."""
    makes = list(ctx.registry.known_values().get("manufacturer", []))
    fields = [
        html.Div([html.Label(label, htmlFor=Id.field(field)), form_input(field, kind, choices, default, makes),
                  html.Div(id=Id.error(field), className="field-error")], className="form-field")
        for field, label, kind, choices, default in FORM_FIELDS
    ]  # fmt: skip
    return [
        hint("The champion model values any car described with the listing schema's fields; blank fields are "
             "treated as not given, exactly as on the stream."),
        html.Datalist(id=Id.SUGGESTIONS, children=[]),
        html.Div(fields, className="form-grid"),
        html.Button("Value this car", id=Id.SUBMIT, n_clicks=0, className="button"),
        html.Div(id=Id.STATUS, className="field-error"),
        html.Div(id=Id.RESULT, className="valuation"),
    ]  # fmt: skip


def tile(label: str, text: str, element_id: str, extra_class: str = "") -> html.Div:
    return html.Div([html.Span(label, className="stat-label"),
                     html.Div(text, id=element_id, className=f"stat-value {extra_class}".strip())],
                    className="stat")  # fmt: skip


def valuation_view(result: Valuation, version: int) -> list[Any]:
    """The form's answer: fair price, range and deal, and the factors chart."""
    summary = [
        tile("Fair price", figures.money(result.fair), Id.FAIR),
        tile("80% range", f"{figures.money(result.low)} – {figures.money(result.high)}", Id.RANGE),
        tile("Deal", result.deal or "no asking price", Id.DEAL, "deal-" + (result.deal or "none").replace(" ", "-")),
    ]
    note = hint(f"Model v{version}. Bars: how much each factor moves this car's price from the typical "
                f"listing's {figures.money(result.baseline)} (tree SHAP, multiplicative).")  # fmt: skip
    chart = dcc.Graph(id=Id.FACTORS, figure=figures.factors_figure(result.factors), config={"displayModeBar": False})
    return [html.Div(summary, className="stats"), note, chart]


def valuate(ctx: Context, values: tuple[Any, ...]) -> tuple[Any, ...]:
    """(valuation, status, one error per field) for the submitted form."""
    checked = listing_from_form(form_listing(dict(zip(FIELDS, values, strict=True))))
    if isinstance(checked, dict):
        status = f"Please correct {len(checked)} field{'s' if len(checked) > 1 else ''}."
        return "", status, *[checked.get(f, "") for f in FIELDS]
    loaded, why = ctx.registry.champion_or_reason()
    if loaded is None:
        return "", why, *[""] * len(FIELDS)
    return valuation_view(value(loaded.model, checked), loaded.version), "", *[""] * len(FIELDS)


def register(app: Dash, ctx: Context) -> None:
    @app.callback(Output(Id.SUGGESTIONS, "children"), Input(Id.field("manufacturer"), "value"))
    def suggestions(manufacturer: str | None) -> list[Any]:
        prefix = f"{(manufacturer or '').lower()} "
        known = ctx.registry.known_values().get("model_two", [])
        return [html.Option(value=m.removeprefix(prefix)) for m in known if m.startswith(prefix)][:200]

    @app.callback(
        Output(Id.RESULT, "children"), Output(Id.STATUS, "children"),
        *[Output(Id.error(f), "children") for f in FIELDS],
        Input(Id.SUBMIT, "n_clicks"),
        *[State(Id.field(f), "date" if f == "posting_date" else "value") for f in FIELDS],
        prevent_initial_call=True,
    )  # fmt: skip
    def submitted(_: int, *values: Any) -> tuple[Any, ...]:
        return valuate(ctx, values)


PAGE: Final = Page("/value", "Value a car", layout, register)
