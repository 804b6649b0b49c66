"""Putting a round's confirmed state writes into the table's local store.

The rocksdb store's own `__setitem__` is one `put` per key, each through Faust's
current-event lookup; a round writes hundreds of keys after Kafka's acknowledgement, and
the round's offsets are committed only after them. One rocksdb `WriteBatch` per
partition does the same writes in one call per partition (also atomically per
partition, which a SIGKILL halfway through a round's puts was not).
"""
from __future__ import annotations

from typing import Any

from stream.kafka import faustfixes

Writes = dict[int, list[tuple[bytes, bytes | None]]]


def store_writes(store: Any, topic: str, by_partition: Writes) -> None:
    """Write `by_partition` (partition -> [(key, value or None to delete)]) to `store`."""
    if getattr(store, "use_rocksdict", False) and hasattr(store, "_db_for_partition"):
        _batched(store, by_partition)
    else:
        _one_by_one(store, topic, by_partition)


def _batched(store: Any, by_partition: Writes) -> None:
    from rocksdict import WriteBatch

    key_index = store._key_index  # where the store looks a key up first (`_get_bucket_for_key`)
    for partition, writes in by_partition.items():
        batch = WriteBatch(raw_mode=True)
        for raw_key, value in writes:
            if value is None:
                batch.delete(raw_key)
            else:
                batch.put(raw_key, value)
                key_index[raw_key] = partition
        store._db_for_partition(partition).write(batch)


def _one_by_one(store: Any, topic: str, by_partition: Writes) -> None:
    try:
        for partition, writes in by_partition.items():
            faustfixes.write_to_partition(topic, partition)  # a store files writes per partition
            for raw_key, value in writes:
                if value is None:
                    if store.get(raw_key) is not None:
                        del store[raw_key]
                else:
                    store[raw_key] = value
    finally:
        faustfixes.writes_done()  # reads must not stay tied to the partition written last
