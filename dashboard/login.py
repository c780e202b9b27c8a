"""The dashboard's login: every route, Dash's own requests included, asks for one (a dash-auth ``Auth``).

- A browser gets the sign-in form (status 401, nothing of the dashboard). A right user and password set
  a signed, HttpOnly session cookie (SameSite=Lax; Secure in production) naming a session kept on the
  server, which ends ``SESSION_HOURS`` after the sign-in; a POST to ``/logout`` ends it on the server.
- Wrong passwords are throttled per client address and per user; every decision is one audit log line.
- A script may send HTTP basic credentials with each request instead; it gets a basic challenge (401).
- Users and scrypt hashes come from the logins file (``PRICEMYRIDE_DASHBOARD_USERS_FILE``), one
  ``user:hash`` per line, made by ``pricemyride hash-password USER``. No password is stored or logged.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import logging
import secrets
import threading
import time
from collections import OrderedDict, deque
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import flask
from dash import Dash
from dash_auth.auth import Auth
from prometheus_client import Counter
from werkzeug.security import check_password_hash, generate_password_hash
from werkzeug.wrappers import Response as WerkzeugResponse

from pricemyride.errors import ConfigError
from pricemyride.ops import PREFIX
from pricemyride.settings import env_name

HASH_METHODS = ("scrypt:", "pbkdf2:")
MAX_REMEMBERED = 1_000
SESSION_HOURS = 12
COOKIE = "pricemyride_session"
OPEN = frozenset({("/login", "GET"), ("/login", "POST"), ("/logout", "POST")})  # signing in and out; nothing else
MAX_FAILURES, FAILURE_WINDOW_S = 10, 300.0  # refused sign-ins per address and per user before a wait
MAX_TRACKED = 10_000  # addresses and users whose failures are remembered (the least recent forgotten first)
MAX_SESSIONS = 10_000  # open sessions; past that the oldest ends
AUDIT = logging.getLogger("pricemyride.audit")
LOGIN_FAILURES = Counter(
    f"{PREFIX}dashboard_login_failures_total", "Sign-ins and requests refused for wrong credentials."
)
SIGN_IN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>PriceMyRide — sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body {{ font-family: system-ui, sans-serif; background: #f4f6f8; margin: 0; }}
 form {{ max-width: 22rem; margin: 12vh auto; background: #fff; padding: 2rem 2.2rem; border-radius: 10px;
         box-shadow: 0 2px 12px rgba(0,0,0,.08); }}
 h1 {{ margin: 0 0 .3rem; font-size: 1.5rem; }} p {{ color: #555; margin: 0 0 1.2rem; }}
 label {{ display: block; font-size: .9rem; margin: .8rem 0 .3rem; }}
 input {{ width: 100%; box-sizing: border-box; padding: .55rem; border: 1px solid #bbb; border-radius: 6px; }}
 button {{ margin-top: 1.3rem; width: 100%; padding: .6rem; border: 0; border-radius: 6px; background: #1f6feb;
           color: #fff; font-size: 1rem; cursor: pointer; }}
 .error {{ color: #b42318; margin-top: .8rem; }}
</style></head>
<body><form method="post" action="/login">
<h1>PriceMyRide</h1><p>Sign in with your analyst login.</p>
<label for="user">User</label><input id="user" name="user" autocomplete="username" required autofocus>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<input type="hidden" name="next" value="{target}">
<button id="sign-in" type="submit">Sign in</button>{error}
</form></body></html>"""


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
    """Checks a user and password against the hashes. A scrypt check costs ~0.1 s and a script sends its
    credentials with every request, so a pair that passed is remembered — as an HMAC under a key that
    lives only in this process, never the password."""

    def __init__(self, users: dict[str, str]) -> None:
        self.users, self.key, self.remembered = users, secrets.token_bytes(32), set[bytes]()
        self.decoy = generate_password_hash(secrets.token_urlsafe(16))  # an unknown user costs a check too

    def check(self, user: str, password: str) -> bool:
        return self.verify(user, password) != "refused"

    def verify(self, user: str, password: str) -> str:
        """'remembered' (passed before), 'accepted' (passed its hash check now) or 'refused'."""
        token = hmac.new(self.key, f"{user}\0{password}".encode(), hashlib.sha256).digest()
        if token in self.remembered:
            return "remembered"
        matches = check_password_hash(self.users.get(user, self.decoy), password)
        if not matches or user not in self.users:
            LOGIN_FAILURES.inc()
            return "refused"
        if len(self.remembered) >= MAX_REMEMBERED:
            self.remembered.clear()
        self.remembered.add(token)
        return "accepted"


class Throttle:
    """Refused sign-ins per key — a client address and a user name each count: after ``MAX_FAILURES`` within
    ``FAILURE_WINDOW_S`` the key is refused without a password check until its oldest failure ages out (each
    check costs 0.1 s of CPU). At most ``MAX_TRACKED`` keys are kept; past that the least recently failed is
    forgotten, so a flood of addresses costs bounded memory and releases no one else."""

    def __init__(self, max_tracked: int = MAX_TRACKED) -> None:
        self.failures: OrderedDict[str, deque[float]] = OrderedDict()
        self.max_tracked, self.lock = max_tracked, threading.Lock()

    def blocked(self, *keys: str) -> bool:
        with self.lock:
            return any(self._recent(key) >= MAX_FAILURES for key in keys)

    def _recent(self, key: str) -> int:
        recent = self.failures.get(key)
        while recent and time.monotonic() - recent[0] > FAILURE_WINDOW_S:
            recent.popleft()
        return len(recent) if recent else 0

    def failed(self, *keys: str) -> None:
        with self.lock:
            for key in keys:
                self.failures.setdefault(key, deque(maxlen=MAX_FAILURES)).append(time.monotonic())
                self.failures.move_to_end(key)
            while len(self.failures) > self.max_tracked:
                self.failures.popitem(last=False)


class Sessions:
    """Signed-in sessions, kept on the server: the cookie carries only a random id. Signing out deletes the
    id, so a copied cookie stops working too; a session ends ``lifetime`` after its sign-in however busy it
    is (the dashboard refreshes every 2 s). At most ``MAX_SESSIONS``; past that the oldest ends."""

    def __init__(self, lifetime: timedelta, max_sessions: int = MAX_SESSIONS) -> None:
        self.lifetime_s, self.max_sessions = lifetime.total_seconds(), max_sessions
        self.open: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self.lock = threading.Lock()

    def start(self, user: str) -> str:
        sid = secrets.token_urlsafe(32)
        with self.lock:
            self.open[sid] = (user, time.monotonic())
            while len(self.open) > self.max_sessions:
                self.open.popitem(last=False)
        return sid

    def user_of(self, sid: object) -> str | None:
        """The user of a live session (None for an unknown, ended or expired id)."""
        if not isinstance(sid, str):
            return None
        with self.lock:
            found = self.open.get(sid)
            if found and time.monotonic() - found[1] > self.lifetime_s:
                del self.open[sid]
                found = None
        return found[0] if found else None

    def end(self, sid: object) -> str | None:
        with self.lock:
            found = self.open.pop(sid, None) if isinstance(sid, str) else None
        return found[0] if found else None


def safe_target(target: str | None) -> str:
    """Where to go after signing in: a path of this site only. Browsers drop tabs and newlines and read a
    backslash as a slash, so "/\t/evil.example" would leave the site: any of those, or a scheme or host,
    sends the visitor to "/" instead."""
    if not target or not target.startswith("/") or any(c.isspace() or c < " " or c in "\\\x7f" for c in target):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or target.startswith("//"):
        return "/"
    return target


def sign_in_page(target: str, failed: bool = False, status: int = 401) -> flask.Response:
    message = "Too many failed sign-ins from here; try again in a few minutes." if status == 429 else (
        "Wrong user or password.")  # fmt: skip
    error = f'<p class="error" id="sign-in-error">{message}</p>' if failed else ""
    body = SIGN_IN_PAGE.format(target=html.escape(safe_target(target), quote=True), error=error)
    return flask.Response(body, status=status, mimetype="text/html", headers={"Cache-Control": "no-store"})


class Login(Auth):  # type: ignore[misc]
    """Route protection with a sign-in form and a server-side session for browsers, basic auth for scripts.

    The check runs first in every request and reads no body (dash-auth's own check parsed a callback's JSON
    before asking who sent it). Sign-ins, refusals and sign-outs are logged to ``pricemyride.audit``."""

    def __init__(self, app: Dash, logins: Logins, secure_cookie: bool = False) -> None:
        self.logins, self.throttle = logins, Throttle()
        self.sessions = Sessions(timedelta(hours=SESSION_HOURS))
        super().__init__(app)
        server = app.server
        server.secret_key = secrets.token_bytes(32)  # sessions end when the dashboard restarts
        server.config.update(SESSION_COOKIE_NAME=COOKIE, SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                             SESSION_COOKIE_SECURE=secure_cookie, SESSION_REFRESH_EACH_REQUEST=False,
                             PERMANENT_SESSION_LIFETIME=timedelta(hours=SESSION_HOURS))  # fmt: skip
        server.add_url_rule("/login", "pricemyride_login", self.sign_in, methods=["GET", "POST"])
        server.add_url_rule("/logout", "pricemyride_logout", self.sign_out, methods=["POST"])

    def _protect(self) -> None:
        """Replaces dash-auth's check (it parsed a callback's body first): who asks, before anything else."""

        @self.app.server.before_request
        def signed_in_first() -> flask.Response | None:
            return None if self.is_authorized() else self.login_request()

    def is_authorized(self) -> bool:
        request = flask.request
        if (request.path, request.method) in OPEN or self.sessions.user_of(flask.session.get("sid")):
            return True
        given = request.authorization
        if given is None or given.type != "basic":
            return False
        return self.checked(given.username or "", given.password or "", "basic") is not None

    def checked(self, user: str, password: str, via: str) -> str | None:
        """The user if the password is right and neither the address nor the user is throttled; audited."""
        keys = (f"address {client()}", f"user {user}")
        if self.throttle.blocked(*keys):
            audit("refused (throttled)", user, via)
            return None
        outcome = self.logins.verify(user, password)
        if outcome == "refused":
            self.throttle.failed(*keys)
            audit("refused", user, via)
            return None
        if outcome == "accepted":
            audit("accepted", user, via)
        return user

    def login_request(self) -> flask.Response:
        """A browser's page: the sign-in form. A browser whose session ended (Dash's requests carry the cookie):
        401 without a basic challenge, which would pop the browser's own login box. Anything else: basic."""
        request = flask.request
        if "text/html" in request.headers.get("Accept", "") and request.method == "GET":
            return sign_in_page(request.full_path.rstrip("?"))
        if COOKIE in request.cookies and request.authorization is None:
            return flask.Response("PriceMyRide: your session ended; reload the page to sign in again\n", status=401)
        challenge = {"WWW-Authenticate": 'Basic realm="PriceMyRide", charset="UTF-8"'}
        return flask.Response("PriceMyRide: sign in required\n", status=401, headers=challenge, mimetype="text/plain")

    def sign_in(self) -> flask.Response | WerkzeugResponse:
        form = flask.request.form
        target = safe_target(form.get("next") or flask.request.args.get("next"))
        if flask.request.method == "GET":
            return sign_in_page(target)
        user = form.get("user", "")
        if self.throttle.blocked(f"address {client()}", f"user {user}"):
            audit("refused (throttled)", user, "form")
            return sign_in_page(target, failed=True, status=429)
        if self.checked(user, form.get("password", ""), "form") is None:
            return sign_in_page(target, failed=True)
        flask.session.clear()  # a new session on each sign-in (no fixation)
        flask.session["sid"], flask.session.permanent = self.sessions.start(user), True
        return flask.redirect(target, code=303)

    def sign_out(self) -> WerkzeugResponse:
        user = self.sessions.end(flask.session.get("sid"))
        if user is not None:
            audit("signed out", user, "form")
        flask.session.clear()
        return flask.redirect("/", code=303)


def audit(outcome: str, user: str, via: str) -> None:
    """One line per sign-in decision: outcome, user (quoted, cut to 64 characters), address, how; no password."""
    AUDIT.info("sign-in %s: user %s from %s via %s", outcome, ascii(user[:64]), client(), via)


def client() -> str:
    """The client's address as Waitress gives it: the peer's, or with a trusted proxy configured
    (``PRICEMYRIDE_DASHBOARD_TRUSTED_PROXY``) the address that proxy forwarded."""
    return str(flask.request.remote_addr or "unknown")
