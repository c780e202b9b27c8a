"""The dashboard's server choice, logins file and login checks, without a server (the HTTP test is in
tests/integration/test_operations.py)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from werkzeug.security import generate_password_hash

from dashboard import login
from dashboard.login import MAX_FAILURES, Logins, Throttle, load_users, safe_target
from dashboard.serving import logins_for, route_class, server_kind
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
        throttle.failed("10.0.0.1")
    assert not throttle.blocked("10.0.0.1")
    throttle.failed("10.0.0.1")
    assert throttle.blocked("10.0.0.1")
    assert not throttle.blocked("10.0.0.2")


def test_an_unknown_user_costs_a_password_check_too() -> None:
    logins = Logins({"alice": generate_password_hash(PASSWORD)})
    started = time.perf_counter()
    assert not logins.check("mallory", PASSWORD)
    unknown = time.perf_counter() - started
    started = time.perf_counter()
    assert not logins.check("alice", "wrong password")
    known = time.perf_counter() - started
    assert unknown > known / 3  # both hash (~0.1 s); without the decoy the unknown user returned in µs
