"""`parse_event`'s fast path (msgspec) accepts and refuses exactly what the reference
path (`orjson.loads` + `event_from_dict`, the written rules of the product contract)
does, with the same event or the same reason, over messages built field by field
from good and bad values."""
from __future__ import annotations

import sys

import msgspec
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules import BadEvent, Event, parse_event
from rules.timeutil import parse_timestamp
from rules.evaluate.events import LATEST_TIMESTAMP, UNREAD, _not_json, event_from_dict

MISSING = object()
ids = st.sampled_from(["e-1", "c-9", "", " ", "é", "anon:1", "alias:a", "c-anon:1"]) | st.integers(-2, 2) | st.none() | st.booleans() | st.just([])
types = st.sampled_from(["page_view", "identify", "order_placed", "Page View", "", "x" * 3, "9lives"]) | st.none() | \
    st.integers(0, 3) | st.just([1]) | st.just({"a": 1})
timestamps = st.sampled_from([
    "2025-01-01T00:00:00Z", "2025-01-01T00:00:00.123456+02:00", "2025-01-01 10:00:00+00:00", "2025-01-01T00:00:00",
    "2025-02-30T10:00:00Z", "2025-01-01", "yesterday", "",
    "2025-01-01t00:00:00.0009996z", "2025-01-01T00:00:00+00", "2025-01-01T00:00:00,5Z",
]) | st.integers(-10, 2**40) | st.floats(allow_nan=False, allow_infinity=False) | st.booleans() | st.none()
properties = st.none() | st.just([1]) | st.just("x") | st.dictionaries(
    st.sampled_from(["total", "sku", "items"]),
    st.none() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=3) | st.lists(st.integers(-5, 5), max_size=2),
    max_size=3)


def _message(fields: dict[str, object]) -> bytes:
    return orjson.dumps({name: value for name, value in fields.items() if value is not MISSING})


def _outcome(parse, raw: bytes) -> object:
    try:
        return parse(raw)
    except BadEvent as exc:
        return ("refused", exc.code, str(exc))


def _mostly(good: st.SearchStrategy, anything: st.SearchStrategy) -> st.SearchStrategy:
    """Usually a usable value, so that messages bad in exactly one field are common."""
    return st.one_of(good, good, good, anything, st.just(MISSING))


messages = st.fixed_dictionaries({
    "event_id": _mostly(st.just("e-1"), ids),
    "type": _mostly(st.sampled_from(["page_view", "identify"]), types),
    "customer_id": _mostly(st.just("c-1"), ids),
    "anonymous_id": _mostly(st.just("a-1"), ids),
    "timestamp": _mostly(st.just("2025-01-01T00:00:00Z"), timestamps),
    "properties": _mostly(st.just({"total": 5}), properties),
    "extra": st.just(MISSING) | st.integers(-(2**63), 2**63 - 1),
})


@settings(max_examples=1000, deadline=None)
@given(messages)
def test_fast_path_agrees_with_the_written_rules(fields: dict[str, object]) -> None:
    raw = _message(fields)
    assert _outcome(parse_event, raw) == _outcome(lambda r: event_from_dict(orjson.loads(r)), raw)


@settings(max_examples=1000, deadline=None)
@given(messages, st.sampled_from([frozenset(), frozenset({"identify"}), frozenset({"page_view", "order_placed"})]))
def test_leaving_properties_out_refuses_the_same_and_keeps_the_rest(fields: dict[str, object],
                                                                    read: frozenset[str]) -> None:
    """Events of types not in `read_properties` lose their properties and nothing else:
    a message is refused for the same reason, and an accepted one differs only there."""
    raw = _message(fields)
    every = _outcome(parse_event, raw)
    some = _outcome(lambda r: parse_event(r, read_properties=read), raw)
    if isinstance(every, Event) and every.type not in read:
        assert isinstance(some, Event) and some.properties is UNREAD
        assert some == msgspec.structs.replace(every, properties=UNREAD)
    else:
        assert some == every


def _reference(raw: bytes) -> object:
    """The written rules: orjson, then `event_from_dict`."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadEvent(_not_json(raw, exc), "invalid_json") from None  # (its wording is tested below)
    return event_from_dict(data)


@given(st.binary(max_size=40) | st.sampled_from([b"[1]", b'"x"', b"null", b"{", b'{"event_id": "e"}']))
def test_anything_else_is_refused_with_the_same_reason(raw: bytes) -> None:
    assert _outcome(parse_event, raw) == _outcome(_reference, raw)


HEAD = b'{"event_id":"e-1","type":"page_view","customer_id":"c-1","timestamp":"2025-01-01T00:00:01Z"'


CHOKING = [
    HEAD + b',"properties":{"u":"\xff"}}',  # invalid UTF-8 inside a string
    HEAD.replace(b'"e-1"', b'"e\xfe"') + b"}",
    HEAD + b',"properties":{"n":1e400}}',  # a number beyond a double
    HEAD + b',"properties":{"n":-1E+309}}',
    HEAD + b',"properties":{"d":' + b"[" * 1000 + b"]" * 1000 + b"}}",  # deeper than the interpreter's default limit
    HEAD + b',"properties":{"d":' + b"[" * 1100 + b"]" * 1100 + b"}}",  # deeper than the rules allow
    b'{"event_id":"e-1","type":[1],"customer_id":"c-1","timestamp":1}',  # a type that cannot be hashed
]


@pytest.mark.parametrize("recursion_limit", [1000, 5000])
@pytest.mark.parametrize("read", [None, frozenset(), frozenset({"page_view"})])
@pytest.mark.parametrize("raw", CHOKING, ids=range(len(CHOKING)))
def test_input_the_decoder_chokes_on_is_refused_as_the_written_rules_say(raw: bytes, read: frozenset[str] | None,
                                                                          recursion_limit: int) -> None:
    """Some bad input makes the C decoder raise more than its `DecodeError` (invalid
    UTF-8 in a string; nesting deeper than the interpreter's recursion limit, which
    also sets how deep it reads), and a worker would stop on such an error. It must be
    refused with the written rules' reason, or accepted where they accept it, whatever
    the recursion limit (the default 1000, or raised as some libraries do)."""
    expected = _outcome(_reference, raw)
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(recursion_limit)
    try:
        got = _outcome(lambda r: parse_event(r, read_properties=read), raw)
        sys.setrecursionlimit(5000)  # comparing 1000 nested lists recurses as deep
        if isinstance(expected, Event) and read is not None and expected.type not in read:
            assert isinstance(got, Event) and got.properties is UNREAD
            expected = msgspec.structs.replace(expected, properties=UNREAD)
        assert got == expected
    finally:
        sys.setrecursionlimit(before)


def test_customer_ids_spelled_like_visitor_or_alias_keys_are_refused() -> None:
    """A visitor's state is kept under `anon:<anonymous id>` and, in the worker's table,
    its link under `alias:<anonymous id>`: a customer id of that form would read and
    overwrite them, so it is refused with the prefix named. Elsewhere in a customer id,
    and anywhere in an anonymous id, the text is harmless."""
    for customer in ("anon:v-1", "alias:v-1", "anon:", "alias:"):
        raw = _message({"event_id": "e-1", "type": "page_view", "customer_id": customer, "timestamp": 1})
        refused = _outcome(parse_event, raw)
        assert isinstance(refused, tuple) and refused[:2] == ("refused", "bad_field"), customer
        assert repr(customer.split(":")[0] + ":") in refused[2] and repr(customer) in refused[2], refused
    for customer, anonymous in (("c-anon:1", None), ("Anon:1", None), ("c-1", "anon:1"), ("c-1", "alias:1")):
        fields = {"event_id": "e-1", "type": "identify" if anonymous else "page_view", "customer_id": customer,
                  "anonymous_id": anonymous if anonymous else MISSING, "timestamp": 1}
        event = parse_event(_message(fields))
        assert (event.customer_id, event.anonymous_id) == (customer, anonymous)


TIMESTAMP_FORMS = ["2025-01-01T00:00:00Z", "2025-01-01t00:00:00z", "2025-01-01 00:00:00+02:00",
                   "2025-01-01T00:00:00.0009996Z", "2025-01-01T23:59:59.9999996-05:00", "2025-01-01T00:00:00+00",
                   "2025-01-01T00:00:00,5Z", "2025-01-01T00:00:00", "2025-01-01T24:00:00Z", "1969-12-31T23:59:59.999Z"]


def test_every_timestamp_form_reads_the_same_on_both_paths_and_as_an_as_of() -> None:
    """The fast path reads timestamps in C, the written rules and `--as-of` in Python:
    a text must give one instant (or one refusal) everywhere, digits past the
    microsecond included."""
    for text in TIMESTAMP_FORMS:
        raw = _message({"event_id": "e-1", "type": "page_view", "customer_id": "c-1", "timestamp": text})
        fast, written = _outcome(parse_event, raw), _outcome(lambda r: event_from_dict(orjson.loads(r)), raw)
        assert fast == written, text
        try:
            as_of: object = parse_timestamp(text)
        except ValueError:
            as_of = "refused"
        if isinstance(as_of, int) and not 0 <= as_of <= LATEST_TIMESTAMP:
            as_of = "refused"  # an instant, but not one an event may have
        assert (fast.ts if not isinstance(fast, tuple) else "refused") == as_of, text  # type: ignore[union-attr]


@pytest.mark.parametrize("timestamp, accepted", [
    ("1970-01-01T00:00:00Z", 0), ("1970-01-01T01:00:00+01:00", 0), (0, 0),
    ("9999-12-31T23:59:59.999Z", LATEST_TIMESTAMP), (LATEST_TIMESTAMP, LATEST_TIMESTAMP),
    ("1969-12-31T23:59:59.999Z", None), ("1970-01-01T00:59:59+01:00", None), (-1, None),
    (LATEST_TIMESTAMP + 1, None), (99999999999999999, None), ("9999-12-31T23:59:59-00:01", None),
])
def test_event_times_run_from_the_epoch_to_the_year_9999(timestamp: object, accepted: int | None) -> None:
    """Earlier events would be evaluated at 1970 (a customer's clock never goes back
    past its start), later ones have no RFC 3339 text for the changes they cause: both
    are bad events, with the same reason on both paths."""
    raw = _message({"event_id": "e-1", "type": "page_view", "customer_id": "c-1", "timestamp": timestamp})
    fast, written = _outcome(parse_event, raw), _outcome(lambda r: event_from_dict(orjson.loads(r)), raw)
    assert fast == written
    if accepted is None:
        assert isinstance(fast, tuple) and fast[:2] == ("refused", "bad_timestamp")
        assert "is outside 1970-01-01 .. 9999-12-31" in fast[2]
    else:
        assert fast.ts == accepted  # type: ignore[union-attr]


def test_a_byte_that_is_not_utf8_is_named_with_its_column() -> None:
    line = '{"event_id": "e1", "type": "page_view", "customer_id": "Ren\u00e9"}'.encode("latin-1")
    with pytest.raises(BadEvent) as caught:
        parse_event(line)
    column = line.index(b"\xe9") + 1
    assert str(caught.value) == (f"not valid JSON: byte 0xe9 at column {column} is not UTF-8 "
                                 "(JSON text must be UTF-8)")
    assert caught.value.code == "invalid_json"


def test_an_offset_of_a_day_or_more_is_refused_in_words() -> None:
    with pytest.raises(ValueError, match=r"the UTC offset must lie within ±23:59$"):
        parse_timestamp("2026-01-01T00:00:00+25:00")


def test_an_event_id_that_is_no_text_is_named_as_such_not_as_missing() -> None:
    for value, code, reason in ((8, "bad_field", "'event_id' must be a non-empty string, got 8"),
                                (["e"], "bad_field", "'event_id' must be a non-empty string, got ['e']"),
                                ("", "missing_field", "missing or empty 'event_id' (must be a string)"),
                                (MISSING, "missing_field", "missing or empty 'event_id' (must be a string)")):
        raw = _message({"event_id": value, "type": "page_view", "customer_id": "c-1", "timestamp": 1})
        assert _outcome(parse_event, raw) == ("refused", code, reason), value


@pytest.mark.parametrize(("raw", "reason"), [
    # a file still being written, or an upload cut off: in a string, between fields, at the end
    (b'{"event_id": "e1", "type": "page_view", "customer_id": "c1", "timest\n',
     "it ends before the JSON is complete (cut short?)"),
    (b'{"event_id": "e1", "type": "page_view",\n', "it ends before the JSON is complete (cut short?)"),
    (b'{"event_id": "e1"', "it ends before the JSON is complete (cut short?)"),
    (b'{"event_id": "e\t1"}\n', "unexpected control character in string (U+0009, which JSON needs escaped) "
                                "at column 16"),
    (b'{"event_id": "e1"}{"event_id": "e2"}\n', "more text after the JSON value at column 19 (two events on one "
                                                "line?)"),
    (b'{\n"event_id": "e1",\n}', "trailing comma is not allowed at line 2 of the message, column 17"),
    (b"   \n", "empty, no JSON at all"),
])
def test_json_that_cannot_be_read_is_explained_in_the_words_of_one_line(raw: bytes, reason: str) -> None:
    """orjson's "line 1 column 62" named the message's line 1 beside the file's line
    number, and a line cut short was reported as a control character in a string."""
    with pytest.raises(BadEvent) as caught:
        parse_event(raw)
    assert str(caught.value) == f"not valid JSON: {reason}"
    assert caught.value.code == "invalid_json"
