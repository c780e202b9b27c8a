"""The dashboard's server choice, logins file and login checks, without a server (the HTTP test is in
tests/integration/test_operations.py)."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from werkzeug.security import generate_password_hash

from dashboard import login
from dashboard.login import MAX_FAILURES, Logins, Sessions, Throttle, load_users, safe_target
from dashboard.serving import logins_for, proxy_options, route_class, server_kind
from pricemyride.errors import ConfigError
from pricemyride.settings import Settings

PASSWORD = "correct horse battery"


def settings_with(**changes: object) -> Settings:
    """Settings as the environment would give them (production checks included, no validation)."""
    return Settings.model_construct(**(Settings().model_dump() | changes))


def users_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "users"
    path.write_text(text)
    return path


def test_a_logins_file_gives_users_and_hashes(tmp_path: Path) -> None:
    hashed = generate_password_hash(PASSWORD)
    path = users_file(tmp_path, f"# analysts\nalice:{hashed}\n\nbob:{generate_password_hash('x' * 12)}\n")
    users = load_users(path)
    assert set(users) == {"alice", "bob"}
    assert users["alice"] == hashed


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("alice:hunter2hunter2\n", r"line 1: expected a password hash \(scrypt: or pbkdf2:\), got something else"),
        ("no colon here\n", r"line 1: expected 'user:hash' \(from `pricemyride hash-password`\), got no user name"),
        ("# only a comment\n", r"expected at least one 'user:hash' line, got none"),
    ],
)
def test_a_bad_logins_file_is_refused_without_showing_its_secrets(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected) as caught:
        load_users(users_file(tmp_path, text))
    assert "hunter2" not in str(caught.value)
    assert str(caught.value).startswith("PRICEMYRIDE_DASHBOARD_USERS_FILE")


def test_a_missing_logins_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"expected a readable file, got .*nowhere"):
        load_users(tmp_path / "nowhere")


def test_logins_accept_the_right_password_only_and_remember_no_password() -> None:
    logins = Logins({"alice": generate_password_hash(PASSWORD)})
    assert logins.check("alice", PASSWORD)
    assert not logins.check("alice", PASSWORD + "!")
    assert not logins.check("mallory", PASSWORD)
    assert len(logins.remembered) == 1
    assert all(PASSWORD.encode() not in token for token in logins.remembered)
    assert logins.check("alice", PASSWORD)  # from memory, the same answer


def test_refused_logins_are_counted() -> None:
    logins = Logins({"alice": generate_password_hash(PASSWORD)})
    before = login.LOGIN_FAILURES._value.get()
    logins.check("alice", "wrong password")
    assert login.LOGIN_FAILURES._value.get() == before + 1


@pytest.mark.parametrize(
    ("environment", "chosen", "expected"),
    [("development", "auto", "werkzeug"), ("production", "auto", "waitress"), ("development", "waitress", "waitress")],
)
def test_the_server_follows_the_environment(environment: str, chosen: str, expected: str, tmp_path: Path) -> None:
    assert server_kind(settings_with(environment=environment, dashboard_server=chosen)) == expected


def test_production_refuses_the_development_server_and_a_dashboard_without_logins() -> None:
    production = settings_with(environment="production", dashboard_server="werkzeug")
    with pytest.raises(ConfigError, match="expected auto or waitress in production, got werkzeug"):
        server_kind(production)
    with pytest.raises(ConfigError, match="PRICEMYRIDE_DASHBOARD_USERS_FILE: expected a file of dashboard logins"):
        logins_for(production)


def test_development_without_a_logins_file_serves_without_login() -> None:
    assert logins_for(Settings()) is None


@pytest.mark.parametrize(
    ("path", "expected"),
    [("/", "page"), ("/models", "page"), ("/_dash-update-component", "callback"), ("/_dash-layout", "dash"),
     ("/assets/style.css", "asset"), ("/_dash-component-suites/dash/x.js", "asset")],
)  # fmt: skip
def test_requests_are_counted_by_route_class(path: str, expected: str) -> None:
    assert route_class(path) == expected


@pytest.mark.parametrize(
    ("target", "expected"),
    [("/models", "/models"), ("/value?make=ford", "/value?make=ford"), ("https://evil.example/", "/"),
     ("//evil.example/", "/"), ("/\\evil.example", "/"), ("/\t/evil.example", "/"), ("/\n/evil.example", "/"),
     ("/ /evil.example", "/"), ("/\x7f", "/"), ("", "/"), (None, "/")],
)  # fmt: skip
def test_after_signing_in_the_browser_goes_back_to_this_site_only(target: str | None, expected: str) -> None:
    assert safe_target(target) == expected


def test_a_client_is_refused_after_ten_failures_and_others_are_not() -> None:
    throttle = Throttle()
    for _ in range(MAX_FAILURES - 1):
        throttle.failed("address 10.0.0.1", "user alice")
    assert not throttle.blocked("address 10.0.0.1")
    throttle.failed("address 10.0.0.1", "user bob")
    assert throttle.blocked("address 10.0.0.1")
    assert throttle.blocked("address 10.0.0.2", "user alice") is False  # alice: 9 failures
    assert not throttle.blocked("address 10.0.0.2", "user bob")


def test_the_throttle_forgets_the_least_recent_first_and_stays_bounded() -> None:
    throttle = Throttle(max_tracked=100)
    for _ in range(MAX_FAILURES):
        throttle.failed("user alice")
    for i in range(99):
        throttle.failed(f"address 10.1.0.{i}")
    assert throttle.blocked("user alice")  # 100 keys: nothing forgotten yet
    throttle.failed("address 10.2.0.1")
    assert len(throttle.failures) == 100
    assert not throttle.blocked("user alice")  # the least recently failed key went first
    assert "address 10.1.0.98" in throttle.failures


def test_a_session_ends_on_sign_out_at_its_lifetime_and_past_the_limit() -> None:
    sessions = Sessions(timedelta(hours=1), max_sessions=3)
    first, second = sessions.start("alice"), sessions.start("bob")
    assert (sessions.user_of(first), sessions.user_of(second)) == ("alice", "bob")
    assert sessions.end(first) == "alice"
    assert sessions.user_of(first) is None
    assert sessions.user_of(None) is None
    assert sessions.user_of(["not", "an", "id"]) is None
    for _ in range(3):
        sessions.start("carol")
    assert sessions.user_of(second) is None  # the oldest ended when a fourth began
    expiring = Sessions(timedelta(seconds=0.05))
    sid = expiring.start("alice")
    time.sleep(0.1)
    assert expiring.user_of(sid) is None  # absolute: however often it was used


@pytest.mark.parametrize(("environment", "given", "expected"),
                         [("production", None, True), ("development", None, False), ("production", False, False),
                          ("development", True, True)])  # fmt: skip
def test_the_session_cookie_is_secure_by_default_in_production(environment: str, given: bool | None,
                                                               expected: bool) -> None:  # fmt: skip
    assert settings_with(environment=environment, dashboard_secure_cookie=given).secure_cookie is expected


def test_only_a_named_proxy_is_trusted_to_name_the_client() -> None:
    assert proxy_options(settings_with()) == {"clear_untrusted_proxy_headers": True}
    options = proxy_options(settings_with(dashboard_trusted_proxy="10.0.0.5"))
    assert (options["trusted_proxy"], options["trusted_proxy_count"]) == ("10.0.0.5", 1)
    assert "x-forwarded-for" in options["trusted_proxy_headers"]


def test_an_unknown_user_costs_a_password_check_too() -> None:
    logins = Logins({"alice": generate_password_hash(PASSWORD)})
    started = time.perf_counter()
    assert not logins.check("mallory", PASSWORD)
    unknown = time.perf_counter() - started
    started = time.perf_counter()
    assert not logins.check("alice", "wrong password")
    known = time.perf_counter() - started
    assert unknown > known / 3  # both hash (~0.1 s); without the decoy the unknown user returned in µs
