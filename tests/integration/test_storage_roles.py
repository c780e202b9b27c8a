"""Postgres: the schema is idempotent (and migrates the old key), the dashboard's role can read but never write,
and dead letters past their retention are deleted, by one worker at a time."""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.types.json import Jsonb

from infra.services import Paths, bootstrap_roles, superuser_socket
from monitoring import market
from pricemyride.settings import Settings
from pricemyride.storage import (
    PRUNE_LOCK,
    READER_STATEMENT_TIMEOUT,
    ModelEventKind,
    create_schema,
    delete_old_dead_letters,
)
from tests.integration.conftest import ROOT

pytestmark = pytest.mark.integration


def test_schema_creation_is_idempotent(settings: Settings) -> None:
    with psycopg.connect(settings.database_url.get_secret_value()) as conn:
        create_schema(conn)
        create_schema(conn)
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"predictions", "dead_letters"} <= tables


def test_reader_role_can_select_but_not_write(settings: Settings) -> None:
    with psycopg.connect(settings.reader_database_url.get_secret_value()) as conn:
        assert conn.execute("SELECT count(*) FROM predictions").fetchone() is not None
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute(
                'INSERT INTO dead_letters (topic, partition, "offset", reason, failed_at) '
                "VALUES ('x', 0, 0, 'x', now())"
            )
        conn.rollback()
        conn.execute("SET default_transaction_read_only = off")
        conn.commit()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM predictions")


@pytest.mark.parametrize("kind", ["registered", "deleted"])
def test_model_events_take_only_the_kinds_the_code_writes(settings: Settings, kind: str) -> None:
    with psycopg.connect(settings.database_url.get_secret_value()) as conn:
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("INSERT INTO model_events (kind, version, reason) VALUES (%s, 1, 'x')", [kind])
        conn.rollback()
        for good in ModelEventKind:
            with conn.transaction(force_rollback=True):
                conn.execute("INSERT INTO model_events (kind, version, reason) VALUES (%s, 1, 'x')", [good.value])


OLD_PREDICTIONS = """
CREATE TABLE predictions (
    listing_id text NOT NULL, model_version integer NOT NULL, event_id uuid NOT NULL,
    predicted_price double precision NOT NULL, asking_price double precision, event_time timestamptz NOT NULL,
    scored_at timestamptz NOT NULL, stored_at timestamptz NOT NULL DEFAULT clock_timestamp(), listing jsonb NOT NULL,
    PRIMARY KEY (listing_id, model_version))
"""


@pytest.fixture
def scratch_schema(settings: Settings) -> Iterator[psycopg.Connection[Any]]:
    """A connection whose search path is a schema of its own, dropped afterwards."""
    with psycopg.connect(settings.database_url.get_secret_value(), autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS migration_test CASCADE")
        conn.execute("CREATE SCHEMA migration_test")
        conn.execute("SET search_path TO migration_test")
        conn.autocommit = False
        try:
            yield conn
        finally:
            conn.rollback()
            conn.autocommit = True
            conn.execute("DROP SCHEMA migration_test CASCADE")


def test_a_table_keyed_by_listing_id_is_migrated_to_source_listing_id_version(
    scratch_schema: psycopg.Connection[Any],
) -> None:
    conn = scratch_schema
    conn.execute(OLD_PREDICTIONS)
    for source in ("site-a", None):
        listing = Jsonb({"id": f"x-{source}", **({"source": source} if source else {})})
        conn.execute(
            "INSERT INTO predictions (listing_id, model_version, event_id, predicted_price, event_time, "
            "scored_at, listing) VALUES (%s, 1, gen_random_uuid(), 1, now(), now(), %s)",
            [f"x-{source}", listing],
        )
    conn.commit()
    conn.execute("SELECT set_config('search_path', 'migration_test', false)")
    create_schema(conn)
    create_schema(conn)  # idempotent after the migration too
    key = conn.execute(
        "SELECT array_agg(a.attname ORDER BY array_position(c.conkey, a.attnum)) FROM pg_constraint c "
        "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey) "
        "WHERE c.conname = 'predictions_pkey' AND c.connamespace = 'migration_test'::regnamespace"
    ).fetchone()
    assert key == (["source", "listing_id", "model_version"],)
    assert sorted(conn.execute("SELECT source, listing_id FROM predictions").fetchall()) == [
        ("site-a", "x-site-a"),
        ("unknown", "x-None"),
    ]


def test_dead_letters_past_retention_are_deleted_in_slices_by_one_worker_at_a_time(
    settings: Settings, scratch_schema: psycopg.Connection[Any]
) -> None:
    conn = scratch_schema
    conn.execute("SELECT set_config('search_path', 'migration_test', false)")
    create_schema(conn)
    now = datetime.now(UTC)
    ages = [timedelta(days=d) for d in (40, 35, 31, 31, 29, 1)]
    for offset, age in enumerate(ages):
        conn.execute(
            'INSERT INTO dead_letters (topic, partition, "offset", reason, failed_at) '
            "VALUES ('listings', 0, %s, 'r', %s)",
            [offset, now - age],
        )
    conn.commit()
    url = settings.database_url.get_secret_value()
    with psycopg.connect(url, autocommit=True) as other:  # another worker holds the lock
        other.execute("SELECT pg_advisory_lock(%s)", [PRUNE_LOCK])
        assert delete_old_dead_letters(conn, now - timedelta(days=30), slice_rows=3) == 0
        other.execute("SELECT pg_advisory_unlock(%s)", [PRUNE_LOCK])
    assert delete_old_dead_letters(conn, now - timedelta(days=30), slice_rows=3) == 4  # two slices
    left = conn.execute('SELECT "offset" FROM dead_letters ORDER BY 1').fetchall()
    assert left == [(4,), (5,)]
    assert conn.execute(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = %s", [PRUNE_LOCK]
    ).fetchone() == (0,)


ROLES = ("owner", "writer", "trainer", "reader", "mlflow")


@pytest.fixture(scope="module")
def production_roles(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Compose's database layout on the real server: deploy/postgres-init.sh run as the superuser (twice: it
    is idempotent, and running it again is how a password is rotated), then `prepare`'s schema as the owner.
    Yields each role's URL to a database of this test's own. Roles are the server's, not the database's: the
    reader role is the dev stack's too, so its dev password is put back afterwards (the browser tests that
    run later sign in with it)."""
    secrets_dir = tmp_path_factory.mktemp("secrets")
    passwords = {role: secrets.token_urlsafe(16) for role in ROLES}
    for role, password in passwords.items():
        (secrets_dir / f"{role}_db_password").write_text(password + "\n")
    sockdir = superuser_socket(Paths((ROOT / ".state").resolve()))  # the cluster `make up` started
    port = str(conninfo_to_dict(settings.database_url.get_secret_value()).get("port", "5432"))
    dbname = f"pricemyride_roles_{secrets.token_hex(4)}"
    env = os.environ | {
        "PGHOST": str(sockdir),
        "PGPORT": port,
        "POSTGRES_USER": "postgres",
        "POSTGRES_DB": "postgres",
        "SECRETS_DIR": str(secrets_dir),
        "PRICEMYRIDE_DB": dbname,
        "MLFLOW_DB": dbname + "_mlflow",
    }
    for _ in range(2):
        subprocess.run(["bash", str(ROOT / "deploy" / "postgres-init.sh")], env=env, check=True)
    host = conninfo_to_dict(settings.database_url.get_secret_value()).get("host", "127.0.0.1")
    urls = {
        role: make_conninfo(
            "",
            host=host,
            port=port,
            dbname=dbname,
            password=passwords[role],
            user=role if role == "mlflow" else f"pricemyride_{role}",
        )
        for role in ROLES
    }
    with psycopg.connect(urls["owner"]) as conn:
        create_schema(conn)
    try:
        yield urls
    finally:
        bootstrap_roles(settings, sockdir, port)


def test_no_production_role_is_a_superuser_or_makes_roles_or_databases(
    production_roles: dict[str, str],
) -> None:
    with psycopg.connect(production_roles["reader"]) as conn:
        rows = conn.execute(
            "SELECT rolname, rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = ANY(%s)",
            [[conninfo_to_dict(url)["user"] for url in production_roles.values()]],
        ).fetchall()
        assert len(rows) == len(ROLES)
        assert [r for r in rows if any(r[1:])] == []
        assert conn.execute("SHOW statement_timeout").fetchone() == (READER_STATEMENT_TIMEOUT,)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("INSERT INTO model_events (kind, version, reason) VALUES ('promoted', 1, 'forged')")
    with pytest.raises(psycopg.OperationalError, match="permission denied"):  # the registry's role: not ours
        psycopg.connect(production_roles["mlflow"]).close()


def test_the_writer_does_what_workers_and_the_monitor_do_and_nothing_else(production_roles: dict[str, str]) -> None:
    with psycopg.connect(production_roles["writer"]) as conn:
        conn.execute(
            "INSERT INTO predictions (source, listing_id, model_version, event_id, predicted_price, price_low, "
            "price_high, event_time, scored_at, listing) VALUES ('a', '1', 1, gen_random_uuid(), 1, 1, 1, now(), "
            "now(), '{}') ON CONFLICT (source, listing_id, model_version) DO UPDATE SET predicted_price = 2"
        )
        conn.execute(
            'INSERT INTO dead_letters (topic, partition, "offset", reason, failed_at) '
            "VALUES ('x', 0, 0, 'x', now() - interval '90 days')"
        )
        assert delete_old_dead_letters(conn, datetime.now(UTC) - timedelta(days=30)) == 1
        conn.execute(
            "INSERT INTO drift_windows (window_start, window_end, model_version, rows, labelled_rows, "
            "drift_share, prediction_drift, price_drift, fired) VALUES (now(), now(), 1, 1, 1, 0, 0, 0, '{}') "
            "RETURNING id"
        )
        conn.commit()
        assert market.refresh(conn) is not None  # the monitor keeps the market rollups as the writer
        assert conn.execute("SELECT count(*) FROM market_cells WHERE segment = 'all'").fetchone() == (2,)
        for refused in (
            "INSERT INTO model_events (kind, version, reason) VALUES ('promoted', 9, 'forged')",
            "DELETE FROM predictions",
            "TRUNCATE dead_letters",
            "DROP TABLE predictions",
            "CREATE TABLE mine (x int)",
            "ALTER TABLE predictions ADD COLUMN x int",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(refused)
            conn.rollback()


def test_only_the_trainer_records_the_gates_decisions(production_roles: dict[str, str]) -> None:
    with psycopg.connect(production_roles["trainer"]) as conn:
        conn.execute("INSERT INTO model_events (kind, version, reason) VALUES ('promoted', 2, 'gate')")
        assert conn.execute("SELECT count(*) FROM predictions").fetchone() is not None
        conn.commit()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE model_events SET version = 3")
        conn.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM predictions")
