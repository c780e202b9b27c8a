"""Who may do what on Kafka: one SCRAM principal per role and per listing site, each with only its ACLs.

The brokers refuse anything no ACL allows (``allow.everyone.if.no.acl.found=false``). The admin — the super
user the brokers were started with — makes the principals and their ACLs:

- ``pricemyride-worker`` reads every listings topic and ``model-updates``, writes the predictions topics and
  the dead letters, in its group and with transactional ids ``<group>-…``;
- ``pricemyride-monitor`` reads the predictions topics and alone writes ``retrain-requests``;
- ``pricemyride-trainer`` (the retrain listener and flow, ``pricemyride promote``) reads ``retrain-requests``
  and alone writes ``model-updates``;
- ``pricemyride-producer`` writes the operator's own ``listings`` topic;
- ``pricemyride-api`` (the valuation API) reads ``model-updates`` and writes each added site's
  ``listings.<name>`` (``?publish=true``, for the site a key belongs to), nothing else;
- ``site-<name>`` writes ``listings.<name>`` and reads ``price-predictions.<name>``, nothing else
  (``pricemyride add-site``). The topic a listing arrives on names its site, so ``source`` cannot be forged.

The dashboard reads Postgres only: it has no Kafka principal at all.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from kafka import KafkaAdminClient
from kafka.admin import (
    ACL,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    ResourcePattern,
    ResourceType,
    ScramMechanism,
    UserScramCredentialUpsertion,
)
from kafka.errors import TopicAlreadyExistsError

from pricemyride.errors import ConfigError
from pricemyride.kafka import kafka_python_options
from pricemyride.settings import Settings
from pricemyride.topics import SiteTopics, TopicSpec, new_topic, site_name

WORKER, MONITOR, TRAINER = "pricemyride-worker", "pricemyride-monitor", "pricemyride-trainer"
PRODUCER, API = "pricemyride-producer", "pricemyride-api"
ROLES = (WORKER, MONITOR, TRAINER, PRODUCER, API)
READ, WRITE, DESCRIBE = ACLOperation.READ, ACLOperation.WRITE, ACLOperation.DESCRIBE
EXACT, PREFIX = ACLResourcePatternType.LITERAL, ACLResourcePatternType.PREFIXED
SCRAM_ITERATIONS = 8192


@dataclass(frozen=True)
class Grant:
    """Operations on one resource (a topic, group or transactional id, by exact name or by prefix)."""

    kind: ResourceType
    name: str
    match: ACLResourcePatternType
    operations: tuple[ACLOperation, ...]

    def acls(self, principal: str) -> list[ACL]:
        pattern = ResourcePattern(self.kind, self.name, self.match)
        return [ACL(f"User:{principal}", "*", op, ACLPermissionType.ALLOW, pattern) for op in self.operations]


def topic(name: str, match: ACLResourcePatternType, *operations: ACLOperation) -> Grant:
    return Grant(ResourceType.TOPIC, name, match, (*operations, DESCRIBE) if DESCRIBE not in operations else operations)


def group(name: str, match: ACLResourcePatternType = EXACT) -> Grant:
    return Grant(ResourceType.GROUP, name, match, (READ,))


def transactions(prefix: str) -> Grant:
    return Grant(ResourceType.TRANSACTIONAL_ID, prefix, PREFIX, (WRITE, DESCRIBE))


def role_grants(settings: Settings) -> dict[str, list[Grant]]:
    """Each service role's rights, and no more (the module docstring says why each)."""
    s, own = settings, settings.consumer_group
    return {
        WORKER: [topic(s.listings_topic, PREFIX, READ), topic(s.predictions_topic, PREFIX, WRITE),
                 topic(s.dlq_topic, EXACT, WRITE), topic(s.model_updates_topic, EXACT, READ), group(own),
                 transactions(f"{own}-")],
        MONITOR: [topic(s.predictions_topic, PREFIX, READ), group(f"{own}-monitor"),
                  topic(s.retrain_topic, EXACT, WRITE)],
        TRAINER: [topic(s.retrain_topic, EXACT, READ), group(f"{own}-retrainer"),
                  topic(s.model_updates_topic, EXACT, WRITE)],
        PRODUCER: [topic(s.listings_topic, EXACT, WRITE)],
        API: [topic(s.model_updates_topic, EXACT, READ)],  # and each site's listings topic (add_site)
    }  # fmt: skip


def site_principal(site: str) -> str:
    return f"site-{site}"


def site_grants(settings: Settings, site: str) -> list[Grant]:
    """A site writes its own listings topic and reads its own valuations; its groups and transactional ids
    start with its principal's name."""
    sites, principal = SiteTopics.of(settings), site_principal(site)
    return [topic(f"{sites.listings}.{site}", EXACT, WRITE), topic(f"{sites.predictions}.{site}", EXACT, READ),
            group(principal, PREFIX), transactions(principal)]  # fmt: skip


@contextmanager
def admin_client(settings: Settings) -> Iterator[KafkaAdminClient]:
    admin = KafkaAdminClient(**kafka_python_options(settings), client_id="pricemyride-access")
    try:
        yield admin
    finally:
        admin.close()


def set_login(admin: KafkaAdminClient, user: str, password: str) -> None:
    """Create or change ``user``'s SCRAM-SHA-256 login (how a password is rotated, too)."""
    change = UserScramCredentialUpsertion(user, ScramMechanism.SCRAM_SHA_256, password, iterations=SCRAM_ITERATIONS)
    failed = {name: error for name, error in admin.alter_user_scram_credentials([change]).items() if error}
    if failed:
        raise ConfigError(f"Kafka login {user}: expected the broker to accept it, got {failed[user]}")


def grant(admin: KafkaAdminClient, principal: str, grants: list[Grant]) -> int:
    """Add the ACLs (adding one that exists changes nothing); returns how many were asked for."""
    acls = [acl for g in grants for acl in g.acls(principal)]
    outcome = admin.create_acls(acls)
    if outcome.get("failed"):
        acl, error = outcome["failed"][0]
        raise ConfigError(f"Kafka ACL for {principal}: expected the broker to accept it, got {error} ({acl})")
    return len(acls)


def ensure_roles(settings: Settings, logins_dir: Path) -> list[str]:
    """The roles whose password file is in ``logins_dir`` (named after the role): login and ACLs, idempotent."""
    made = []
    with admin_client(settings) as admin:
        for role, grants in role_grants(settings).items():
            password_file = logins_dir / role
            if password_file.is_file():
                set_login(admin, role, read_password(password_file))
                grant(admin, role, grants)
                made.append(role)
    return made


def read_password(path: Path) -> str:
    password = path.read_text(encoding="utf-8").strip()
    if len(password) < 16:
        raise ConfigError(f"{path}: expected a password of at least 16 characters, got {len(password)}")
    return password


@dataclass(frozen=True)
class SiteAccess:
    """What ``add_site`` made: the principal, the topics it writes and reads, and where its password is."""

    principal: str
    writes: str
    reads: str
    password_file: Path


def add_site(settings: Settings, name: str, password_file: Path | None = None) -> SiteAccess:
    """A listing site's principal, topics and ACLs (idempotent). Its password is read from ``password_file``,
    or made and written to ``<state>/sites/<name>.password`` (mode 0600) — it is never printed."""
    try:
        site = site_name(name)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    password_file = password_file or new_password_file(settings.state_path / "sites" / f"{site}.password")
    sites, principal = SiteTopics.of(settings), site_principal(site)
    access = SiteAccess(principal, f"{sites.listings}.{site}", f"{sites.predictions}.{site}", password_file)
    with admin_client(settings) as admin:
        for topic_name in (access.writes, access.reads):
            with suppress(TopicAlreadyExistsError):
                admin.create_topics([new_topic(settings, TopicSpec(topic_name, settings.listings_partitions))])
        set_login(admin, principal, read_password(password_file))
        grant(admin, principal, site_grants(settings, site))
        grant(admin, API, [topic(access.writes, EXACT, WRITE)])  # the API publishes for this site's keys
    return access


def new_password_file(path: Path) -> Path:
    """A random password in a file only its owner may read (kept if it exists: re-adding a site keeps it)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(24) + "\n", encoding="utf-8")
    return path
