"""How the dashboard is served: the web server, the login in front of every page, metrics and health.

- Server: Werkzeug's development server in development, Waitress everywhere else
  (``PRICEMYRIDE_DASHBOARD_SERVER``: auto | waitress | werkzeug; production refuses werkzeug). Waitress is
  one process with a bounded pool of threads, so the metrics and the readiness below describe the whole
  dashboard; scale it by replicas behind a proxy.
- Logins: HTTP basic authentication (dash-auth) on every route, Dash's own requests included, checked
  against scrypt hashes in ``PRICEMYRIDE_DASHBOARD_USERS_FILE`` (one ``user:hash`` per line, made by
  ``pricemyride hash-password``). Required in production; optional in development.
- Metrics and health: on the ops port (``pricemyride.ops``), never on the dashboard's own port.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import flask
import psycopg
from dash import Dash
from dash_auth import BasicAuth
from prometheus_client import Counter, Histogram
from werkzeug.security import check_password_hash

from pricemyride.errors import ConfigError
from pricemyride.ops import PREFIX, SECONDS_BUCKETS, Health, serve_ops
from pricemyride.settings import Settings, env_name

log = logging.getLogger(__name__)
HASH_METHODS = ("scrypt:", "pbkdf2:")
MAX_REMEMBERED = 1_000
REQUESTS = Counter(f"{PREFIX}dashboard_requests_total", "Dashboard HTTP requests, by route class and status class.",
                   ["route", "status"])  # fmt: skip
REQUEST_SECONDS = Histogram(f"{PREFIX}dashboard_request_seconds", "Seconds to answer a dashboard request.",
                            ["route"], buckets=SECONDS_BUCKETS)  # fmt: skip
LOGIN_FAILURES = Counter(f"{PREFIX}dashboard_login_failures_total", "Requests refused for wrong credentials.")
SIGN_IN_PAGE = """<!doctype html><html><head><title>PriceMyRide — sign in</title></head>
<body style="font-family:sans-serif;margin:4em"><h1>PriceMyRide</h1>
<p>Sign in with your analyst login to see the dashboard.</p></body></html>"""


def parse_user_line(number: int, line: str) -> tuple[str, str]:
    user, sep, hashed = line.partition(":")
    where = f"{env_name('dashboard_users_file')} line {number}"
    if not sep or not user.strip():
        raise ConfigError(f"{where}: expected 'user:hash' (from `pricemyride hash-password`), got no user name")
    if not hashed.startswith(HASH_METHODS):
        raise ConfigError(f"{where}: expected a password hash (scrypt: or pbkdf2:), got something else "
                          "(plain passwords are refused; the value is not shown)")  # fmt: skip
    return user.strip(), hashed.strip()


def load_users(path: Path) -> dict[str, str]:
    """user → password hash, from the logins file; blank lines and ``#`` comments are skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"{env_name('dashboard_users_file')}: expected a readable file, got {path} "
                          f"({exc.strerror})") from None  # fmt: skip
    users = dict(parse_user_line(n, line) for n, line in enumerate(lines, 1) if line.strip() and line[0] != "#")
    if not users:
        raise ConfigError(f"{env_name('dashboard_users_file')}: expected at least one 'user:hash' line, got none")
    return users


class Logins:
    """Checks a user and password against the hashes. A scrypt check costs ~0.1 s and every Dash request
    carries the credentials, so a successful pair is remembered — as an HMAC under a key that lives only
    in this process, never the password."""

    def __init__(self, users: dict[str, str]) -> None:
        self.users, self.key, self.remembered = users, secrets.token_bytes(32), set[bytes]()

    def check(self, user: str, password: str) -> bool:
        token = hmac.new(self.key, f"{user}\0{password}".encode(), hashlib.sha256).digest()
        if token in self.remembered:
            return True
        hashed = self.users.get(user)
        if hashed is None or not check_password_hash(hashed, password):
            LOGIN_FAILURES.inc()
            return False
        if len(self.remembered) >= MAX_REMEMBERED:
            self.remembered.clear()
        self.remembered.add(token)
        return True


class Login(BasicAuth):  # type: ignore[misc]
    """dash-auth's basic authentication; a malformed Authorization header is refused (not a server error),
    and the 401 page says where the visitor is without showing anything of the dashboard."""

    def is_authorized(self) -> bool:
        try:
            return bool(super().is_authorized())
        except (IndexError, ValueError, binascii.Error, UnicodeDecodeError):
            return False

    def login_request(self) -> flask.Response:
        headers = {"WWW-Authenticate": 'Basic realm="PriceMyRide", charset="UTF-8"'}
        return flask.Response(SIGN_IN_PAGE, status=401, headers=headers, mimetype="text/html")


def route_class(path: str) -> str:
    if path.startswith("/_dash-update-component"):
        return "callback"
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


def database_answers(settings: Settings) -> bool:
    with psycopg.connect(settings.reader_database_url.get_secret_value(), connect_timeout=2) as conn:
        return conn.execute("SELECT 1").fetchone() is not None


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
    if logins is not None:
        Login(app, auth_func=logins.check, secret_key=secrets.token_hex(32))
    serve_ops(settings, "dashboard", Health({"database": lambda: database_answers(settings)}))
    log.info("dashboard: %s on http://%s:%d/", kind, settings.dashboard_host, settings.dashboard_port)
    if kind == "werkzeug":
        app.run(host=settings.dashboard_host, port=settings.dashboard_port, debug=False)
        return
    run_waitress(settings, app.server)


def run_waitress(settings: Settings, wsgi: Any) -> None:
    import waitress

    waitress.serve(wsgi, host=settings.dashboard_host, port=settings.dashboard_port, threads=settings.dashboard_threads,
                   connection_limit=settings.dashboard_connection_limit, channel_timeout=settings.dashboard_timeout_s,
                   ident="PriceMyRide", clear_untrusted_proxy_headers=True)  # fmt: skip
