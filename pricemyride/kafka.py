"""Kafka client options from Settings, one mapping per client library, so TLS and SASL reach every client.

``PLAINTEXT`` (the local default) adds nothing. ``SSL`` / ``SASL_SSL`` verify the brokers against
``kafka_ssl_cafile`` (or the system store) and present a client certificate when one is configured;
``SASL_*`` log in with ``kafka_sasl_mechanism`` as ``kafka_sasl_username``.
"""

from __future__ import annotations

import ssl
from typing import Any

from pricemyride.settings import Settings


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """A verifying TLS context for SSL protocols (None for plaintext ones)."""
    if not settings.kafka_security_protocol.endswith("SSL"):
        return None
    context = ssl.create_default_context(cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None)
    if settings.kafka_ssl_certfile:
        keyfile = str(settings.kafka_ssl_keyfile) if settings.kafka_ssl_keyfile else None
        context.load_cert_chain(str(settings.kafka_ssl_certfile), keyfile)
    return context


def _sasl(settings: Settings) -> dict[str, Any]:
    if not settings.kafka_security_protocol.startswith("SASL"):
        return {}
    password = settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else None
    return {"sasl_mechanism": settings.kafka_sasl_mechanism, "sasl_plain_username": settings.kafka_sasl_username,
            "sasl_plain_password": password}  # fmt: skip


def _secured(options: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """``options`` plus the protocol, TLS context and SASL login the settings ask for."""
    if settings.kafka_security_protocol == "PLAINTEXT":
        return options
    options["security_protocol"] = settings.kafka_security_protocol
    context = ssl_context(settings)
    if context is not None:
        options["ssl_context"] = context
    return options | _sasl(settings)


def kafka_python_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for kafka-python's KafkaProducer, KafkaConsumer and KafkaAdminClient."""
    return _secured({"bootstrap_servers": settings.kafka_bootstrap.split(",")}, settings)


def aiokafka_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for aiokafka's AIOKafkaConsumer and AIOKafkaProducer."""
    return _secured({"bootstrap_servers": settings.kafka_bootstrap}, settings)


def faust_credentials(settings: Settings) -> Any:
    """``broker_credentials`` for faust.App (None for plaintext)."""
    import faust

    context = ssl_context(settings)
    if settings.kafka_security_protocol.startswith("SASL"):
        password = settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else None
        return faust.SASLCredentials(username=settings.kafka_sasl_username, password=password, ssl_context=context,
                                     mechanism=settings.kafka_sasl_mechanism)  # fmt: skip
    if context is not None:
        return faust.SSLCredentials(context)
    return None
