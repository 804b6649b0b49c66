"""Kafka's default partitioner hash (murmur2 of the key), as every Kafka client computes it.

aiokafka ships it in pure Python, byte by byte (about 6 µs for a short key). The worker
hashes every key it writes for the first time (a new customer's changes), so this
version reads the key's 32-bit words with one precompiled `struct` call and drops the
redundant masks: about twice as fast, and equal to aiokafka's on every input
(tests/stream/kafka/test_partitioner.py compares them on random keys).
"""
from __future__ import annotations

import functools
import struct
from collections.abc import Callable

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF
_SEED = 0x9747B28C
_WORDS: dict[int, Callable[[bytes], tuple[int, ...]]] = {}  # word count -> little-endian unpacker


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2), unsigned 32-bit."""
    length = len(data)
    h = _SEED ^ length
    words = length >> 2
    if words:
        unpack = _WORDS.get(words)
        if unpack is None:
            unpack = _WORDS[words] = struct.Struct(f"<{words}I").unpack_from
        for k in unpack(data):
            k = (k * _M) & _MASK
            k ^= k >> 24
            h = ((h * _M) & _MASK) ^ ((k * _M) & _MASK)
    extra = length & 3
    if extra:
        tail = length & ~3
        if extra >= 3:
            h ^= data[tail + 2] << 16
        if extra >= 2:
            h ^= data[tail + 1] << 8
        h = ((h ^ data[tail]) * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


@functools.lru_cache(maxsize=1 << 17)
def _positive_hash(key: bytes) -> int:
    """Cached: the worker sees the same customers round after round."""
    return murmur2(key) & 0x7FFFFFFF


def default_partition(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner gives `key` among `partitions`."""
    return _positive_hash(key) % partitions
