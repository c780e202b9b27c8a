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
    settings = Settings(kafka_bootstrap="a:9092,b:9092")
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
        Settings(kafka_security_protocol="SASL_PLAINTEXT")
