"""Create the topics the worker needs, with the right partition count, before Faust starts.

Some brokers (the embedded one among them) create unknown topics on first mention
with a default partition count; creating them first keeps every topic the worker
joins co-partitioned.
"""
from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from stream.settings import Settings


def bootstrap_servers(settings: Settings) -> list[str]:
    return [broker.split("://", 1)[-1] for broker in settings.brokers]


def worker_topics(settings: Settings) -> list[str]:
    return [*settings.topics, settings.repartition_topic, settings.changes_topic, settings.dlq_topic,
            f"{settings.app_id}-customers-changelog"]


async def ensure_topics(settings: Settings, names: list[str] | None = None) -> list[str]:
    """Create missing topics; returns the names created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [name for name in (names or worker_topics(settings)) if name not in existing]
        if wanted:
            configs = {"cleanup.policy": "compact"}
            await admin.create_topics([
                NewTopic(name, settings.partitions, settings.replication,
                         topic_configs=configs if name.endswith("-changelog") else {})
                for name in wanted
            ])
        return wanted
    finally:
        await admin.close()
