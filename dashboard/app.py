"""The analysts' dashboard (Dash): it assembles the pages of ``dashboard.pages`` (each page's layout,
callbacks and component ids live in its own module) under one navigation and one router.

Postgres is read through the read-only role with bounded queries (``dashboard.queries``); the registry
and the champion model through a cached ``RegistryView``. Each page refreshes itself on a timer.
"""

from __future__ import annotations

import functools
from typing import Any

from dash import Dash, Input, Output, dcc, html
from psycopg_pool import ConnectionPool

from dashboard import exports
from dashboard.page import Context, Page
from dashboard.pages import PAGES
from dashboard.registry import RegistryView
from pricemyride.settings import Settings


def sign_out_form() -> html.Form:
    """Signing out is a POST (a link or an image could not end the session from another page)."""
    return html.Form(html.Button("Sign out", id="sign-out", type="submit"), action="/logout", method="POST",
                     className="sign-out")  # fmt: skip


def layout(pages: tuple[Page, ...], with_login: bool = False) -> html.Div:
    links = [dcc.Link(page.name, href=page.path, id=page.nav_id, className="nav-link") for page in pages]
    header = [html.H1("PriceMyRide"), html.Nav(links), *([sign_out_form()] if with_login else [])]
    return html.Div([dcc.Location(id="url"), html.Header(header), html.Main(id="page")], className="container")


def context(settings: Settings) -> Context:
    pool = ConnectionPool(settings.reader_database_url.get_secret_value(), min_size=1, max_size=4, open=True)
    registry = RegistryView(settings, ttl_s=min(settings.registry_poll_s, 15.0))
    registry.warm()
    return Context(settings, pool, registry)


def create_dash_app(settings: Settings, pages: tuple[Page, ...] = PAGES) -> Dash:
    ctx = context(settings)
    app = Dash(__name__, title="PriceMyRide", suppress_callback_exceptions=True)
    app.layout = functools.partial(layout, pages, with_login=settings.dashboard_users_file is not None)
    by_path = {page.path: page for page in pages}

    @app.callback(Output("page", "children"), Input("url", "pathname"))
    def route(pathname: str | None) -> list[Any]:
        page = by_path.get(pathname or "/")
        if page is None:
            return [html.P(f"No page at {pathname}; pick one above.", className="empty-state")]
        return page.layout(ctx)

    for page in pages:
        page.register(app, ctx)
    exports.register(app.server, ctx)
    return app


def run(settings: Settings) -> None:
    """Serve the dashboard as ``dashboard.serving`` decides (server, logins, metrics) until stopped."""
    from dashboard.serving import serve

    serve(settings, create_dash_app)
