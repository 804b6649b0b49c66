"""The write-back cache over the table: what it writes, and which states it creates
(the worker counts new customers from that without reading the table again)."""
from __future__ import annotations

import random

import pytest

from rules.evaluate.state import CustomerState
from stream.kafka.statestore import TableStates


def written(states: TableStates) -> dict[str, bytes | None]:
    out: dict[str, bytes | None] = {}
    states.flush(out.__setitem__)
    return out


def test_only_changed_states_are_written_once_per_flush() -> None:
    table = {"a": CustomerState().to_bytes()}
    states = TableStates(table)
    a = states.get("a")
    assert a is not None and states.get("b") is None
    states["b"] = CustomerState()
    states["b"] = states["b"]
    assert set(written(states)) == {"b"}
    assert written(states) == {}


@pytest.mark.parametrize("seed", range(20))
def test_created_is_what_the_table_did_not_hold(seed: int) -> None:
    """Random rounds of the engine's access pattern (look up, then write back or create),
    checked against the table itself before each flush."""
    rng = random.Random(seed)
    table: dict[str, bytes] = {}
    states = TableStates(table)
    keys = [f"c{i}" for i in range(12)]
    for _ in range(30):
        for _ in range(rng.randint(0, 8)):
            key = rng.choice(keys)
            state = states.get(key)
            if state is None and rng.random() < 0.2:
                continue  # looked up, never created (e.g. a duplicate or a forwarded event)
            if state is not None and rng.random() < 0.1:
                del states[key]
                continue
            states[key] = state or CustomerState()
        expected = {key for key in states.dirty if key not in table}
        assert states.created() == expected
        for key, value in written(states).items():
            if value is None:
                table.pop(key, None)
            else:
                table[key] = value
        assert states.created() == set()
