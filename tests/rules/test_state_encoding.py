"""A customer state written to the table reads back equal, field by field: states
built by the engine from generated shop traffic, and states holding any JSON value a
producer may send (integers beyond 64 bits and lone surrogates included, which take
the pickle route). Values written by earlier versions (pickles) still read."""
from __future__ import annotations

import pickle
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from examples.traffic import TrafficConfig, generate
from rules import Engine, load_definitions, parse_event
from rules.evaluate.state import CustomerState

SEGMENTS = Path(__file__).parents[2] / "examples" / "segments"


def _fields(state: CustomerState) -> dict[str, object]:
    return {name: getattr(state, name) for name in CustomerState.__slots__}


def test_engine_states_read_back_equal() -> None:
    engine = Engine(load_definitions(SEGMENTS))
    for raw in generate(TrafficConfig(customers=300, days=60, seed=7)):
        try:
            engine.apply(parse_event(raw))
        except ValueError:
            continue  # the generator's deliberate bad events
    states = list(engine.states.values())
    assert len(states) > 250 and any(s.slots for s in states) and any(s.flips for s in states)
    for state in states:
        state.outbox = [(7, b'{"change":"enter"}')]
        state.recent = [(1, "e-1", b"{}")]
        copy = CustomerState.from_bytes(state.to_bytes())
        assert _fields(copy) == _fields(state)
        assert list(copy.seen) == list(state.seen)  # oldest first: the order says which id goes next
        assert all(type(entry) is tuple for entry in copy.outbox + (copy.recent or []))


any_text = st.text(st.characters(exclude_categories=()))  # lone surrogates too
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | any_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(profile=st.dictionaries(st.text(max_size=5), json_values, max_size=4),
       buckets=st.dictionaries(st.integers(0, 2**50), st.integers(0, 10**6), max_size=4),
       seen=st.lists(st.text(min_size=1, max_size=6), unique=True, max_size=10),
       wake=st.none() | st.integers(0, 2**50))
def test_any_json_state_reads_back_equal(profile: dict, buckets: dict, seen: list, wake: int | None) -> None:
    state = CustomerState()
    state.profile = profile
    state.profile_ts = {name: 1 for name in profile}
    state.slots = {"count|page_view||604800000|": buckets, "last|order_placed|sku||": [5, "e-2", profile.get("a")]}
    state.seen = dict.fromkeys(seen)
    state.seqs = {"vip": 3}
    state.wake = wake
    state.held = [b"\x00raw"]
    copy = CustomerState.from_bytes(state.to_bytes())
    assert _fields(copy) == _fields(state)
    assert list(copy.seen) == seen


def test_values_written_as_pickles_still_read() -> None:
    state = CustomerState()
    state.profile = {"tier": "gold"}
    state.seqs = {"vip": 1}
    state.outbox = [(3, b"x")]
    copy = CustomerState.from_bytes(pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))
    assert _fields(copy) == _fields(state)


def test_values_msgpack_cannot_carry_take_the_pickle_route() -> None:
    for odd in (2**70, -(2**64), "\ud800 lone surrogate"):
        state = CustomerState()
        state.profile = {"odd": odd, "tier": "gold"}
        copy = CustomerState.from_bytes(state.to_bytes())
        assert copy.profile == state.profile
