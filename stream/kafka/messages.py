"""What the worker reads and writes, independent of the Kafka client."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
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


class Incoming(Protocol):
    """What the processor reads of an input message: a `Message`, or an aiokafka
    `ConsumerRecord` that carries no headers. The two share these names, so the worker
    hands the records of its batches over as they are (most input has no headers) and
    builds a `Message` only for the few that do, whose headers it looks up by name."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes: ...
    @property
    def headers(self) -> Mapping[str, bytes] | Sequence[tuple[str, bytes]]: ...  # a Mapping whenever not empty
    @property
    def timestamp(self) -> int: ...


class Message(msgspec.Struct, gc=False):
    """One input message. A msgspec struct because the worker builds one per record
    with headers and per message it takes back out of a state: its constructor runs in
    C, about a third of a slotted dataclass's cost."""

    topic: str
    partition: int
    offset: int  # -1 for a message taken back out of a state
    key: bytes | None
    value: bytes
    headers: dict[str, bytes] = msgspec.field(default_factory=dict)
    timestamp: int = 0  # broker append time (epoch ms), for latency


class Output(Protocol):
    def send(self, topic: str, key: bytes | None, value: bytes, headers: dict[str, bytes] | None = None) -> None:
        """Queue a message; the caller flushes before offsets are committed."""
