"""Consumer lag read from Faust's consumer: how many messages are still to be read."""
from __future__ import annotations

from typing import Any


def consumer_lag(consumer: Any, topics: list[str]) -> dict[str, int]:
    """Per topic, the sum over this worker's assigned partitions of (high watermark -
    next offset to read). Partitions whose high watermark is not fetched yet, or with
    nothing read nor committed, are left out (their lag is not known yet)."""
    lag = {topic: 0 for topic in topics}
    read = consumer._read_offset  # last offset read per partition (a defaultdict: use .get)
    committed = consumer._committed_offset
    for tp in consumer.assignment():
        if tp.topic not in lag:
            continue
        try:
            end = consumer.highwater(tp)
        except Exception:  # noqa: BLE001 - not fetched yet
            continue
        last = read.get(tp)
        position = last + 1 if last is not None else committed.get(tp)
        if end is None or position is None:
            continue
        lag[tp.topic] += max(0, end - position)
    return lag
