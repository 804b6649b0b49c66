"""aiokafka clients for the sinks, configured like the worker (servers, TLS, SASL).

The sinks use aiokafka directly rather than Faust: they need one consumer group,
manual commits after the effects are done, and nothing else.
"""
from __future__ import annotations

import ssl
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from stream.settings import Settings


def client_options(settings: Settings) -> dict[str, Any]:
    options: dict[str, Any] = {
        "bootstrap_servers": [broker.split("://", 1)[-1] for broker in settings.brokers],
        "security_protocol": settings.security_protocol,
    }
    if "SSL" in settings.security_protocol:
        context = ssl.create_default_context(cafile=settings.ssl_cafile or None)
        if settings.ssl_certfile:
            context.load_cert_chain(settings.ssl_certfile, settings.ssl_keyfile or None)
        options["ssl_context"] = context
    if settings.security_protocol.startswith("SASL"):
        options.update(sasl_mechanism=(settings.sasl_mechanism or "PLAIN").upper(),
                       sasl_plain_username=settings.sasl_username, sasl_plain_password=settings.sasl_password)
    return options


def consumer(settings: Settings, group: str, *topics: str, max_records: int = 1000,
             round_limit: float = 900.0) -> AIOKafkaConsumer:
    """A consumer in `group` that commits only when told to, from the earliest offset
    when the group has none (a new sinks group starts with the whole retained stream).
    `round_limit`: the longest a round between two fetches can take (`RetryPolicy.round_limit`);
    a member silent for longer is taken out of the group and its round runs again."""
    return AIOKafkaConsumer(
        *topics, group_id=group, enable_auto_commit=False, auto_offset_reset="earliest",
        max_poll_records=max_records, fetch_max_wait_ms=max(settings.fetch_wait_ms, 50),
        session_timeout_ms=int(settings.session_timeout * 1000),
        heartbeat_interval_ms=max(100, int(settings.session_timeout * 1000) // 3),
        rebalance_timeout_ms=int(settings.rebalance_timeout * 1000),
        max_poll_interval_ms=int(max(900.0, round_limit + 60.0) * 1000),  # a batch waits out a destination's retries
        **client_options(settings),
    )


def producer(settings: Settings) -> AIOKafkaProducer:
    return AIOKafkaProducer(acks="all", linger_ms=5, **client_options(settings))


async def ensure_topics(settings: Settings, names: list[str]) -> list[str]:
    """Create the topics that do not exist yet (`--partitions`, `--replication`)."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        missing = [name for name in names if name not in set(await admin.list_topics())]
        if missing:
            await admin.create_topics([NewTopic(name, settings.partitions, settings.replication) for name in missing])
        return missing
    finally:
        await admin.close()
