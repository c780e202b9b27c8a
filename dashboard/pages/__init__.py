"""The dashboard's pages, in navigation order: each module holds its layout, callbacks and component ids."""

from __future__ import annotations

from typing import Final

from dashboard.page import Page
from dashboard.pages import dead_letters, deals, drift, live, lookup, market, models, value

PAGES: Final[tuple[Page, ...]] = (
    live.PAGE, market.PAGE, deals.PAGE, lookup.PAGE, drift.PAGE, models.PAGE, value.PAGE, dead_letters.PAGE,
)  # fmt: skip
