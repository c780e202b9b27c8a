"""Dead letters: the events the workers could not score, counted by the field that failed first."""

from __future__ import annotations

from typing import Any, Final

from dash import Dash, Output, html

from dashboard import figures, queries
from dashboard.page import Context, Outputs, Page, on_tick
from dashboard.widgets import EXPORT_CAP, Columns, downloads, graph, hint, table, tick


class Id:
    TABLE: Final = "dead-letters"
    REASONS: Final = "reasons-chart"
    TICK: Final = "dead-letters-tick"


COLUMNS: Final[Columns] = (("failed_at", "Rejected at"), ("where", "Topic[partition]@offset"), ("key", "Key"),
                           ("reason", "Reason"), ("payload", "Payload (start)"))  # fmt: skip
OUTPUTS: Final[Outputs] = {"rows": Output(Id.TABLE, "data"), "reasons": Output(Id.REASONS, "figure")}


def layout(_: Context) -> list[Any]:
    return [
        hint(
            "Events the workers could not score, with the reason the stream gave. Counts group the newest "
            f"{queries.RECENT_DEAD_LETTERS:,} dead letters by the field that failed first."
        ),
        html.H2("Dead letters by field"),
        graph(Id.REASONS),
        html.H2("Most recent"),
        table(Id.TABLE, COLUMNS, page_size=20),
        html.Div(downloads(f"The newest {EXPORT_CAP:,} dead letters", "dead-letters"), className="exports"),
        tick(Id.TICK, every=2),
    ]


def refresh(ctx: Context) -> dict[str, Any]:
    return {"rows": figures.dead_letter_rows(queries.dead_letters(ctx.pool)),
            "reasons": figures.reasons_figure(queries.dead_letter_reasons(ctx.pool))}  # fmt: skip


def register(app: Dash, ctx: Context) -> None:
    on_tick(app, OUTPUTS, Id.TICK, lambda: refresh(ctx))


PAGE: Final = Page("/dead-letters", "Dead letters", layout, register)
