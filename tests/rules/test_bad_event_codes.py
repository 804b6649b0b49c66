"""Every kind of unusable input is refused with one of the bounded reason codes that
the worker counts dead letters by (`segmenter_dead_letters_total{reason}`)."""
from __future__ import annotations

import pytest

from rules import BadEvent, parse_event
from rules.evaluate.events import REASON_CODES

GOOD = '"event_id": "e-1", "type": "page_view", "customer_id": "c-1", "timestamp": "2025-01-01T00:00:00Z"'


@pytest.mark.parametrize(("raw", "code"), [
    (b"{not json", "invalid_json"),
    (b"\x00\x01", "invalid_json"),
    (b"[1, 2]", "not_an_object"),
    (b'"text"', "not_an_object"),
    (b'{"type": "page_view", "customer_id": "c-1", "timestamp": 1}', "missing_field"),
    (b'{"event_id": "e-1", "type": "page_view", "timestamp": 1}', "missing_field"),
    (b'{"event_id": "e-1", "type": "page_view", "customer_id": "c-1"}', "missing_field"),
    (b'{"event_id": "e-1", "type": "identify", "customer_id": "c-1", "timestamp": 1}', "missing_field"),
    (b'{"event_id": "e-1", "type": "page_view", "customer_id": 7, "timestamp": 1}', "bad_field"),
    (("{" + GOOD + ', "properties": [1]}').encode(), "bad_field"),
    (b'{"event_id": "e-1", "type": "Page View", "customer_id": "c-1", "timestamp": 1}', "unknown_type"),
    (b'{"event_id": "e-1", "customer_id": "c-1", "timestamp": 1}', "unknown_type"),
    (b'{"event_id": "e-1", "type": "page_view", "customer_id": "c-1", "timestamp": "2025-02-30T10:00:00Z"}',
     "bad_timestamp"),
    (b'{"event_id": "e-1", "type": "page_view", "customer_id": "c-1", "timestamp": "yesterday"}', "bad_timestamp"),
    (("{" + GOOD + ', "properties": {"blob": "' + "x" * 70_000 + '"}}').encode(), "other"),
])
def test_reason_code(raw: bytes, code: str) -> None:
    with pytest.raises(BadEvent) as refused:
        parse_event(raw)
    assert refused.value.code == code
    assert code in REASON_CODES
    assert str(refused.value)  # the readable reason stays the message


def test_a_usable_event_is_not_refused() -> None:
    assert parse_event(("{" + GOOD + "}").encode()).event_id == "e-1"
