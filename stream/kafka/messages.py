"""What the worker reads and writes, independent of the Kafka client."""
from __future__ import annotations

from typing import Protocol

import msgspec

# Headers on messages the worker forwards to its repartition topic.
KIND = "segmenter-kind"  # "event" (default), "visitor" (identify + detached history)
CUSTOMER = "segmenter-customer"  # the customer an anonymous-only event belongs to
VISITOR = "segmenter-visitor"  # detached anonymous history (encoded state, see CustomerState.to_bytes), with KIND=visitor
# Headers on dead letters.
REASON = "segmenter-reason"
SOURCE_TOPIC = "segmenter-source-topic"
SOURCE_PARTITION = "segmenter-source-partition"
SOURCE_OFFSET = "segmenter-source-offset"


class Message(msgspec.Struct, gc=False):
    """One input message. A msgspec struct because the worker builds one per record it
    reads: its constructor runs in C, about a third of a slotted dataclass's cost."""

    topic: str
    partition: int
    offset: int  # -1 for a message taken back out of a state
    key: bytes | None
    value: bytes
    headers: dict[str, bytes] = msgspec.field(default_factory=dict)
    timestamp_ms: int = 0  # broker append time, for latency


class Output(Protocol):
    def send(self, topic: str, key: bytes | None, value: bytes, headers: dict[str, bytes] | None = None) -> None:
        """Queue a message; the caller flushes before offsets are committed."""
