"""What the worker reads and writes, independent of the Kafka client."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

# Headers on messages the worker forwards to its repartition topic.
KIND = "segmenter-kind"  # "event" (default), "visitor" (identify + detached history)
CUSTOMER = "segmenter-customer"  # the customer an anonymous-only event belongs to
VISITOR = "segmenter-visitor"  # detached anonymous history (encoded state, see CustomerState.to_bytes), with KIND=visitor
# Headers on dead letters.
REASON = "segmenter-reason"
SOURCE_TOPIC = "segmenter-source-topic"
SOURCE_PARTITION = "segmenter-source-partition"
SOURCE_OFFSET = "segmenter-source-offset"


@dataclass(slots=True)
class Message:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, bytes] = field(default_factory=dict)
    timestamp_ms: int = 0  # broker append time, for latency


class Output(Protocol):
    def send(self, topic: str, key: bytes | None, value: bytes, headers: dict[str, bytes] | None = None) -> None:
        """Queue a message; the caller flushes before offsets are committed."""
