"""Live: counts, throughput and latency, and the latest valuations."""

from __future__ import annotations

from typing import Any, Final

from dash import Dash, Output, html

from dashboard import figures, queries
from dashboard.page import Context, Outputs, Page, on_tick
from dashboard.widgets import EXPORT_CAP, Columns, deal_styles, downloads, graph, stat, table, tick

MINUTES: Final = 10


class Id:
    SCORED: Final = "scored"
    DEAD_LETTERED: Final = "dead-lettered"
    LAST_MINUTE: Final = "last-minute"
    EMPTY: Final = "empty-state"
    THROUGHPUT: Final = "throughput-chart"
    LATEST: Final = "latest"
    TICK: Final = "live-tick"


PREDICTION_COLUMNS: Final[Columns] = (
    ("scored_at", "Scored at"), ("source", "Source"), ("car", "Car"), ("odometer", "Miles"), ("state", "State"),
    ("asking_price", "Asking price"), ("predicted_price", "Fair price"), ("range", "80% range"),
    ("deal_rating", "Deal"), ("model_version", "Model"),
)  # fmt: skip
OUTPUTS: Final[Outputs] = {
    "latest": Output(Id.LATEST, "data"), "scored": Output(Id.SCORED, "children"),
    "dead_lettered": Output(Id.DEAD_LETTERED, "children"), "last_minute": Output(Id.LAST_MINUTE, "children"),
    "empty": Output(Id.EMPTY, "children"), "throughput": Output(Id.THROUGHPUT, "figure"),
}  # fmt: skip


def layout(_: Context) -> list[Any]:
    right = [{"if": {"column_id": c}, "textAlign": "right"} for c in ("odometer", "asking_price", "predicted_price")]
    tiles = [stat("Listings scored", Id.SCORED), stat("Dead-lettered", Id.DEAD_LETTERED),
             stat("Scored in the last minute", Id.LAST_MINUTE)]  # fmt: skip
    return [
        html.Div(tiles, className="stats"),
        html.Div(id=Id.EMPTY, className="empty-state"),
        graph(Id.THROUGHPUT),
        html.H2("Latest valuations"),
        table(Id.LATEST, PREDICTION_COLUMNS, style_data_conditional=deal_styles(), style_cell_conditional=right),
        html.Div(downloads(f"The newest {EXPORT_CAP:,} valuations", "latest"), className="exports"),
        tick(Id.TICK),
    ]


def refresh(ctx: Context) -> dict[str, Any]:
    """Everything the page shows (one refresh)."""
    found = queries.counts(ctx.pool)
    empty = "" if found["scored"] else "No predictions yet: start a worker and a producer (make demo does both)."
    return {
        "latest": figures.prediction_rows(queries.latest_predictions(ctx.pool)),
        "scored": f"{found['scored']:,}", "dead_lettered": f"{found['dead_lettered']:,}",
        "last_minute": f"{found['last_minute']:,}", "empty": empty,
        "throughput": figures.throughput_figure(queries.throughput(ctx.pool, MINUTES), MINUTES),
    }  # fmt: skip


def register(app: Dash, ctx: Context) -> None:
    on_tick(app, OUTPUTS, Id.TICK, lambda: refresh(ctx))


PAGE: Final = Page("/", "Live", layout, register)
