"""How the dashboard is served: the web server, the login in front of every page, metrics and health.

- Server: Werkzeug's development server in development, Waitress everywhere else
  (``PRICEMYRIDE_DASHBOARD_SERVER``: auto | waitress | werkzeug; production refuses werkzeug). Waitress is
  one process with a bounded pool of threads, so the metrics and the readiness below describe the whole
  dashboard; scale it by replicas behind a proxy.
- Logins (``dashboard.login``): every route asks for one when ``PRICEMYRIDE_DASHBOARD_USERS_FILE`` is set;
  required in production, optional in development.
- Metrics and health: on the ops port (``pricemyride.ops``), never on the dashboard's own port.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import flask
from dash import Dash
from prometheus_client import Counter, Histogram

from dashboard.login import Login, Logins, load_users
from pricemyride.errors import ConfigError
from pricemyride.ops import PREFIX, SECONDS_BUCKETS, Health, reader_answers, serve_ops
from pricemyride.settings import Settings, env_name

log = logging.getLogger(__name__)
REQUESTS = Counter(f"{PREFIX}dashboard_requests_total", "Dashboard HTTP requests, by route class and status class.",
                   ["route", "status"])  # fmt: skip
REQUEST_SECONDS = Histogram(f"{PREFIX}dashboard_request_seconds", "Seconds to answer a dashboard request.",
                            ["route"], buckets=SECONDS_BUCKETS)  # fmt: skip


def route_class(path: str) -> str:
    if path.startswith("/_dash-update-component"):
        return "callback"
    if path.startswith("/export/"):
        return "export"
    if path.startswith(("/assets/", "/_dash-component-suites/", "/_favicon")):
        return "asset"
    if path.startswith("/_dash-") or path.startswith("/_reload-hash"):
        return "dash"
    return "page"


def instrument(server: flask.Flask) -> None:
    """Count and time every request (logins refused included) by route class."""

    @server.before_request
    def started() -> None:
        flask.g.started = time.perf_counter()

    @server.after_request
    def finished(response: flask.Response) -> flask.Response:
        route = route_class(flask.request.path)
        REQUESTS.labels(route, f"{response.status_code // 100}xx").inc()
        REQUEST_SECONDS.labels(route).observe(time.perf_counter() - flask.g.get("started", time.perf_counter()))
        return response


def server_kind(settings: Settings) -> str:
    """'waitress' or 'werkzeug'; production never runs on the development server."""
    chosen = settings.dashboard_server
    if chosen == "auto":
        return "werkzeug" if settings.environment == "development" else "waitress"
    if chosen == "werkzeug" and settings.environment == "production":
        raise ConfigError(f"{env_name('dashboard_server')}: expected auto or waitress in production, got werkzeug "
                          "(Werkzeug's server is for development)")  # fmt: skip
    return chosen


def logins_for(settings: Settings) -> Logins | None:
    """The logins to check when a logins file is set; production requires one."""
    if settings.dashboard_users_file is not None:
        logins = Logins(load_users(settings.dashboard_users_file))
        log.info("dashboard: %d login(s) from %s", len(logins.users), settings.dashboard_users_file)
        return logins
    if settings.environment == "production":
        raise ConfigError(f"{env_name('dashboard_users_file')}: expected a file of dashboard logins in production, "
                          "got none")  # fmt: skip
    log.warning("dashboard: no logins (%s not set): anyone who reaches the port sees every page",
                env_name("dashboard_users_file"))  # fmt: skip
    return None


def serve(settings: Settings, build: Callable[[Settings], Dash]) -> None:
    """Check the settings, build the app, put metrics and the login in front, and serve until stopped."""
    kind, logins = server_kind(settings), logins_for(settings)
    app = build(settings)
    instrument(app.server)  # first, so refused requests are counted and timed too
    app.server.config["MAX_CONTENT_LENGTH"] = settings.dashboard_max_body_bytes
    if logins is not None:
        Login(app, logins, secure_cookie=settings.secure_cookie)
    harden(app)
    serve_ops(settings, "dashboard", Health({"database": lambda: reader_answers(settings)}))
    log.info("dashboard: %s on http://%s:%d/", kind, settings.dashboard_host, settings.dashboard_port)
    if kind == "werkzeug":
        app.run(host=settings.dashboard_host, port=settings.dashboard_port, debug=False)
        return
    run_waitress(settings, app.server)


def security_headers(app: Dash) -> dict[str, str]:
    """What every response says to the browser: scripts only from here (Dash's inline start-up script by its
    hash), no framing, no MIME sniffing, no referrer sent elsewhere. Plotly sets styles inline."""
    scripts = " ".join(app.csp_hashes())  # each already quoted: 'sha256-…'
    policy = (f"default-src 'self'; script-src 'self' {scripts}; style-src 'self' 'unsafe-inline'; "
              "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; object-src 'none'; "
              "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")  # fmt: skip
    return {"Content-Security-Policy": policy, "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin", "Cross-Origin-Opener-Policy": "same-origin"}  # fmt: skip


def harden(app: Dash) -> None:
    """Security headers on every response, and a callback request that is not a JSON object refused with 400
    (Dash answered ``[1,2]`` with a 500). Registered after the login, so nobody's body is read before it."""
    headers = security_headers(app)

    @app.server.before_request
    def callback_shape() -> flask.Response | None:
        if flask.request.path != "/_dash-update-component":
            return None
        body = flask.request.get_json(silent=True)
        if isinstance(body, dict) and "output" in body:
            return None
        got = "a JSON " + type(body).__name__ if body is not None else "no JSON"
        return flask.Response(f"expected a JSON object with 'output' and 'inputs', got {got}\n", status=400,
                              mimetype="text/plain")  # fmt: skip

    @app.server.after_request
    def add_headers(response: flask.Response) -> flask.Response:
        response.headers.update(headers)
        return response


def proxy_options(settings: Settings) -> dict[str, Any]:
    """Waitress's trusted-proxy options: with a proxy named, its X-Forwarded-For/-Proto give the client."""
    if not settings.dashboard_trusted_proxy:
        return {"clear_untrusted_proxy_headers": True}
    return {
        "trusted_proxy": settings.dashboard_trusted_proxy,
        "trusted_proxy_count": settings.dashboard_trusted_proxy_count,
        "trusted_proxy_headers": {"x-forwarded-for", "x-forwarded-proto"},
        "clear_untrusted_proxy_headers": True,
    }


def run_waitress(settings: Settings, wsgi: Any) -> None:
    import waitress

    waitress.serve(wsgi, host=settings.dashboard_host, port=settings.dashboard_port, threads=settings.dashboard_threads,
                   connection_limit=settings.dashboard_connection_limit, channel_timeout=settings.dashboard_timeout_s,
                   max_request_body_size=settings.dashboard_max_body_bytes, ident="PriceMyRide",
                   **proxy_options(settings))  # fmt: skip
