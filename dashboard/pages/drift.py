"""Drift: per-feature drift scores over the windows, and the drift share, error and coverage timeline."""

from __future__ import annotations

from typing import Any, Final

from dash import Dash, Output, html

from dashboard import figures, queries
from dashboard.page import Context, Outputs, Page, on_tick
from dashboard.widgets import downloads, graph, hint, tick


class Id:
    HEATMAP: Final = "drift-heatmap"
    TIMELINE: Final = "drift-timeline"
    TICK: Final = "drift-tick"


OUTPUTS: Final[Outputs] = {"heatmap": Output(Id.HEATMAP, "figure"), "timeline": Output(Id.TIMELINE, "figure")}


def layout(_: Context) -> list[Any]:
    return [
        hint(
            "Each window is a slice of the live stream compared with the champion's training reference "
            "(Evidently). Dotted orange lines: retrain requests; dashed green: promotions."
        ),
        html.H2("Per-feature drift score"),
        graph(Id.HEATMAP),
        html.H2("Drift share, realized error and range coverage"),
        graph(Id.TIMELINE),
        html.Div(downloads("Every drift window", "drift-windows"), className="exports"),
        tick(Id.TICK, every=5),
    ]


def refresh(ctx: Context) -> dict[str, Any]:
    pool = ctx.pool
    timeline = figures.drift_timeline(queries.drift_windows(pool), queries.retrain_requests(pool),
                                      queries.model_events(pool), ctx.settings.drift.drift_share)  # fmt: skip
    return {"heatmap": figures.drift_heatmap(queries.drift_features(pool)), "timeline": timeline}


def register(app: Dash, ctx: Context) -> None:
    on_tick(app, OUTPUTS, Id.TICK, lambda: refresh(ctx))


PAGE: Final = Page("/drift", "Drift", layout, register)
