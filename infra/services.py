"""The local stack's building blocks without Docker: paths and PID files, processes, ports, the Kafka jars,
PostgreSQL. The commands that use them (``python -m infra up | down | status``) are in ``infra.stack``.

Idempotent: a service is started only when it does not already answer, and a start returns once the
service really answers (Kafka: a metadata request; Postgres: a query). PID files and logs live in the
state folder. MLflow needs no server locally: tracking and registry are a sqlite file in the state folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from pricemyride.settings import Settings
from pricemyride.storage import READER_ROLE, READER_STATEMENT_TIMEOUT

INFRA = Path(__file__).resolve().parent
APP_PROCESSES = (
    "api",
    "dashboard",
    "producer",
    "monitor",
    "retrainer",
    "worker",
    "drift-dashboard",
)  # started by infra.demo, stopped first by down


@dataclass(frozen=True)
class Paths:
    """Where the local services keep their files."""

    state: Path

    @property
    def run(self) -> Path:
        return self.state / "run"

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def kafka_jars(self) -> Path:
        return self.state / "kafka-jars"

    @property
    def kafka(self) -> Path:
        return self.state / "kafka"

    def pid_file(self, name: str) -> Path:
        return self.run / f"{name}.pid"


def log(message: str) -> None:
    print(f"[infra] {message}", flush=True)


def wait_until(check: Callable[[], bool], what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise SystemExit(f"[infra] {what} did not answer within {timeout_s:.0f} s; see the logs in the state folder")


def pid_alive(pid_file: Path) -> int | None:
    """The PID in ``pid_file`` if that process is running; a finished child of ours (a zombie) is reaped
    and counts as gone."""
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
        return None
    if is_zombie(pid):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        return None
    return pid


def is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


# --- Kafka -------------------------------------------------------------------------------------


def http_answers(url: str, also: tuple[int, ...] = ()) -> bool:
    """``url`` answers 200 (or one of the ``also`` statuses) within 2 s."""
    if not url.startswith("http://"):
        raise ValueError(f"expected an http:// URL, got {url!r}")
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - http only, checked above
            return bool(response.status == 200)
    except urllib.error.HTTPError as exc:
        return exc.code in also
    except (urllib.error.URLError, OSError):
        return False


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def resolve_kafka_jars(paths: Paths) -> None:
    marker = paths.kafka_jars / ".resolved"
    pom = INFRA / "kafka" / "pom.xml"
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()
    if marker.exists() and marker.read_text() == digest:
        return
    if shutil.which("mvn") is None:
        raise SystemExit("[infra] expected Maven (mvn) on PATH to resolve the Kafka jars, found none")
    log("resolving Apache Kafka jars from Maven Central (first run only)…")
    shutil.rmtree(paths.kafka_jars, ignore_errors=True)
    subprocess.run(
        [
            "mvn",
            "-B",
            "-q",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={paths.kafka_jars}",
        ],
        check=True,
    )
    marker.write_text(digest)


# The JVM options of Kafka's own kafka-server-start.sh: G1 aiming at 20 ms pauses (the JVM's default aim,
# 200 ms, showed as 200 ms stalls of every listing in flight) and a rotated GC log beside the broker's.
def kafka_jvm_options(paths: Paths, name: str = "kafka") -> list[str]:
    return ["-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:InitiatingHeapOccupancyPercent=35",
            "-XX:+ExplicitGCInvokesConcurrent", "-Djava.awt.headless=true",
            f"-Xlog:gc*:file={paths.logs / f'{name}-gc.log'}:time,tags:filecount=4,filesize=20M"]  # fmt: skip


def java_cmd(paths: Paths, *args: str) -> list[str]:
    return [
        "java",
        "-Xmx512m",
        "-Xms256m",
        f"-Dlog4j2.configurationFile={INFRA / 'kafka' / 'log4j2.yaml'}",
        "-cp",
        f"{paths.kafka_jars}/*",
        *args,
    ]


def stop_pid(name: str, paths: Paths, timeout_s: float = 30) -> None:
    pid = pid_alive(paths.pid_file(name))
    if pid is None:
        paths.pid_file(name).unlink(missing_ok=True)
        return
    log(f"stopping {name} (pid {pid})")
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and pid_alive(paths.pid_file(name)):
        time.sleep(0.3)
    if pid_alive(paths.pid_file(name)):
        log(f"{name} ignored SIGTERM for {timeout_s:.0f} s; killing it")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    paths.pid_file(name).unlink(missing_ok=True)


# --- PostgreSQL --------------------------------------------------------------------------------


def pg_bindir() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name))
    if found:
        return found[-1].parent
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        return Path(pg_ctl).parent
    raise SystemExit(
        "[infra] expected PostgreSQL server binaries (pg_ctl, initdb), found none; "
        "install Debian's package: apt-get install postgresql"
    )


def pg_user() -> str | None:
    """Postgres refuses to run as root: as root, run it as the 'postgres' system user."""
    return "postgres" if os.geteuid() == 0 else None


def as_pg_user(cmd: Sequence[str]) -> list[str]:
    user = pg_user()
    return ["runuser", "-u", user, "--", *cmd] if user else list(cmd)


def pg_home(paths: Paths) -> Path:
    """The cluster's folder: in the state folder when the postgres user can reach it, else /var/tmp."""
    home = paths.state / "postgres"
    user = pg_user()
    if user is None:
        return home
    home.mkdir(parents=True, exist_ok=True)
    entry = pwd.getpwnam(user)
    os.chown(home, entry.pw_uid, entry.pw_gid)
    if subprocess.run(as_pg_user(["test", "-w", str(home)]), check=False).returncode == 0:
        return home
    digest = hashlib.sha256(str(paths.state).encode()).hexdigest()[:10]
    fallback = Path("/var/tmp") / f"pricemyride-pg-{digest}"  # noqa: S108 - owned by the postgres user, 0700
    fallback.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chown(fallback, entry.pw_uid, entry.pw_gid)
    (paths.state / "postgres.location").write_text(str(fallback))
    return fallback


def superuser_socket(paths: Paths) -> Path:
    """The local cluster's socket folder, where the ``postgres`` superuser logs in without a password."""
    return pg_home(paths) / "run"


def pg_params(settings: Settings) -> dict[str, str]:
    return {k: str(v) for k, v in conninfo_to_dict(settings.database_url.get_secret_value()).items()}


def pg_answers(settings: Settings) -> bool:

    try:
        with psycopg.connect(settings.database_url.get_secret_value(), connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def pg_socket_answers(sockdir: Path, port: str) -> bool:

    try:
        with psycopg.connect(host=str(sockdir), port=port, user="postgres", dbname="postgres", connect_timeout=2):
            return True
    except psycopg.Error:
        return False


def start_postgres(settings: Settings, paths: Paths) -> None:
    params = pg_params(settings)
    home, bindir = pg_home(paths), pg_bindir()
    data, sockdir = home / "data", superuser_socket(paths)
    port, host = params.get("port", "5432"), params.get("host", "127.0.0.1")
    if not (data / "PG_VERSION").exists():
        log(f"initialising a PostgreSQL cluster in {data}")
        run_pg([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth-local=trust",
                "--auth-host=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8"])  # fmt: skip
    run_pg(["mkdir", "-p", str(sockdir)])
    if not pg_socket_answers(sockdir, port):
        log(f"postgres starting on {host}:{port}…")
        run_pg([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(home / "postgres.log"), "-w", "-t", "60",
                "-o", f"-p {port} -k {sockdir} -c listen_addresses={host}", "start"])  # fmt: skip
    else:
        log(f"postgres already answering on port {port}")
    bootstrap_roles(settings, sockdir, port)
    wait_until(lambda: pg_answers(settings), "postgres", 30)
    log("postgres is up")


def run_pg(cmd: Sequence[str]) -> None:
    subprocess.run(as_pg_user(cmd), check=True, stdout=subprocess.DEVNULL)


def bootstrap_roles(settings: Settings, sockdir: Path, port: str) -> None:
    """Create the writer role, the read-only role and the database (idempotent)."""
    writer = pg_params(settings)
    reader = {k: str(v) for k, v in conninfo_to_dict(settings.reader_database_url.get_secret_value()).items()}
    with psycopg.connect(host=str(sockdir), port=port, user="postgres", dbname="postgres", autocommit=True) as conn:
        for role in (writer, reader):
            ensure_role(conn, role["user"], role.get("password", ""))
        # Local development only: the writer may create databases (the test suite makes its own).
        conn.execute(sql.SQL("ALTER ROLE {} CREATEDB").format(sql.Identifier(writer["user"])))
        if reader["user"] != READER_ROLE:
            log(f"warning: the reader role is {reader['user']!r}; grants go to {READER_ROLE!r}")
        for setting in ("default_transaction_read_only = on", f"statement_timeout = '{READER_STATEMENT_TIMEOUT}'"):
            conn.execute(sql.SQL("ALTER ROLE {} SET " + setting).format(sql.Identifier(reader["user"])))
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [writer["dbname"]]).fetchone()
        if not exists:
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(writer["dbname"]), sql.Identifier(writer["user"])
                )
            )


def ensure_role(conn: object, user: str, password: str) -> None:
    assert hasattr(conn, "execute")
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [user]).fetchone()
    verb = "ALTER" if exists else "CREATE"
    conn.execute(sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(user), sql.Literal(password)))


def stop_postgres(paths: Paths) -> None:
    location = paths.state / "postgres.location"
    home = Path(location.read_text()) if location.exists() else paths.state / "postgres"
    data = home / "data"
    if not (data / "postmaster.pid").exists():
        return
    log("stopping postgres")
    subprocess.run(
        as_pg_user([str(pg_bindir() / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
        check=False,
        stdout=subprocess.DEVNULL,
    )
