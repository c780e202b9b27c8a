"""The analysts' dashboard (Dash): Live, Drift, Models, Value a car, Dead letters.

Postgres is read through the read-only role with bounded queries (``dashboard.queries``); the registry
and the champion model through a cached ``RegistryView``. Each page refreshes itself on a timer.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any, Final

from dash import Dash, Input, Output, State, dash_table, dcc, html
from psycopg_pool import ConnectionPool

from dashboard import figures, queries
from dashboard.registry import RegistryView
from dashboard.valuation import Valuation, listing_from_form, value
from pricemyride.rules import (
    CONDITIONS,
    CYLINDERS,
    DRIVES,
    FUELS,
    PAINT_COLORS,
    SIZES,
    TITLE_STATUSES,
    TRANSMISSIONS,
    TYPES,
    US_STATES,
)
from pricemyride.settings import Settings
from training.live_gate import compare_live, labelled
from training.shadow import Role

REFRESH_MS: Final = 2_000
LIVE_MINUTES: Final = 10
PAGES: Final = (("/", "Live"), ("/drift", "Drift"), ("/models", "Models"), ("/value", "Value a car"),
                ("/dead-letters", "Dead letters"))  # fmt: skip
CELL: Final = {"fontFamily": "inherit", "padding": "4px 8px", "textAlign": "left", "whiteSpace": "normal",
               "height": "auto", "maxWidth": "420px"}  # fmt: skip
PREDICTION_COLUMNS: Final = (("scored_at", "Scored at"), ("source", "Source"), ("car", "Car"), ("odometer", "Miles"),
                             ("state", "State"),
                             ("asking_price", "Asking price"), ("predicted_price", "Fair price"),
                             ("range", "80% range"), ("deal_rating", "Deal"), ("model_version", "Model"))  # fmt: skip
SHADOW_COLUMNS: Final = (("group", "Slice kind"), ("name", "Slice"), ("rows", "Labelled live listings"),
                         ("champion_mae", "Champion MAE"), ("shadow_mae", "Shadow MAE"),
                         ("champion_coverage", "Champion coverage"),
                         ("shadow_coverage", "Shadow coverage"))  # fmt: skip
EVENT_COLUMNS: Final = (("at", "When"), ("kind", "Decision"), ("version", "Version"), ("champion", "Against"),
                        ("reason", "Why"))  # fmt: skip
SLICE_COLUMNS: Final = (("group", "Slice kind"), ("slice", "Slice"), ("rows", "Rows"), ("mae", "MAE"),
                        ("rmse", "RMSE"), ("bias", "Median signed error"), ("coverage", "80% coverage"),
                        ("width", "Mean width"), ("unsure", "Not enough information"))  # fmt: skip
VERSION_COLUMNS: Final = (("version", "Version"), ("aliases", "Aliases"), ("created", "Registered"),
                          ("mae", "MAE"), ("rmse", "RMSE"), ("r2", "R²"), ("coverage", "80% coverage"),
                          ("gate", "Gate"), ("gate_reason", "Gate's reason"), ("scored", "Listings scored"),
                          ("data", "Trained on"))  # fmt: skip
DEAD_LETTER_COLUMNS: Final = (("failed_at", "Rejected at"), ("where", "Topic[partition]@offset"), ("key", "Key"),
                              ("reason", "Reason"), ("payload", "Payload (start)"))  # fmt: skip
# The form: (field, label, kind, choices, default). Blank fields are "not given", as on the stream.
FORM_FIELDS: Final[tuple[tuple[str, str, str, tuple[str, ...], Any], ...]] = (
    ("manufacturer", "Manufacturer", "make", (), "toyota"),
    ("model", "Model", "model", (), "camry"),
    ("year", "Year", "number", (), 2016),
    ("odometer", "Odometer (miles)", "number", (), 70_000),
    ("condition", "Condition", "choice", CONDITIONS, "good"),
    ("title_status", "Title", "choice", TITLE_STATUSES, "clean"),
    ("fuel", "Fuel", "choice", FUELS, "gas"),
    ("transmission", "Transmission", "choice", TRANSMISSIONS, "automatic"),
    ("drive", "Drive", "choice", DRIVES, "fwd"),
    ("type", "Body type", "choice", TYPES, "sedan"),
    ("cylinders", "Cylinders", "choice", CYLINDERS, "4 cylinders"),
    ("size", "Size", "choice", SIZES, None),
    ("paint_color", "Paint colour", "choice", PAINT_COLORS, None),
    ("state", "State", "choice", tuple(sorted(US_STATES)), "ca"),
    ("region", "Region", "text", (), None),
    ("posting_date", "Posting date", "date", (), None),
    ("price", "Asking price (optional)", "number", (), None),
)


def table(element_id: str, columns: tuple[tuple[str, str], ...], page_size: int = 25, **extra: Any) -> Any:
    return dash_table.DataTable(  # type: ignore[attr-defined]
        id=element_id, columns=[{"id": c, "name": n} for c, n in columns], page_size=page_size, style_cell=CELL,
        style_header={"fontWeight": "600", "backgroundColor": "#eef1f5"}, **extra,
    )  # fmt: skip


def stat(label: str, element_id: str) -> html.Div:
    return html.Div(
        [html.Div(label, className="stat-label"), html.Div("…", id=element_id, className="stat-value")],
        className="stat",
    )


def graph(element_id: str) -> dcc.Graph:
    return dcc.Graph(id=element_id, config={"displayModeBar": False})


def live_page() -> list[Any]:
    deal_styles = [
        {"if": {"filter_query": f'{{deal_rating}} = "{rating}"', "column_id": "deal_rating"},
         "backgroundColor": color, "color": "white", "fontWeight": "600"}
        for rating, color in figures.DEAL_COLORS.items()
    ]  # fmt: skip
    right = [{"if": {"column_id": c}, "textAlign": "right"} for c in ("odometer", "asking_price", "predicted_price")]
    return [
        html.Div(
            [
                stat("Listings scored", "scored"),
                stat("Dead-lettered", "dead-lettered"),
                stat("Scored in the last minute", "last-minute"),
            ],
            className="stats",
        ),
        html.Div(id="empty-state", className="empty-state"),
        graph("throughput-chart"),
        html.H2("Latest valuations"),
        table("latest", PREDICTION_COLUMNS, style_data_conditional=deal_styles, style_cell_conditional=right),
        dcc.Interval(id="live-tick", interval=REFRESH_MS),
    ]


def drift_page() -> list[Any]:
    return [
        html.P(
            "Each window is a slice of the live stream compared with the champion's training reference "
            "(Evidently). Dotted orange lines: retrain requests; dashed green: promotions.",
            className="hint",
        ),
        html.H2("Per-feature drift score"),
        graph("drift-heatmap"),
        html.H2("Drift share, realized error and range coverage"),
        graph("drift-timeline"),
        dcc.Interval(id="drift-tick", interval=REFRESH_MS * 5),
    ]


def models_page() -> list[Any]:
    return [
        html.H2("Registered versions"),
        html.Div(id="models-empty", className="empty-state"),
        table("model-versions", VERSION_COLUMNS, page_size=20),
        html.H2("Champion quality per slice"),
        html.P(
            "On the held-out part of its training data: asking-price bands, seller samples, and the same rows "
            "with fields blanked as sites send them. `pricemyride evaluate` compares both baselines too.",
            className="hint",
        ),
        table("champion-slices", SLICE_COLUMNS, page_size=25),
        html.H2("Listings scored per version"),
        graph("version-counts"),
        html.H2("Shadow on live listings"),
        html.P(id="shadow-summary", className="hint"),
        table("shadow-groups", SHADOW_COLUMNS, page_size=20),
        html.H2("Promotions, shadows and rejections"),
        table("model-events", EVENT_COLUMNS, page_size=15),
        dcc.Interval(id="models-tick", interval=REFRESH_MS * 5),
    ]


def form_input(field: str, kind: str, choices: tuple[str, ...], default: Any, makes: list[str]) -> Any:
    element_id = f"form-{field}"
    if kind == "make":
        options = sorted({*makes, default})
        return dcc.Dropdown(id=element_id, options=options, value=default, placeholder="e.g. toyota")
    if kind == "choice":
        return dcc.Dropdown(id=element_id, options=list(choices), value=default, placeholder="not given")
    if kind == "number":
        return dcc.Input(id=element_id, type="number", value=default, debounce=True, className="form-input")
    if kind == "date":
        return dcc.DatePickerSingle(id=element_id, date=default, display_format="YYYY-MM-DD",
                                    placeholder="today")  # fmt: skip
    suggestions = "model-suggestions" if kind == "model" else None
    return dcc.Input(id=element_id, type="text", value=default, debounce=True, className="form-input",
                     list=suggestions)  # fmt: skip


def value_page(known: dict[str, list[str]]) -> list[Any]:
    """The form; ``known`` holds the champion's categories (manufacturers, models) for suggestions."""
    makes = list(known.get("manufacturer", []))
    fields = [
        html.Div(
            [
                html.Label(label, htmlFor=f"form-{field}"),
                form_input(field, kind, choices, default, makes),
                html.Div(id=f"error-{field}", className="field-error"),
            ],
            className="form-field",
        )
        for field, label, kind, choices, default in FORM_FIELDS
    ]
    return [
        html.P(
            "The champion model values any car described with the listing schema's fields; blank fields are "
            "treated as not given, exactly as on the stream.",
            className="hint",
        ),
        html.Datalist(id="model-suggestions", children=[]),
        html.Div(fields, className="form-grid"),
        html.Button("Value this car", id="value-submit", n_clicks=0, className="button"),
        html.Div(id="form-status", className="field-error"),
        html.Div(id="valuation", className="valuation"),
    ]


def dead_letters_page() -> list[Any]:
    return [
        html.P(
            "Events the workers could not score, with the reason the stream gave. Counts group the newest "
            f"{queries.RECENT_DEAD_LETTERS:,} dead letters by the field that failed first.",
            className="hint",
        ),
        html.H2("Dead letters by field"),
        graph("reasons-chart"),
        html.H2("Most recent"),
        table("dead-letters", DEAD_LETTER_COLUMNS, page_size=20),
        dcc.Interval(id="dead-letters-tick", interval=REFRESH_MS * 2),
    ]


PAGE_LAYOUTS: Final = {"/": live_page, "/drift": drift_page, "/models": models_page,
                       "/dead-letters": dead_letters_page}  # fmt: skip


def sign_out_form() -> html.Form:
    """Signing out is a POST (a link or an image could not end the session from another page)."""
    return html.Form(html.Button("Sign out", id="sign-out", type="submit"), action="/logout", method="POST",
                     className="sign-out")  # fmt: skip


def layout(with_login: bool = False) -> html.Div:
    return html.Div(
        [
            dcc.Location(id="url"),
            html.Header(
                [
                    html.H1("PriceMyRide"),
                    html.Nav(
                        [
                            dcc.Link(name, href=path, id=f"nav{path.replace('/', '-')}", className="nav-link")
                            for path, name in PAGES
                        ]
                    ),
                    *([sign_out_form()] if with_login else []),
                ]
            ),
            html.Main(id="page"),
        ],
        className="container",
    )


def form_listing(values: dict[str, Any]) -> dict[str, Any]:
    """Form values → listing fields: a picked date becomes midnight UTC of that day."""
    out = dict(values)
    if out.get("posting_date"):
        out["posting_date"] = datetime.fromisoformat(str(out["posting_date"])[:10]).replace(tzinfo=UTC).isoformat()
    return out


def live_outputs(pool: ConnectionPool) -> tuple[Any, ...]:
    """Everything the Live page shows (one refresh)."""
    found = queries.counts(pool)
    empty = "" if found["scored"] else "No predictions yet: start a worker and a producer (make demo does both)."
    return (figures.prediction_rows(queries.latest_predictions(pool)), f"{found['scored']:,}",
            f"{found['dead_lettered']:,}", f"{found['last_minute']:,}", empty,
            figures.throughput_figure(queries.throughput(pool, LIVE_MINUTES), LIVE_MINUTES))  # fmt: skip


def drift_outputs(pool: ConnectionPool, threshold: float) -> tuple[Any, ...]:
    timeline = figures.drift_timeline(queries.drift_windows(pool), queries.retrain_requests(pool),
                                      queries.model_events(pool), threshold)  # fmt: skip
    return figures.drift_heatmap(queries.drift_features(pool)), timeline


def models_outputs(pool: ConnectionPool, registry: RegistryView) -> tuple[Any, ...]:
    versions = registry.versions()
    counts = queries.version_counts(pool)
    events = figures.event_rows(queries.model_events(pool))
    empty = "" if versions else "No model registered yet: run `pricemyride train` (make demo trains one)."
    champion = next((v for v in versions if registry.settings.champion_alias in v.aliases), None)
    slices = figures.slice_rows(registry.slices(champion.run_id)) if champion else []
    return (figures.version_rows(versions, counts), figures.version_counts_figure(counts), events, empty, slices,
            *shadow_outputs(pool, registry.settings))  # fmt: skip


def shadow_outputs(pool: ConnectionPool, settings: Settings) -> tuple[str, list[dict[str, Any]]]:
    """The running shadow against the champion so far, computed as the live gate computes it."""
    shadow = queries.active_shadow(pool, settings.model_name)
    comparison = compare_live(labelled(queries.shadow_live_rows(pool, shadow)), settings.shadow) if shadow else None
    watching = shadow is not None and shadow.role is Role.WATCH
    needed = settings.shadow.watch_rows if watching else settings.shadow.min_rows
    return figures.shadow_summary(shadow, comparison, needed), figures.shadow_group_rows(comparison)


def dead_letters_outputs(pool: ConnectionPool) -> tuple[Any, ...]:
    return (figures.dead_letter_rows(queries.dead_letters(pool)),
            figures.reasons_figure(queries.dead_letter_reasons(pool)))  # fmt: skip


def register_live(app: Dash, pool: ConnectionPool) -> None:
    @app.callback(
        Output("latest", "data"), Output("scored", "children"), Output("dead-lettered", "children"),
        Output("last-minute", "children"), Output("empty-state", "children"), Output("throughput-chart", "figure"),
        Input("live-tick", "n_intervals"),
    )  # fmt: skip
    def refresh_live(_: int | None) -> tuple[Any, ...]:
        return live_outputs(pool)


def register_drift(app: Dash, pool: ConnectionPool, threshold: float) -> None:
    @app.callback(Output("drift-heatmap", "figure"), Output("drift-timeline", "figure"),
                  Input("drift-tick", "n_intervals"))  # fmt: skip
    def refresh_drift(_: int | None) -> tuple[Any, ...]:
        return drift_outputs(pool, threshold)


def register_models(app: Dash, pool: ConnectionPool, registry: RegistryView) -> None:
    @app.callback(
        Output("model-versions", "data"), Output("version-counts", "figure"), Output("model-events", "data"),
        Output("models-empty", "children"), Output("champion-slices", "data"), Output("shadow-summary", "children"),
        Output("shadow-groups", "data"), Input("models-tick", "n_intervals"),
    )  # fmt: skip
    def refresh_models(_: int | None) -> tuple[Any, ...]:
        return models_outputs(pool, registry)


def valuation_view(result: Valuation, version: int) -> list[Any]:
    """The form's answer: fair price, range and deal, and the factors chart."""
    summary = [
        html.Div([html.Span("Fair price", className="stat-label"),
                  html.Div(figures.money(result.fair), id="value-fair", className="stat-value")],
                 className="stat"),
        html.Div([html.Span("80% range", className="stat-label"),
                  html.Div(f"{figures.money(result.low)} – {figures.money(result.high)}", id="value-range",
                           className="stat-value")], className="stat"),
        html.Div([html.Span("Deal", className="stat-label"),
                  html.Div(result.deal or "no asking price", id="value-deal",
                           className="stat-value deal-" + (result.deal or "none").replace(" ", "-"))],
                 className="stat"),
    ]  # fmt: skip
    note = html.P(f"Model v{version}. Bars: how much each factor moves this car's price from the "
                  f"typical listing's {figures.money(result.baseline)} (tree SHAP, multiplicative).",
                  className="hint")  # fmt: skip
    chart = dcc.Graph(id="factors-chart", figure=figures.factors_figure(result.factors),
                      config={"displayModeBar": False})  # fmt: skip
    return [html.Div(summary, className="stats"), note, chart]


def register_value(app: Dash, registry: RegistryView) -> None:
    fields = [f[0] for f in FORM_FIELDS]

    @app.callback(Output("model-suggestions", "children"), Input("form-manufacturer", "value"))
    def suggestions(manufacturer: str | None) -> list[Any]:
        prefix = f"{(manufacturer or '').lower()} "
        models = [m.removeprefix(prefix) for m in registry.known_values().get("model_two", []) if m.startswith(prefix)]
        return [html.Option(value=m) for m in models[:200]]

    @app.callback(
        Output("valuation", "children"), Output("form-status", "children"),
        *[Output(f"error-{f}", "children") for f in fields],
        Input("value-submit", "n_clicks"),
        *[State(f"form-{f}", "date" if f == "posting_date" else "value") for f in fields],
        prevent_initial_call=True,
    )  # fmt: skip
    def valuate(_: int, *values: Any) -> tuple[Any, ...]:
        checked = listing_from_form(form_listing(dict(zip(fields, values, strict=True))))
        if isinstance(checked, dict):
            status = f"Please correct {len(checked)} field{'s' if len(checked) > 1 else ''}."
            return "", status, *[checked.get(f, "") for f in fields]
        loaded, why = registry.champion_or_reason()
        if loaded is None:
            return "", why, *[""] * len(fields)
        return valuation_view(value(loaded.model, checked), loaded.version), "", *[""] * len(fields)


def register_dead_letters(app: Dash, pool: ConnectionPool) -> None:
    @app.callback(Output("dead-letters", "data"), Output("reasons-chart", "figure"),
                  Input("dead-letters-tick", "n_intervals"))  # fmt: skip
    def refresh_dead_letters(_: int | None) -> tuple[Any, ...]:
        return dead_letters_outputs(pool)


def create_dash_app(settings: Settings) -> Dash:
    pool = ConnectionPool(settings.reader_database_url.get_secret_value(), min_size=1, max_size=4, open=True)
    registry = RegistryView(settings, ttl_s=min(settings.registry_poll_s, 15.0))
    registry.warm()
    app = Dash(__name__, title="PriceMyRide", suppress_callback_exceptions=True)
    app.layout = functools.partial(layout, with_login=settings.dashboard_users_file is not None)

    @app.callback(Output("page", "children"), Input("url", "pathname"))
    def route(pathname: str | None) -> list[Any]:
        if pathname == "/value":
            return value_page(registry.known_values())
        page = PAGE_LAYOUTS.get(pathname or "/")
        if page is None:
            return [html.P(f"No page at {pathname}; pick one above.", className="empty-state")]
        return page()

    register_live(app, pool)
    register_drift(app, pool, settings.drift.drift_share)
    register_models(app, pool, registry)
    register_value(app, registry)
    register_dead_letters(app, pool)
    return app


def run(settings: Settings) -> None:
    """Serve the dashboard as ``dashboard.serving`` decides (server, logins, metrics) until stopped."""
    from dashboard.serving import serve

    serve(settings, create_dash_app)
