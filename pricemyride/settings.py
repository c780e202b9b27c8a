"""One Settings object for every PriceMyRide process.

Values come from the environment (prefix ``PRICEMYRIDE_``) or a ``.env`` file. The defaults describe the
local development stack that ``make up`` starts; production sets ``PRICEMYRIDE_ENVIRONMENT=production``,
and then placeholder passwords are refused.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict
from pydantic import AliasChoices, BaseModel, Field, SecretStr, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from pricemyride.errors import ConfigError
from pricemyride.policy import DriftPolicy, ShadowPolicy, SourcePolicy

ENV_PREFIX = "PRICEMYRIDE_"

DEV_PASSWORDS = frozenset({"pricemyride-dev", "pricemyride-reader-dev", "changeme", "password", ""})


class SecretFiles(PydanticBaseSettingsSource):
    """``PRICEMYRIDE_<SETTING>_FILE=/run/secrets/x``: the setting is that file's content, trailing newline
    dropped (Docker and Compose secrets). A value set directly in the environment wins over a file."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        out = {}
        for name in self.settings_cls.model_fields:
            variable = f"{ENV_PREFIX}{name.upper()}_FILE"
            if path := os.environ.get(variable):
                try:
                    out[name] = Path(path).read_text(encoding="utf-8").rstrip("\r\n")
                except OSError as exc:
                    raise ValueError(f"{variable}: expected a readable file, got {path} ({exc.strerror})") from None
        return out


class Settings(BaseSettings):
    """Configuration shared by producers, workers, training, monitoring and the dashboard."""

    # A nested object reads PRICEMYRIDE_<OBJECT>_<FIELD>: PRICEMYRIDE_DRIFT_WINDOW_EVENTS is drift.window_events.
    model_config = SettingsConfigDict(
        env_prefix="PRICEMYRIDE_", env_file=".env", extra="ignore", hide_input_in_errors=True,
        env_nested_delimiter="_", env_nested_max_split=1,
    )  # fmt: skip

    environment: Literal["development", "production"] = "development"
    state_dir: Path = Field(Path(".state"), description="Local state: logs, PID files, data dirs.")

    # Kafka
    kafka_bootstrap: str = Field(
        "127.0.0.1:9092",
        description="Comma-separated; one loopback address with kafka_brokers > 1 means that "
        "many side by side (9092 → 9092,9093,9094).",
    )
    kafka_brokers: int = Field(
        1,
        ge=1,
        le=9,
        description="Brokers in the cluster (`make up` starts this many); from 3 on, topics are "
        "replicated 3 times with min.insync.replicas 2.",
    )
    processing_guarantee: Literal["exactly_once", "at_least_once"] = Field(
        "exactly_once", description="exactly_once: each batch's outputs and offsets in one Kafka transaction."
    )
    listings_topic: str = "listings"
    dlq_topic: str = "listings.dlq"
    predictions_topic: str = "price-predictions"
    retrain_topic: str = "retrain-requests"
    model_updates_topic: str = "model-updates"
    listings_partitions: int = Field(4, ge=1)
    consumer_group: str = "pricemyride-scorer"
    # Kafka security, passed to every client (kafka-python, aiokafka, faust); see pricemyride/kafka.py.
    # The local stack's brokers ask for a SCRAM login (its super user below); production refuses PLAINTEXT and
    # SASL_PLAINTEXT, and each service logs in as its own principal with only its ACLs (pricemyride.access).
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "SASL_PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-256"
    kafka_sasl_username: str | None = "pricemyride-admin"
    kafka_sasl_password: SecretStr | None = SecretStr("pricemyride-dev")
    kafka_logins_dir: Path | None = Field(
        None,
        description="Password files named after the service principals (pricemyride-worker, …): "
        "`pricemyride prepare` makes or updates their Kafka logins and ACLs.",
    )
    kafka_ssl_cafile: Path | None = Field(None, description="CA bundle that signed the brokers' certificates.")
    kafka_ssl_certfile: Path | None = Field(None, description="Client certificate (mutual TLS).")
    kafka_ssl_keyfile: Path | None = Field(None, description="Client private key (mutual TLS).")

    # Postgres: the writer (workers, training) and the read-only role (dashboard).
    database_url: SecretStr = SecretStr("postgresql://pricemyride:pricemyride-dev@127.0.0.1:5432/pricemyride")
    reader_database_url: SecretStr = SecretStr(
        "postgresql://pricemyride_reader:pricemyride-reader-dev@127.0.0.1:5432/pricemyride"
    )

    # MLflow
    mlflow_tracking_uri: str | None = Field(
        None, validation_alias=AliasChoices("PRICEMYRIDE_MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_URI")
    )
    mlflow_artifact_root: Path | None = None
    # An MLflow server started with `--app-name basic-auth` asks every client to log in: training as the one
    # user that may write the model, everything else as a reader (docker-compose.yml, OPERATIONS.md).
    mlflow_username: str | None = Field(None, description="MLflow login (basic auth); none: no login.")
    mlflow_password: SecretStr | None = Field(None, description="Its password (or PRICEMYRIDE_MLFLOW_PASSWORD_FILE).")
    mlflow_logins_dir: Path | None = Field(
        None,
        description="Password files named after the registry's users (pricemyride-trainer, "
        "pricemyride-reader): `pricemyride prepare`, logged in as the MLflow admin, makes or updates them.",
    )
    mlflow_experiment: str = "pricemyride"
    model_name: str = "pricemyride"
    champion_alias: str = "champion"
    challenger_alias: str = "challenger"
    shadow_alias: str = "shadow"

    # Scoring workers
    batch_size: int = Field(2_000, ge=1, description="Most listings scored in one micro-batch (one fetch, up to this).")
    worker_session_timeout_s: float = Field(
        10.0, ge=6, description="A worker silent this long leaves the group; its partitions move to the others."
    )
    dead_letter_retention_days: float = Field(
        30.0, gt=0, description="Dead letters older than this are deleted from Postgres (workers check hourly)."
    )
    market_refresh_s: float = Field(
        60.0, ge=1, description="The drift monitor folds newly stored valuations into the market rollups this often."
    )

    # Drift monitoring: what is compared, how windows are cut, when a retrain is requested (PRICEMYRIDE_DRIFT_*).
    drift: DriftPolicy = Field(default_factory=DriftPolicy)
    sources: SourcePolicy = Field(default_factory=SourcePolicy)
    # Shadow scoring and the live gate (PRICEMYRIDE_SHADOW_*).
    shadow: ShadowPolicy = Field(default_factory=ShadowPolicy)
    promotion_margin: float = Field(
        0.02, ge=0, lt=1, description="MAE improvement a challenger needs to be promoted (0.02 = 2%)."
    )
    registry_poll_s: float = Field(30.0, gt=0, description="Workers check the champion alias this often.")

    # Retraining: in-process by default; with a deployment name the listener hands each request to a
    # Prefect server whose process worker runs the flow (see `pricemyride deploy-flow`).
    retrain_deployment: str = Field("", description="Prefect deployment 'retrain/<name>'; empty: run in-process.")
    prefect_work_pool: str = Field("pricemyride", description="Process work pool the retrain deployment uses.")
    retrain_timeout_s: float = Field(3_600.0, gt=0, description="Longest wait for a deployed retrain flow run.")

    # Data: a Craigslist-format CSV/parquet file; None means the built-in generator.
    data: Path | None = None

    # Dashboard: Werkzeug's development server in development, Waitress in production ("auto").
    dashboard_host: str = "127.0.0.1"
    dashboard_port: int = 8050
    dashboard_server: Literal["auto", "waitress", "werkzeug"] = "auto"
    dashboard_threads: int = Field(8, ge=1, le=64, description="Waitress threads serving requests.")
    dashboard_connection_limit: int = Field(100, ge=1, description="Most open connections Waitress accepts.")
    dashboard_timeout_s: int = Field(60, ge=5, description="Waitress closes a connection idle this long.")
    dashboard_secure_cookie: bool | None = Field(
        None, description="Mark the session cookie Secure (TLS in front); unset: on in production, off otherwise."
    )
    dashboard_max_body_bytes: int = Field(
        1_048_576, ge=1024, description="Largest request body; a larger one is refused (413) before it is read."
    )
    dashboard_trusted_proxy: str | None = Field(
        None, description="Address of the TLS proxy in front; its X-Forwarded-For then names the client."
    )
    dashboard_trusted_proxy_count: int = Field(1, ge=1, le=5, description="Proxies in front (each adds a hop).")
    dashboard_users_file: Path | None = Field(
        None, description="Logins, one 'user:hash' per line (`pricemyride hash-password`); required in production."
    )

    # Valuation API (`pricemyride api`): sites price a listing over HTTP before they publish it.
    api_host: str = "127.0.0.1"
    api_port: int = Field(8060, ge=1, le=65535, description="The valuation API's port.")
    api_rate_per_minute: int = Field(
        600, ge=1, description="Requests each API key may make per minute (moving window); more get 429."
    )
    api_max_body_bytes: int = Field(
        2_097_152, ge=1024, description="Largest request body; a larger one is refused (413) before it is parsed."
    )
    api_batch_max: int = Field(1_000, ge=1, le=10_000, description="Most listings in one batch valuation.")
    api_key_cache_s: float = Field(
        5.0, ge=0, description="How long the API trusts a key it has looked up (a revoked key is refused after this)."
    )
    api_threads: int = Field(
        2, ge=1, le=16, description="Threads pricing requests (XGBoost runs outside Python's lock: one per core)."
    )
    api_comparables: int = Field(10, ge=0, le=50, description="Comparable listings in a valuation (0: none).")

    # Metrics and health (/metrics, /livez, /readyz) of every long-running service, never on a public port.
    metrics_enabled: bool = True
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(0, ge=0, le=65535, description="0: a free port the OS chooses (logged).")
    prometheus_url: str = Field("http://127.0.0.1:9090", description="The Prometheus server `make up` starts.")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, SecretFiles(settings_cls), dotenv_settings, file_secret_settings

    @model_validator(mode="after")
    def _brokers_side_by_side(self) -> Settings:
        """One loopback address and several brokers: the local cluster's, on consecutive ports."""
        host, _, port = self.kafka_bootstrap.rpartition(":")
        if self.kafka_brokers > 1 and "," not in self.kafka_bootstrap and host in LOOPBACK:
            if not port.isdigit():
                raise ValueError(f"{env_name('kafka_bootstrap')}: expected host:port, got {self.kafka_bootstrap!r}")
            self.kafka_bootstrap = ",".join(f"{host}:{int(port) + i}" for i in range(self.kafka_brokers))
        return self

    @model_validator(mode="after")
    def _sasl_needs_credentials(self) -> Settings:
        if self.kafka_security_protocol.startswith("SASL") and not (
            self.kafka_sasl_username and self.kafka_sasl_password
        ):
            missing = [env_name(n) for n in ("kafka_sasl_username", "kafka_sasl_password") if not getattr(self, n)]
            raise ValueError(
                f"{env_name('kafka_security_protocol')}={self.kafka_security_protocol} expects "
                f"{env_name('kafka_sasl_username')} and {env_name('kafka_sasl_password')}, "
                f"got no {' or '.join(missing)}"
            )
        return self

    @model_validator(mode="after")
    def _refuse_placeholders_in_production(self) -> Settings:
        if self.environment != "production":
            return self
        # Only the URLs this process was given: each service gets the one role it needs (the dashboard only
        # the reader's), and a URL it was not given keeps a placeholder no production database accepts.
        for name in ("database_url", "reader_database_url"):
            if name not in self.model_fields_set:
                continue
            password = _password_of(getattr(self, name).get_secret_value())
            if password in DEV_PASSWORDS:
                raise ValueError(
                    f"{env_name(name)}: expected a real password in production, got a development placeholder "
                    "or no password (the value is not shown)"
                )
        return self

    @model_validator(mode="after")
    def _kafka_encrypted_in_production(self) -> Settings:
        if self.environment != "production" or "kafka_bootstrap" not in self.model_fields_set:
            return self  # a production service without Kafka (the dashboard) is given no Kafka settings
        if self.kafka_security_protocol not in ("SASL_SSL", "SSL"):
            raise ValueError(
                f"{env_name('kafka_security_protocol')}: expected SASL_SSL (or SSL) in production, got "
                f"{self.kafka_security_protocol} (logins and listings would cross the network in clear)"
            )
        kafka_password = self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else ""
        if self.kafka_security_protocol == "SASL_SSL" and kafka_password in DEV_PASSWORDS:
            raise ValueError(f"{env_name('kafka_sasl_password')}: expected a real password in production, got a "
                             "development placeholder (the value is not shown)")  # fmt: skip
        return self

    @property
    def secure_cookie(self) -> bool:
        """The session cookie is Secure unless set otherwise: by default in production only."""
        if self.dashboard_secure_cookie is None:
            return self.environment == "production"
        return self.dashboard_secure_cookie

    @cached_property
    def state_path(self) -> Path:
        return self.state_dir.resolve()

    @property
    def replication_factor(self) -> int:
        """Copies of every topic: 3 on a cluster of 3 or more (Kafka's advice for durability), else all brokers."""
        return min(self.kafka_brokers, 3)

    @property
    def min_insync_replicas(self) -> int:
        """Replicas that must have a write before acks=all answers: 2 of 3, so one broker may be down."""
        return 2 if self.replication_factor >= 3 else 1

    @property
    def tracking_uri(self) -> str:
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{self.state_path / 'mlflow' / 'mlflow.db'}"

    @property
    def artifact_root(self) -> Path:
        return (self.mlflow_artifact_root or self.state_path / "mlflow" / "artifacts").resolve()


LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


def _password_of(url: str) -> str:
    """The password of a PostgreSQL URL or key=value string ('' when absent or when it does not parse)."""
    try:
        return str(conninfo_to_dict(url).get("password") or "")
    except psycopg.ProgrammingError:
        return ""


SECRET_FIELDS = frozenset(name for name, field in Settings.model_fields.items() if "SecretStr" in str(field.annotation))


def env_name(field: str) -> str:
    """The environment variable a setting is read from."""
    return f"{ENV_PREFIX}{field.upper()}"


def _problem(error: Any) -> str:
    """One validation problem as 'VARIABLE: rule, got value' — a secret's value is never shown."""
    loc = [str(part) for part in error["loc"]]
    message = str(error["msg"]).removeprefix("Value error, ")
    if not loc:
        return message
    field = "_".join(loc)
    shown = "" if field in SECRET_FIELDS else f", got {str(error.get('input'))[:60]!r}"
    return f"{env_name(field)}: {message}{shown}"


def load_settings() -> Settings:
    """The settings from the environment and ``.env``; ``ConfigError`` names every variable that is wrong."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(_problem(e) for e in exc.errors(include_url=False, include_context=False))
        raise ConfigError(f"settings: {problems} (set in the environment or .env)") from None


def redacted(url: str) -> str:
    """``url`` with its password replaced by ``***``; a string that may hide one elsewhere is masked whole."""
    lowered = url.lower()
    if "://" not in url or "password" in lowered or "token" in lowered:
        return "***"
    try:
        password = urlsplit(url).password
    except ValueError:
        return "***"
    return url.replace(f":{password}@", ":***@", 1) if password else url


def _flat(settings: Settings) -> list[tuple[str, Any]]:
    """(name, value) per setting, a nested object's fields as ``<object>_<field>``."""
    out: list[tuple[str, Any]] = []
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if isinstance(value, BaseModel):
            out += [(f"{name}_{sub}", getattr(value, sub)) for sub in type(value).model_fields]
        else:
            out.append((name, value))
    return out


def described(settings: Settings) -> list[tuple[str, str]]:
    """Every setting's effective value as text; a secret shows as *** (a URL keeps its user and host)."""
    out = []
    for name, value in _flat(settings):
        if name in SECRET_FIELDS:
            text = redacted(value.get_secret_value()) if "url" in name and value else ("***" if value else "(not set)")
        elif name == "mlflow_tracking_uri" and value:
            text = redacted(value)
        else:
            text = "(not set)" if value is None else str(value)
        out.append((name, text))
    return out
