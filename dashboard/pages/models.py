"""Models: the registered versions, the champion's quality per slice, listings per version, the running
shadow against the champion on live listings, and every model decision."""

from __future__ import annotations

from typing import Any, Final

from dash import Dash, Output, html

from dashboard import figures, queries
from dashboard.page import Context, Outputs, Page, on_tick
from dashboard.widgets import Columns, downloads, graph, hint, table, tick
from training.live_gate import compare_live, labelled
from training.shadow import Role


class Id:
    VERSIONS: Final = "model-versions"
    EMPTY: Final = "models-empty"
    SLICES: Final = "champion-slices"
    COUNTS: Final = "version-counts"
    SHADOW_SUMMARY: Final = "shadow-summary"
    SHADOW_GROUPS: Final = "shadow-groups"
    EVENTS: Final = "model-events"
    TICK: Final = "models-tick"


SHADOW_COLUMNS: Final[Columns] = (
    ("group", "Slice kind"), ("name", "Slice"), ("rows", "Labelled live listings"), ("champion_mae", "Champion MAE"),
    ("shadow_mae", "Shadow MAE"), ("champion_coverage", "Champion coverage"), ("shadow_coverage", "Shadow coverage"),
)  # fmt: skip
EVENT_COLUMNS: Final[Columns] = (("at", "When"), ("kind", "Decision"), ("version", "Version"),
                                 ("champion", "Against"), ("reason", "Why"))  # fmt: skip
SLICE_COLUMNS: Final[Columns] = (
    ("group", "Slice kind"), ("slice", "Slice"), ("rows", "Rows"), ("mae", "MAE"), ("rmse", "RMSE"),
    ("bias", "Median signed error"), ("coverage", "80% coverage"), ("width", "Mean width"),
    ("unsure", "Not enough information"),
)  # fmt: skip
VERSION_COLUMNS: Final[Columns] = (
    ("version", "Version"), ("aliases", "Aliases"), ("created", "Registered"), ("mae", "MAE"), ("rmse", "RMSE"),
    ("r2", "R²"), ("coverage", "80% coverage"), ("gate", "Gate"), ("gate_reason", "Gate's reason"),
    ("scored", "Listings scored"), ("data", "Trained on"),
)  # fmt: skip
OUTPUTS: Final[Outputs] = {
    "versions": Output(Id.VERSIONS, "data"), "counts": Output(Id.COUNTS, "figure"),
    "events": Output(Id.EVENTS, "data"), "empty": Output(Id.EMPTY, "children"), "slices": Output(Id.SLICES, "data"),
    "shadow_summary": Output(Id.SHADOW_SUMMARY, "children"), "shadow_groups": Output(Id.SHADOW_GROUPS, "data"),
}  # fmt: skip


def layout(_: Context) -> list[Any]:
    return [
        html.H2("Registered versions"),
        html.Div(id=Id.EMPTY, className="empty-state"),
        table(Id.VERSIONS, VERSION_COLUMNS, page_size=20),
        html.H2("Champion quality per slice"),
        hint("On the held-out part of its training data: asking-price bands, seller samples, and the same rows "
             "with fields blanked as sites send them. `pricemyride evaluate` compares both baselines too."),
        table(Id.SLICES, SLICE_COLUMNS, page_size=25),
        html.H2("Listings scored per version"),
        graph(Id.COUNTS),
        html.H2("Shadow on live listings"),
        hint("", Id.SHADOW_SUMMARY),
        table(Id.SHADOW_GROUPS, SHADOW_COLUMNS, page_size=20),
        html.H2("Promotions, shadows and rejections"),
        table(Id.EVENTS, EVENT_COLUMNS, page_size=15),
        html.Div(downloads("Every model decision, with its figures", "model-events"), className="exports"),
        tick(Id.TICK, every=5),
    ]  # fmt: skip


def shadow(ctx: Context) -> dict[str, Any]:
    """The running shadow against the champion so far, computed as the live gate computes it."""
    settings = ctx.settings
    active = queries.active_shadow(ctx.pool, settings.model_name)
    comparison = compare_live(labelled(queries.shadow_live_rows(ctx.pool, active)), settings.shadow) if active else None
    watching = active is not None and active.role is Role.WATCH
    needed = settings.shadow.watch_rows if watching else settings.shadow.min_rows
    return {"shadow_summary": figures.shadow_summary(active, comparison, needed),
            "shadow_groups": figures.shadow_group_rows(comparison)}  # fmt: skip


def refresh(ctx: Context) -> dict[str, Any]:
    registry = ctx.registry
    versions = registry.versions()
    counts = queries.version_counts(ctx.pool)
    champion = next((v for v in versions if registry.settings.champion_alias in v.aliases), None)
    return {
        "versions": figures.version_rows(versions, counts), "counts": figures.version_counts_figure(counts),
        "events": figures.event_rows(queries.model_events(ctx.pool)),
        "empty": "" if versions else "No model registered yet: run `pricemyride train` (make demo trains one).",
        "slices": figures.slice_rows(registry.slices(champion.run_id)) if champion else [],
        **shadow(ctx),
    }  # fmt: skip


def register(app: Dash, ctx: Context) -> None:
    on_tick(app, OUTPUTS, Id.TICK, lambda: refresh(ctx))


PAGE: Final = Page("/models", "Models", layout, register)
