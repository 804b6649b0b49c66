"""A round's confirmed writes reach the local store: the rocksdb store (written in one
batch per partition) must end up holding what plain per-key writes to a mapping hold,
each key in its own partition's files, and still hold it when opened again."""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import faust
import pytest

from stream.kafka.storewrites import Writes, store_writes

PARTITIONS = 4


def rocksdb_store(datadir: Path) -> Any:
    app = faust.App("storewrites-test", store="rocksdb://", datadir=str(datadir))
    table = app.Table("customers", key_type=bytes, value_type=bytes, partitions=PARTITIONS, default=None)
    return table.data


def random_rounds(rng: random.Random, keys: list[bytes]) -> list[Writes]:
    rounds = []
    for _ in range(25):
        writes: Writes = {}
        for key in rng.sample(keys, rng.randint(0, len(keys))):
            value = None if rng.random() < 0.2 else rng.randbytes(rng.randint(1, 40))
            writes.setdefault(hash(key) % PARTITIONS, []).append((key, value))
        rounds.append(writes)
    return rounds


@pytest.mark.parametrize("seed", range(5))
def test_batched_rocksdb_writes_equal_per_key_writes_and_survive_reopening(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    keys = [f"customer-{i}".encode() for i in range(30)]
    store = rocksdb_store(tmp_path)
    assert store.use_rocksdict  # the batched path is the one under test
    expected: dict[bytes, bytes] = {}
    for writes in random_rounds(rng, keys):
        store_writes(store, "segmenter-repartition", writes)
        for partition_writes in writes.values():
            for key, value in partition_writes:
                if value is None:
                    expected.pop(key, None)
                else:
                    expected[key] = value
        assert {key: store.get(key) for key in keys} == {key: expected.get(key) for key in keys}
    for key in keys:
        in_files = {p: store._db_for_partition(p).get(key) for p in range(PARTITIONS)}
        home = hash(key) % PARTITIONS
        assert in_files == {p: expected.get(key) if p == home else None for p in range(PARTITIONS)}
    for db in store._dbs.values():
        db.close()
    reopened = rocksdb_store(tmp_path)
    for partition in range(PARTITIONS):  # as the worker opens its assigned partitions
        reopened._db_for_partition(partition)
    assert {key: reopened.get(key) for key in keys} == {key: expected.get(key) for key in keys}


def test_other_stores_get_one_write_per_key() -> None:
    store: dict[bytes, bytes] = {b"gone": b"x", b"kept": b"y"}
    store_writes(store, "segmenter-repartition", {1: [(b"gone", None), (b"new", b"z")], 2: [(b"absent", None)]})
    assert store == {b"kept": b"y", b"new": b"z"}
