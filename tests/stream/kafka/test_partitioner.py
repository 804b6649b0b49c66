"""The worker's partitioner must put every key where any Kafka client would: compared
with aiokafka's own (byte-by-byte) murmur2 and with values from Kafka's Java client."""
from __future__ import annotations

import random

import pytest
from aiokafka.partitioner import murmur2 as aiokafka_murmur2

from stream.kafka.partitioner import default_partition, murmur2


@pytest.mark.parametrize("seed", range(5))
def test_equals_aiokafka_on_random_keys_of_every_length(seed: int) -> None:
    rng = random.Random(seed)
    for length in range(0, 70):
        for _ in range(40):
            key = rng.randbytes(length)
            assert murmur2(key) == aiokafka_murmur2(key), key


def test_partitions_match_the_java_client() -> None:
    # Kafka's DefaultPartitionerTest / UtilsTest: murmur2 of these strings (signed in Java)
    java = {b"21": -973932308, b"foobar": -790332482, b"a-little-bit-long-string": -985981536,
            b"a-little-bit-longer-string": -1486304829,
            b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971, b"abc": 479470107}
    for key, signed in java.items():
        assert murmur2(key) == signed & 0xFFFFFFFF, key
        assert default_partition(key, 12) == (signed & 0x7FFFFFFF) % 12
