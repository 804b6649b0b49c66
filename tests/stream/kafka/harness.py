"""Helpers for tests against the real embedded broker: worker processes, produce, read to the end."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from stream.demo.process import SegmenterProcess

REPO = Path(__file__).resolve().parents[3]


class WorkerProcess(SegmenterProcess):
    """`segmenter worker` in its own process group, run from the repository."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        super().__init__("worker", env, log, "segmenter worker ready", cwd=REPO)


def worker_env(bootstrap: str, segments: Path, data_dir: Path, app_id: str, **extra: str) -> dict[str, str]:
    env = {
        "SEGMENTER_BROKERS": f"kafka://{bootstrap}",
        "SEGMENTER_SEGMENTS": str(segments),
        "SEGMENTER_STORE": "memory://",
        "SEGMENTER_DATA_DIR": str(data_dir),
        "SEGMENTER_APP_ID": app_id,
        "SEGMENTER_WEB_PORT": "0",
        "SEGMENTER_PARTITIONS": "4",
    }
    env.update({f"SEGMENTER_{k.upper()}": v for k, v in extra.items()})
    return env


async def produce(bootstrap: str, topic: str, messages: Iterable[tuple[bytes | None, bytes]]) -> int:
    """Send `messages` (key, value) and wait for the broker to take them all; how many."""
    return len(await produce_located(bootstrap, topic, messages))


@dataclass
class Record:
    """One message as a test reads it back, with where it lives and when this reader got it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]
    received: float  # time.time() when the reader received it


async def produce_located(bootstrap: str, topic: str,
                          messages: Iterable[tuple[bytes | None, bytes]]) -> list[tuple[int, int]]:
    """Like `produce`, returning the (partition, offset) the broker gave each message."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_request_size=4 * 1024 * 1024)
    await producer.start()
    try:
        pending = [await producer.send(topic, value=value, key=key) for key, value in messages]
        metadata = await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return [(meta.partition, meta.offset) for meta in metadata]


async def read_records(bootstrap: str, topic: str, until: Callable[[list[Record]], bool] | None = None,
                       settle: float = 1.0, timeout: float = 90.0) -> list[Record]:
    """Every message of `topic` from the beginning. Reads until `until(records)` holds (if
    given) and nothing new arrived for `settle` seconds, or until `timeout`; whatever was
    read by then is returned, so a caller's assertion shows what is missing."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest", fetch_max_wait_ms=50)
    await consumer.start()
    found: list[Record] = []
    try:
        await consumer.topics()  # load metadata of every topic
        partitions = consumer.partitions_for_topic(topic) or set()
        consumer.assign([TopicPartition(topic, p) for p in sorted(partitions)])
        await consumer.seek_to_beginning()
        deadline = time.monotonic() + timeout
        last_new = time.monotonic()
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=100)
            now = time.time()
            for tp, records in batch.items():
                for record in records:
                    found.append(Record(tp.topic, tp.partition, record.offset, record.key, record.value,
                                        dict(record.headers or ()), now))
            if batch:
                last_new = time.monotonic()
            elif time.monotonic() - last_new >= settle and (until is None or until(found)):
                break
    finally:
        await consumer.stop()
    return found
