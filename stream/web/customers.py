"""`GET /customers/{id}`: a customer's segments, profile, traits and why.

Looked up on this worker only when it holds the state's partition (a memory store can
keep rows of partitions it gave away). An id may also be an anonymous visitor's: an
identified one answers for its customer, an unidentified one with its own history.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

from rules.evaluate.engine import ANONYMOUS
from rules.timeutil import format_timestamp
from stream.kafka import faustfixes
from stream.web.peers import own_url, partition_of

if TYPE_CHECKING:
    from stream.kafka.app import SegmenterApp

MAX_ID_LENGTH = 512


def invalid_id(customer_id: str) -> str | None:
    """Why an id cannot be looked up, or None."""
    if not customer_id.strip():
        return "customer id is empty"
    if len(customer_id) > MAX_ID_LENGTH:
        return f"customer id is longer than {MAX_ID_LENGTH} characters"
    return None


def local_lookup(worker: SegmenterApp, customer_id: str) -> dict[str, object] | None:
    """The explanation of a customer held here, `{"alias_of": id}` for an identified
    visitor whose alias is held here, or None."""
    held = faustfixes.held_partitions(worker.app, worker.settings.repartition_topic)
    for key, anonymous in ((customer_id, False), (ANONYMOUS + customer_id, True)):
        state = worker.states.get(key)
        if state is None or state.partition not in held or state.handed is not None:
            continue  # (a handed-over visitor's kept record is no visitor any more: its alias answers)
        as_of = max(int(time.time() * 1000), state.clock)
        explained = worker.engine.explain(key, as_of)
        if explained is None:
            continue
        return {**explained, "customer_id": customer_id, "anonymous": anonymous, "as_of": format_timestamp(as_of),
                "partition": state.partition, "served_by": own_url(worker)}
    owner = worker.aliases.get(customer_id)
    if owner is not None and partition_of(worker, customer_id) in held:
        return {"alias_of": owner}
    return None
