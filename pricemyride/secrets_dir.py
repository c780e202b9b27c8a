"""``pricemyride make-secrets DIR``: every secret file docker-compose.yml mounts, made at once and consistent.

One random password per Postgres role, Kafka principal and MLflow user, the database URLs that carry them, and
the Kafka TLS material: a CA, the brokers' certificate (names kafka-1…3, CN kafka-broker) and the admin's
client certificate (CN pricemyride-admin) — PEM, as Kafka's ``ssl.keystore.type=PEM`` reads them. Files are
created 0600 and never overwritten: to rotate one, delete it, run the command again and follow OPERATIONS.md,
"Secrets". Nothing is printed but file names.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

DB_ROLES = ("owner", "writer", "trainer", "reader", "mlflow")
KAFKA_PRINCIPALS = ("pricemyride-worker", "pricemyride-monitor", "pricemyride-trainer", "pricemyride-producer",
                    "pricemyride-api")  # fmt: skip
MLFLOW_USERS = ("admin", "pricemyride-trainer", "pricemyride-reader")
BROKERS = ("kafka-1", "kafka-2", "kafka-3")
CERT_DAYS = 825


def password() -> str:
    return secrets.token_urlsafe(24)


def database_url(role: str, secret: str, dbname: str = "pricemyride") -> str:
    user = role if role == "mlflow" else f"pricemyride_{role}"
    return f"postgresql://{user}:{secret}@postgres:5432/{dbname}"


def write_new(folder: Path, name: str, make: Callable[[], str] | str) -> bool:
    """Write ``make()`` (or the text) to ``folder/name`` (mode 0600) unless the file exists; True if written."""
    path = folder / name
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text((make if isinstance(make, str) else make()) + "\n", encoding="utf-8")
    return True


def database_secrets(folder: Path) -> list[str]:
    made = [name for name in ("postgres_password",) if write_new(folder, name, password)]
    for role in DB_ROLES:
        if write_new(folder, f"{role}_db_password", password):
            made.append(f"{role}_db_password")
        secret = (folder / f"{role}_db_password").read_text().strip()
        if role == "mlflow":  # the registry's own database, through SQLAlchemy's psycopg driver
            url_name, url = "mlflow_backend_uri", database_url(role, secret, "mlflow").replace("://", "+psycopg://")
        else:
            url_name, url = f"{role}_database_url", database_url(role, secret)
        if write_new(folder, url_name, url):
            made.append(url_name)
    return made


def login_secrets(folder: Path) -> list[str]:
    names = [f"kafka/{p}" for p in KAFKA_PRINCIPALS] + [f"mlflow/{u}" for u in MLFLOW_USERS]
    names += ["mlflow_flask_secret"]
    return [name for name in names if write_new(folder, name, password)]


def make_secrets(folder: Path) -> list[str]:
    """Every secret docker-compose.yml mounts from ``folder``; returns the files it wrote (existing ones kept)."""
    folder.mkdir(parents=True, exist_ok=True)
    return database_secrets(folder) + login_secrets(folder) + kafka_tls(folder)


# --- Kafka TLS ----------------------------------------------------------------------------------------


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "PriceMyRide"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])  # fmt: skip


def _certificate(subject: str, key: ec.EllipticCurvePrivateKey, issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey],
                 names: tuple[str, ...] = (), ca: bool = False) -> x509.Certificate:  # fmt: skip
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(issuer[0])
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=CERT_DAYS))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))  # fmt: skip
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
    return builder.sign(issuer[1], hashes.SHA256())


def _pem(key: ec.EllipticCurvePrivateKey, *certificates: x509.Certificate) -> str:
    """An unencrypted PKCS#8 key and its chain in one file: Kafka's PEM keystore and Python's load_cert_chain."""
    text = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()  # fmt: skip
    return text + "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certificates)


def kafka_tls(folder: Path) -> list[str]:
    """The CA, the brokers' keystore and the admin's client keystore (made together, or not at all)."""
    if (folder / "kafka_ca.pem").exists():
        return []
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("PriceMyRide Kafka CA", ca_key, (_name("PriceMyRide Kafka CA"), ca_key), ca=True)
    made = []
    for name, common, names in (("kafka_broker.pem", "kafka-broker", (*BROKERS, "localhost")),
                                ("kafka_admin.pem", "pricemyride-admin", ())):  # fmt: skip
        key = ec.generate_private_key(ec.SECP256R1())
        pem = _pem(key, _certificate(common, key, (ca.subject, ca_key), names), ca)
        if write_new(folder, name, pem.rstrip("\n")):
            made.append(name)
    write_new(folder, "kafka_ca.pem", lambda: ca.public_bytes(serialization.Encoding.PEM).decode().rstrip("\n"))
    return [*made, "kafka_ca.pem"]
