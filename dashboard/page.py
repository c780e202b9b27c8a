"""What a page is: its path and name in the navigation, its layout and its callbacks. Each page of
``dashboard.pages`` is one module holding the three, its component ids defined once; ``dashboard.app``
only assembles them.

A refreshing page declares its outputs once, by name (``Outputs``): its refresh returns a dict with the
same names, so no callback depends on the order of a tuple.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dash import Dash, Input, Output
from psycopg_pool import ConnectionPool

from dashboard.registry import RegistryView
from pricemyride.settings import Settings

Outputs = Mapping[str, Output]


@dataclass(frozen=True)
class Context:
    """What pages read: settings, the read-only pool and the cached registry."""

    settings: Settings
    pool: ConnectionPool
    registry: RegistryView


@dataclass(frozen=True)
class Page:
    path: str
    name: str
    layout: Callable[[Context], list[Any]]
    register: Callable[[Dash, Context], None]

    @property
    def nav_id(self) -> str:
        return f"nav{self.path.replace('/', '-')}"


def on_tick(app: Dash, outputs: Outputs, tick_id: str, refresh: Callable[[], dict[str, Any]]) -> None:
    """Refresh ``outputs`` (by name) from ``refresh()`` whenever the page's timer ``tick_id`` fires."""

    def refreshed(tick: int | None) -> dict[str, Any]:
        return refresh()

    app.callback(output=dict(outputs), inputs={"tick": Input(tick_id, "n_intervals")})(refreshed)
