"""Kafka TLS/SASL settings reach every client library's options."""

from __future__ import annotations

import ssl
from pathlib import Path

import faust
import pytest
from pydantic import ValidationError

from pricemyride.kafka import aiokafka_options, faust_credentials, kafka_python_options
from pricemyride.settings import Settings


def test_plaintext_adds_nothing_but_the_brokers() -> None:
    settings = Settings(kafka_bootstrap="a:9092,b:9092", kafka_security_protocol="PLAINTEXT")
    assert kafka_python_options(settings) == {"bootstrap_servers": ["a:9092", "b:9092"]}
    assert aiokafka_options(settings) == {"bootstrap_servers": "a:9092,b:9092"}
    assert faust_credentials(settings) is None


def test_sasl_ssl_passes_the_login_and_a_verifying_context_everywhere() -> None:
    settings = Settings(kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="SCRAM-SHA-512",
                        kafka_sasl_username="scorer", kafka_sasl_password="s3cret")  # type: ignore[arg-type]  # fmt: skip
    for options in (kafka_python_options(settings), aiokafka_options(settings)):
        assert options["security_protocol"] == "SASL_SSL"
        assert (options["sasl_mechanism"], options["sasl_plain_username"]) == ("SCRAM-SHA-512", "scorer")
        assert options["sasl_plain_password"] == "s3cret"
        assert options["ssl_context"].verify_mode == ssl.CERT_REQUIRED
        assert options["ssl_context"].check_hostname is True
    credentials = faust_credentials(settings)
    assert isinstance(credentials, faust.SASLCredentials)
    assert (credentials.username, credentials.mechanism.value) == ("scorer", "SCRAM-SHA-512")
    assert credentials.protocol.value == "SASL_SSL"
    assert "s3cret" not in repr(settings)


def test_ssl_with_a_ca_file_it_cannot_read_fails_loudly(tmp_path: Path) -> None:
    settings = Settings(kafka_security_protocol="SSL", kafka_ssl_cafile=tmp_path / "missing-ca.pem")
    with pytest.raises(FileNotFoundError):
        kafka_python_options(settings)


def test_sasl_without_credentials_is_refused_with_what_was_expected() -> None:
    with pytest.raises(
        ValidationError, match="expects PRICEMYRIDE_KAFKA_SASL_USERNAME and PRICEMYRIDE_KAFKA_SASL_PASSWORD"
    ):
        Settings(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_username=None, kafka_sasl_password=None)


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SASL_PLAINTEXT"])
def test_production_refuses_kafka_in_clear(protocol: str) -> None:
    with pytest.raises(ValidationError, match=f"expected SASL_SSL \\(or SSL\\) in production, got {protocol}"):
        Settings(environment="production", kafka_bootstrap="kafka-1:9092", kafka_security_protocol=protocol)  # type: ignore[arg-type]


def test_production_refuses_the_local_kafka_password_and_accepts_a_real_one() -> None:
    with pytest.raises(ValidationError, match="KAFKA_SASL_PASSWORD: expected a real password in production"):
        Settings(environment="production", kafka_bootstrap="kafka-1:9092", kafka_security_protocol="SASL_SSL")
    real = Settings(environment="production", kafka_bootstrap="kafka-1:9092", kafka_security_protocol="SASL_SSL",
                    kafka_sasl_username="pricemyride-worker", kafka_sasl_password="a-real-long-password")  # type: ignore[arg-type]  # fmt: skip
    assert real.kafka_security_protocol == "SASL_SSL"
    assert Settings(environment="production").kafka_security_protocol == "SASL_PLAINTEXT"  # no Kafka given: unchecked


def test_the_local_default_logs_in_with_scram() -> None:
    options = kafka_python_options(Settings())
    assert (options["security_protocol"], options["sasl_mechanism"]) == ("SASL_PLAINTEXT", "SCRAM-SHA-256")
    assert options["sasl_plain_username"] == "pricemyride-admin"
