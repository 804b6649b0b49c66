"""Deterministic holdout: the same customer is always in or out of a segment's control group."""
from __future__ import annotations

import hashlib


def in_holdout(customer_id: str, segment: str, share: float) -> bool:
    """True for about `share` of customers, stable across runs, workers and versions."""
    if share <= 0:
        return False
    digest = hashlib.blake2b(f"{segment}\x00{customer_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < share
