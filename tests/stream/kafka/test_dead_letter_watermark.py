"""A dead-lettered message must not stop its partition's time-based flips.

With generated traffic whose last message on some partition was unusable, that
partition's flips (long due) once never fired: the timer index learned how far a
topic-partition had been read only from usable events, so a partition ending in a dead
letter never counted as caught up.
"""
from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import orjson

from stream.broker import EmbeddedBroker
from stream.kafka.topics import ensure_topics
from stream.settings import Settings

from harness import WorkerProcess, produce, read_records, worker_env

SEGMENTS = """
segments:
  recent:
    when: since(last(page_view)) < 5s
"""


def test_a_due_flip_fires_when_the_partition_ends_with_a_dead_letter(broker: EmbeddedBroker, tmp_path: Path) -> None:
    (tmp_path / "segments.yaml").write_text(SEGMENTS)
    name = f"w{uuid.uuid4().hex[:8]}"
    settings = Settings(brokers=[broker.url], topics=[f"{name}-behavior"], changes_topic=f"{name}-changes",
                        dlq_topic=f"{name}-dlq", repartition_topic=f"{name}-repartition", app_id=name)
    asyncio.run(ensure_topics(settings))
    env = worker_env(broker.bootstrap, tmp_path / "segments.yaml", tmp_path / "data", name,
                     topics=settings.topics[0], changes_topic=settings.changes_topic, dlq_topic=settings.dlq_topic,
                     repartition_topic=settings.repartition_topic)
    worker = WorkerProcess(env, tmp_path / "worker.log")
    try:
        worker.wait_ready()
        ts = int(time.time() * 1000) - 60_000  # the exit (5 s later) is long due
        event = orjson.dumps({"event_id": "pv-1", "type": "page_view", "customer_id": "c-1", "timestamp": ts})
        asyncio.run(produce(broker.bootstrap, settings.topics[0], [(b"c-1", event)]))
        asyncio.run(produce(broker.bootstrap, settings.topics[0], [(b"c-1", b"{not json")]))  # same partition
        records = asyncio.run(read_records(broker.bootstrap, settings.changes_topic,
                                           lambda found: len(found) >= 2, settle=0.5, timeout=30))
        summary = [(c["segment"], c["change"], c["cause"]) for c in (orjson.loads(r.value) for r in records)]
        assert summary == [("recent", "enter", "pv-1"), ("recent", "exit", "timer")]
    finally:
        worker.stop(timeout=10)
        worker.kill()
