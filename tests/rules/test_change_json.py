"""Change events are published as compact JSON in the contract's field order; the
bytes must equal what a standard encoder writes, whatever the ids contain."""
from __future__ import annotations

import json

import orjson
from hypothesis import given, settings, strategies as st

from rules.evaluate.changes import Change
from rules.timeutil import parse_timestamp

FIELDS = ["customer_id", "segment", "change", "seq", "at", "cause", "holdout", "definition"]

ids = st.text(min_size=1, max_size=40)  # any Unicode, control characters and quotes included
changes = st.builds(Change, ids, ids, st.sampled_from(["enter", "exit"]), st.integers(1, 2**53),
                    st.integers(0, 4102444800000), ids, st.booleans(), ids)


@settings(max_examples=300, deadline=None)
@given(changes)
def test_the_bytes_are_what_orjson_writes_for_the_same_fields(change: Change) -> None:
    published = change.to_json()
    assert published == orjson.dumps(change.to_dict())
    decoded = json.loads(published)  # the standard library reads it back to the same values
    assert list(decoded) == FIELDS
    assert decoded["customer_id"] == change.customer_id and decoded["cause"] == change.cause
    assert decoded["seq"] == change.seq and decoded["holdout"] is change.holdout
    assert parse_timestamp(decoded["at"]) == change.at

