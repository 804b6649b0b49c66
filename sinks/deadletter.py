"""The sink dead-letter topic: one JSON message per action that could not be carried out.

`{"change": {...}, "action": {"kind": ..., "destination": ..., "params": {...}},
"destination": ..., "error": ..., "attempts": N, "failed_at": RFC 3339}`, keyed by
customer id, so one customer's dead letters stay in order in one partition and
`segmenter redrive` replays them in that order. The record carries the action as it
was defined, but not the destination's settings (secrets stay out of Kafka): redrive
looks the destination up by name in the definitions it loads.
"""
from __future__ import annotations

import time
from typing import Any

import orjson

from rules.language.model import Action, Origin
from rules.timeutil import format_timestamp
from sinks.base import Delivery
from sinks.changes import parse_change
from sinks.dispatch import DeadLetter

REDRIVEN = Origin("(dead letter)", 0)


def encode(letter: DeadLetter, now_ms: int | None = None) -> tuple[bytes, bytes]:
    """(key, value) of the dead-letter message."""
    item = letter.delivery
    action = item.action
    value = {
        "change": item.change.raw,
        "action": {"kind": action.kind, "destination": action.destination, "params": action.params},
        "destination": action.destination,
        "error": letter.error,
        "attempts": letter.attempts,
        "failed_at": format_timestamp(int(time.time() * 1000) if now_ms is None else now_ms),
    }
    return item.change.customer_id.encode(), orjson.dumps(value, default=str)


def decode(value: bytes | None) -> tuple[Delivery, dict[str, Any]]:
    """The delivery to run again, and the whole record (for listing). Raises ValueError."""
    if value is None:
        raise ValueError("a record with a null value (a tombstone)")
    record = orjson.loads(value)
    if not isinstance(record, dict) or not isinstance(record.get("action"), dict):
        raise ValueError("not a sink dead letter")
    action = record["action"]
    kind, destination = action.get("kind"), action.get("destination") or record.get("destination")
    if not isinstance(kind, str) or not isinstance(destination, str):
        raise ValueError("dead letter without action kind or destination")
    params = action.get("params") if isinstance(action.get("params"), dict) else {}
    change = parse_change(record.get("change") or {})
    attempts = record.get("attempts")
    attempts = attempts if isinstance(attempts, int) else 0
    return Delivery(change, Action(kind, destination, params, REDRIVEN), attempts), record


async def publish(producer: Any, topic: str, letters: list[DeadLetter]) -> list[tuple[int, int]]:
    """Send and wait for every dead letter; (partition, offset) of each. Raises when Kafka
    does not take them, so the caller never commits input whose effect is in neither place."""
    futures = []
    for letter in letters:
        key, value = encode(letter)
        futures.append(await producer.send(topic, value=value, key=key,
                                           headers=[("segmenter-destination", letter.delivery.action.destination.encode())]))
    located = []
    for future in futures:
        metadata = await future
        located.append((metadata.partition, metadata.offset))
    return located
