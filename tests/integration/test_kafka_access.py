"""Kafka identities and ACLs on the real broker (SCRAM logins, the StandardAuthorizer): a site writes only its
own listings topic and reads only its own valuations, only the trainer writes model-updates and only the monitor
retrain-requests, and a scoring worker logged in as its role — with no other right — scores a site's listings
end to end, the source taken from the topic (a listing that claims another site is dead-lettered)."""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaTimeoutError, TopicAuthorizationFailedError
from pydantic import SecretStr

from pricemyride.access import MONITOR, PRODUCER, TRAINER, WORKER, SiteAccess, add_site, ensure_roles
from pricemyride.bootstrap import prepare
from pricemyride.kafka import kafka_python_options
from pricemyride.settings import Settings
from tests.conftest import isolated_env
from tests.integration.conftest import RUN_ID
from tests.integration.helpers import free_port, may_write, query, spawn, stop, wait_for
from training.model import TrainParams
from training.train import train

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Access:
    settings: Settings
    roles: dict[str, str]  # principal → password
    site_a: SiteAccess
    site_b: SiteAccess

    def password(self, site: SiteAccess) -> str:
        return site.password_file.read_text().strip()


def as_user(settings: Settings, user: str, password: str) -> dict[str, object]:
    login = settings.model_copy(update={"kafka_sasl_username": user, "kafka_sasl_password": SecretStr(password)})
    return kafka_python_options(login)


def can_write(settings: Settings, user: str, password: str, topic: str) -> bool:
    return may_write(as_user(settings, user, password), topic)


def can_read(settings: Settings, user: str, password: str, topic: str) -> bool:
    """Whether ``user`` gets a record the admin has just written to ``topic``."""
    admin = KafkaProducer(**kafka_python_options(settings), acks="all")
    admin.send(topic, b'{"probe": true}', partition=0).get(timeout=10)
    admin.close()
    consumer = KafkaConsumer(**as_user(settings, user, password), enable_auto_commit=False)
    try:
        consumer.assign([TopicPartition(topic, 0)])
        consumer.seek_to_beginning()
        return any(consumer.poll(timeout_ms=400) for _ in range(3))
    except TopicAuthorizationFailedError:
        return False
    finally:
        consumer.close()


@pytest.fixture(scope="module")
def access(services: None, data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Access]:
    """A world of its own (topics, group, database, registry) with two sites and the four service roles."""
    folder = tmp_path_factory.mktemp("acl")
    with pytest.MonkeyPatch.context() as patch:
        for key, value in isolated_env(f"acl{RUN_ID}", folder, free_port()).items():
            patch.setenv(key, value)
        settings = Settings()
        prepare(settings)
        logins = folder / "logins"
        logins.mkdir()
        roles = {role: secrets.token_urlsafe(18) for role in (WORKER, MONITOR, TRAINER, PRODUCER)}
        for role, password in roles.items():
            (logins / role).write_text(password + "\n")
        assert sorted(ensure_roles(settings, logins)) == sorted(roles)
        sites = [add_site(settings, f"{name}{RUN_ID}".lower()[:40]) for name in ("a", "b")]
        # Crowned whatever its quality (the rights are the subject here), so small and quick.
        train(settings, data_dir / "craigslist_2021.csv", limit=2000, params=TrainParams(max_rounds=30), promote=True)
        yield Access(settings, roles, *sites)


def test_each_principal_writes_only_what_its_role_needs(access: Access) -> None:
    s, a, b = access.settings, access.site_a, access.site_b
    site_a = (a.principal, access.password(a))
    assert can_write(s, *site_a, a.writes)
    for other in (b.writes, s.listings_topic, s.model_updates_topic, s.retrain_topic, s.predictions_topic, a.reads):
        assert not can_write(s, *site_a, other), other
    worker, monitor, trainer = ((role, access.roles[role]) for role in (WORKER, MONITOR, TRAINER))
    assert can_write(s, *trainer, s.model_updates_topic)
    for principal in (worker, monitor, site_a, (PRODUCER, access.roles[PRODUCER])):
        assert not can_write(s, *principal, s.model_updates_topic), principal[0]
    assert can_write(s, *monitor, s.retrain_topic)
    assert not can_write(s, *worker, s.retrain_topic)
    assert can_write(s, PRODUCER, access.roles[PRODUCER], s.listings_topic)


def test_a_site_reads_only_its_own_valuations(access: Access) -> None:
    s, a, b = access.settings, access.site_a, access.site_b
    site_a = (a.principal, access.password(a))
    assert can_read(s, *site_a, a.reads)
    for other in (b.reads, s.predictions_topic, b.writes, s.dlq_topic):
        assert not can_read(s, *site_a, other), other


def test_a_wrong_password_gets_nothing(access: Access) -> None:
    options = as_user(access.settings, access.site_a.principal, "not-the-password")
    producer = KafkaProducer(**options, max_block_ms=2000, api_version=(3, 0))  # no version probe: fail fast
    try:
        with pytest.raises(KafkaTimeoutError):  # kafka-python waits for metadata it never gets (see the notes)
            producer.send(access.site_a.writes, b"{}").get(timeout=5)
    finally:
        producer.close(timeout=0)


def test_the_worker_role_scores_a_sites_listings_and_the_topic_names_the_site(access: Access, tmp_path: Path) -> None:
    s, a = access.settings, access.site_a
    log_file = tmp_path / "worker.log"
    login = {"PRICEMYRIDE_KAFKA_SASL_USERNAME": WORKER, "PRICEMYRIDE_KAFKA_SASL_PASSWORD": access.roles[WORKER]}
    worker = spawn(["-m", "stream_workers", "worker", "-l", "info"], log_file, login)
    try:
        wait_for(lambda: "scoring partitions" in log_file.read_text() or worker.poll() is not None, 90, "worker")
        own, forged = f"own-{uuid.uuid4().hex[:8]}", f"forged-{uuid.uuid4().hex[:8]}"
        listing = {"manufacturer": "toyota", "model": "camry", "year": 2016, "odometer": 60000, "price": 14000}
        producer = KafkaProducer(**as_user(s, a.principal, access.password(a)), acks="all")
        producer.send(a.writes, key=own.encode(), value=json.dumps(listing | {"id": own}).encode())
        producer.send(a.writes, key=forged.encode(), value=json.dumps(listing | {"id": forged, "source": "b"}).encode())
        producer.flush()
        producer.close()
        wait_for(lambda: bool(query(s, "SELECT 1 FROM dead_letters WHERE key = %s", [forged.encode()])), 60, "forged")
        assert query(s, "SELECT source FROM predictions WHERE listing_id = %s", [own]) == [(a.writes.split(".")[-1],)]
        (reason,) = query(s, "SELECT reason FROM dead_letters WHERE key = %s", [forged.encode()])[0]
        assert reason.startswith(f"source: expected '{a.writes.split('.')[-1]}' (the site that owns {a.writes})")
        assert valuations(s, a, access.password(a), own)
        assert worker.poll() is None
    finally:
        stop(worker)


def valuations(settings: Settings, site: SiteAccess, password: str, expected: str) -> bool:
    """Whether ``expected`` is among the listing ids on the site's own predictions topic, read as the site."""
    consumer = KafkaConsumer(**as_user(settings, site.principal, password), isolation_level="read_committed",
                             enable_auto_commit=False, auto_offset_reset="earliest")  # fmt: skip
    try:
        partitions = [TopicPartition(site.reads, p) for p in consumer.partitions_for_topic(site.reads) or ()]
        consumer.assign(partitions)
        for _ in range(20):
            for records in consumer.poll(timeout_ms=500).values():
                if any(json.loads(r.value).get("listing_id") == expected for r in records):
                    return True
        return False
    finally:
        consumer.close()
