"""The analysts' dashboard (Dash): live predictions and counts, read through the read-only role."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
from dash import Dash, Input, Output, dash_table, dcc, html
from psycopg_pool import ConnectionPool

from dashboard import queries
from pricemyride.settings import Settings

REFRESH_MS = 2_000
DEAL_COLORS = {"great": "#1a7f37", "good": "#4c9a2a", "fair": "#6b7785", "high": "#c2620a", "overpriced": "#b42318"}
COLUMNS = [
    ("scored_at", "Scored at"),
    ("car", "Car"),
    ("odometer", "Miles"),
    ("state", "State"),
    ("asking_price", "Asking price"),
    ("predicted_price", "Fair price"),
    ("range", "80% range"),
    ("deal_rating", "Deal"),
    ("model_version", "Model"),
]


def money(value: Any) -> str:
    return "—" if value is None else f"${float(value):,.0f}"


def table_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "scored_at": r["scored_at"].strftime("%Y-%m-%d %H:%M:%S %Z"),
            "car": " ".join(str(r[k]) for k in ("year", "manufacturer", "model") if r.get(k)) or "(not given)",
            "odometer": "—" if r["odometer"] is None else f"{float(r['odometer']):,.0f}",
            "state": (r["state"] or "—").upper(),
            "asking_price": money(r["asking_price"]),
            "predicted_price": money(r["predicted_price"]),
            "range": f"{money(r['price_low'])} – {money(r['price_high'])}" if r["price_low"] is not None else "—",
            "deal_rating": r["deal_rating"] or "—",
            "model_version": f"v{r['model_version']}",
        }
        for r in rows
    ]


EVENT_COLUMNS = [("at", "When"), ("kind", "Decision"), ("version", "Version"), ("champion", "Against"),
                 ("reason", "Why")]  # fmt: skip


def drift_figure(windows: list[dict[str, Any]], events: list[dict[str, Any]]) -> go.Figure:
    """Realized MAE per window (by model version), drifting windows marked, promotions as lines."""
    figure = go.Figure()
    for version in sorted({w["model_version"] for w in windows}):
        mine = [w for w in windows if w["model_version"] == version and w["mae"] is not None]
        figure.add_scatter(x=[w["window_end"] for w in mine], y=[w["mae"] for w in mine], mode="lines+markers",
                           name=f"realized MAE, v{version}")  # fmt: skip
    fired = [w for w in windows if w["fired"] and w["mae"] is not None]
    figure.add_scatter(x=[w["window_end"] for w in fired], y=[w["mae"] for w in fired], mode="markers",
                       marker={"symbol": "x", "size": 11, "color": "#b42318"}, name="drift fired")  # fmt: skip
    for event in events:
        if event["kind"] == "promoted":
            figure.add_vline(x=event["at"], line_dash="dash", line_color="#1a7f37")
            figure.add_annotation(x=event["at"], y=1, yref="paper", text=f"v{event['version']} promoted",
                                  showarrow=False, yanchor="bottom")  # fmt: skip
    if not windows:
        figure.add_annotation(text="No drift windows yet: the drift worker closes one every 2,000 predictions "
                              "or 5 minutes (PRICEMYRIDE_DRIFT_WINDOW_*).", showarrow=False, x=0.5, y=0.5,
                              xref="paper", yref="paper")  # fmt: skip
    figure.update_layout(height=320, margin={"l": 40, "r": 10, "t": 30, "b": 30}, yaxis_title="MAE ($)",
                         legend={"orientation": "h"}, template="plotly_white")  # fmt: skip
    return figure


def stat(label: str, element_id: str) -> html.Div:
    return html.Div(
        [html.Div(label, className="stat-label"), html.Div("…", id=element_id, className="stat-value")],
        className="stat",
    )


def layout() -> html.Div:
    return html.Div(
        [
            html.H1("PriceMyRide — live valuations"),
            html.Div(
                [
                    stat("Listings scored", "scored"),
                    stat("Dead-lettered", "dead-lettered"),
                    stat("Scored in the last minute", "last-minute"),
                ],
                className="stats",
            ),
            html.Div(id="empty-state"),
            dash_table.DataTable(  # type: ignore[attr-defined]
                id="latest",
                columns=[{"id": c, "name": n} for c, n in COLUMNS],
                page_size=25,
                style_cell={"fontFamily": "sans-serif", "padding": "4px 8px", "textAlign": "left"},
                style_data_conditional=[
                    {
                        "if": {"filter_query": f'{{deal_rating}} = "{rating}"', "column_id": "deal_rating"},
                        "backgroundColor": color,
                        "color": "white",
                        "fontWeight": "600",
                    }
                    for rating, color in DEAL_COLORS.items()
                ],
                style_cell_conditional=[
                    {"if": {"column_id": c}, "textAlign": "right"}
                    for c in ("odometer", "asking_price", "predicted_price")
                ],
            ),
            html.H2("Drift and model history"),
            dcc.Graph(id="drift-chart", config={"displayModeBar": False}),
            dash_table.DataTable(  # type: ignore[attr-defined]
                id="model-events",
                columns=[{"id": c, "name": n} for c, n in EVENT_COLUMNS],
                page_size=10,
                style_cell={"fontFamily": "sans-serif", "padding": "4px 8px", "textAlign": "left"},
            ),
            dcc.Interval(id="tick", interval=REFRESH_MS),
        ],
        style={"maxWidth": "1100px", "margin": "0 auto", "fontFamily": "sans-serif"},
    )


def create_dash_app(settings: Settings) -> Dash:
    pool = ConnectionPool(settings.reader_database_url.get_secret_value(), min_size=1, max_size=4, open=False)
    app = Dash(__name__, title="PriceMyRide")
    app.layout = layout

    @app.callback(
        Output("drift-chart", "figure"),
        Output("model-events", "data"),
        Output("latest", "data"),
        Output("scored", "children"),
        Output("dead-lettered", "children"),
        Output("last-minute", "children"),
        Output("empty-state", "children"),
        Input("tick", "n_intervals"),
    )
    def refresh(_: int | None) -> tuple[Any, ...]:
        if pool.closed:
            pool.open(wait=True, timeout=10)
        found = queries.counts(pool)
        empty = "" if found["scored"] else "No predictions yet: start a worker and a producer (make demo does both)."
        events = queries.model_events(pool)
        history = [{**e, "at": e["at"].strftime("%Y-%m-%d %H:%M:%S")} for e in events]
        return (
            drift_figure(queries.drift_windows(pool), events),
            history,
            table_rows(queries.latest_predictions(pool)),
            f"{found['scored']:,}",
            f"{found['dead_lettered']:,}",
            f"{found['last_minute']:,}",
            empty,
        )

    return app


def run(settings: Settings) -> None:
    create_dash_app(settings).run(host=settings.dashboard_host, port=settings.dashboard_port, debug=False)
