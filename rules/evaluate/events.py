"""Raw message bytes -> validated `Event`, or `BadEvent` with a reason a person can act on."""
from __future__ import annotations

import re
from collections.abc import Container, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Annotated, Any

import msgspec
import orjson

from rules.timeutil import epoch_ms, fast_timestamp, parse_timestamp

EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_]*$")
DEFAULT_MAX_BYTES = 64 * 1024
MAX_NESTING = 1024
"""The deepest nesting of arrays and objects a message may have (orjson's limit, which
the written rules (`event_from_dict` after `orjson.loads`) inherit)."""
LATEST_TIMESTAMP = 253_402_300_799_999
"""9999-12-31T23:59:59.999Z in epoch ms. Event times run from the epoch to this: an
earlier one would be evaluated at 1970 (a customer's clock starts there and never goes
back) and a later one has no RFC 3339 text, the form every change's `at` takes."""
RESERVED_PREFIXES = ("anon:", "alias:")
"""Customer ids may not begin with these. Customer states are kept under the customer
id, in one key space with a visitor's state (`anon:` + anonymous id) and, in the
worker's table, with the link of an identified visitor (`alias:` + anonymous id); a
customer id spelled like one of those keys would read and overwrite them."""


REASON_CODES = ("invalid_json", "not_an_object", "missing_field", "bad_field", "unknown_type", "bad_timestamp",
                "other")
"""The bounded kinds of bad input, for counting dead letters (the message says more)."""


class BadEvent(ValueError):
    """An input that cannot be used; the message is the dead-letter reason and `code`
    one of `REASON_CODES`, so dead letters can be counted by kind without free text."""

    def __init__(self, reason: str, code: str = "other") -> None:
        super().__init__(reason)
        self.code = code


_Id = Annotated[str, msgspec.Meta(min_length=1)]


class Event(msgspec.Struct, gc=False):
    """One validated input event. A msgspec struct: cheaper to build than a dataclass,
    and not tracked by the garbage collector (an event never takes part in a reference
    cycle), which matters when replay holds a million of them."""

    event_id: str
    type: str
    ts: int  # epoch milliseconds
    customer_id: str | None = None
    anonymous_id: str | None = None
    properties: Mapping[str, Any] = msgspec.field(default_factory=dict)

    @property
    def key(self) -> str:
        """The id the event is keyed by: the customer, else the anonymous visitor."""
        return self.customer_id or self.anonymous_id or ""


UNREAD: Mapping[str, Any] = MappingProxyType({})
"""The properties of an event read with `read_properties` whose type is not among
them: checked with the rest of the message, then not kept (read-only, shared)."""

_KNOWN_TYPES: dict[str, str] = {}
"""Valid type names seen so far, each mapped to one shared string object: a million
events of a dozen types then hold a dozen type strings, not a million."""


def _check_type(kind: object) -> str:
    known = _KNOWN_TYPES.get(kind) if type(kind) is str else None
    if known is not None:
        return known
    if not isinstance(kind, str) or not EVENT_TYPE.match(kind):
        raise BadEvent(f"'type' must match [a-z][a-z0-9_]*, got {kind!r}", "unknown_type")
    if len(_KNOWN_TYPES) < 10_000:
        _KNOWN_TYPES[kind] = kind
    return kind


def _bad_id(name: str) -> BadEvent:
    return BadEvent(f"'{name}' must be a non-empty string", "bad_field")


def event_from_dict(data: object) -> Event:
    """Validate a decoded JSON value against the product contract (section 2) (hot path: keep it flat)."""
    if type(data) is not dict:
        raise BadEvent(f"event must be a JSON object, got {type(data).__name__}", "not_an_object")
    get = data.get
    event_id = get("event_id")
    if type(event_id) is not str or not event_id:
        if event_id is None or event_id == "":
            raise BadEvent("missing or empty 'event_id' (must be a string)", "missing_field")
        raise BadEvent(f"'event_id' must be a non-empty string, got {event_id!r}", "bad_field")
    kind = _check_type(get("type"))
    customer_id = get("customer_id")
    anonymous_id = get("anonymous_id")
    if customer_id is not None and (type(customer_id) is not str or not customer_id):
        raise _bad_id("customer_id")
    if anonymous_id is not None and (type(anonymous_id) is not str or not anonymous_id):
        raise _bad_id("anonymous_id")
    if customer_id is not None and customer_id.startswith(RESERVED_PREFIXES):
        prefix = next(p for p in RESERVED_PREFIXES if customer_id.startswith(p))
        raise BadEvent(f"'customer_id' must not begin with {prefix!r} (reserved for visitor and alias keys), "
                       f"got {customer_id!r}", "bad_field")
    if customer_id is None and anonymous_id is None:
        raise BadEvent("needs 'customer_id' or 'anonymous_id'", "missing_field")
    if kind == "identify" and (customer_id is None or anonymous_id is None):
        raise BadEvent("'identify' needs both 'anonymous_id' and 'customer_id'", "missing_field")
    ts = get("timestamp")
    if type(ts) is not int:
        if ts is None:
            raise BadEvent("missing 'timestamp'", "missing_field")
        try:
            ts = fast_timestamp(ts) if type(ts) is str else parse_timestamp(ts)
        except ValueError as exc:
            raise BadEvent(str(exc), "bad_timestamp") from None
    if not 0 <= ts <= LATEST_TIMESTAMP:
        raise BadEvent(f"timestamp {get('timestamp')!r} is outside 1970-01-01 .. 9999-12-31", "bad_timestamp")
    properties = get("properties")
    if properties is None:
        properties = {}
    elif type(properties) is not dict:
        raise BadEvent("'properties' must be a JSON object", "bad_field")
    return Event(event_id, kind, ts, customer_id, anonymous_id, properties)


class _Wire(msgspec.Struct, gc=False):
    """The message as it is decoded on the fast path: like `Event`, but the timestamp
    may be a datetime (RFC 3339 text read in C) and the properties null (both
    converted in `parse_event`)."""

    event_id: _Id
    type: str
    ts: int | datetime = msgspec.field(name="timestamp")
    customer_id: _Id | None = None
    anonymous_id: _Id | None = None
    properties: dict[str, Any] | None = None


_decode = msgspec.json.Decoder(_Wire).decode


def parse_event(raw: bytes | str | None, max_bytes: int = DEFAULT_MAX_BYTES,
                read_properties: Container[str] | None = None) -> Event:
    """Decode and validate one message; raises BadEvent with the reason.

    The fast path decodes into a typed struct in C and checks the rest here; anything
    it rejects goes through `event_from_dict`, which names the reason (and is the
    definition of what is valid). msgspec raises more than `DecodeError` on some bad
    input (`UnicodeDecodeError` for invalid UTF-8 inside a string, `RecursionError`
    for deep nesting): those go the slow way too, so they are refused, not raised.

    `read_properties`, when given, names the event types whose properties are kept;
    the others get `UNREAD` once the message has been checked as a whole. Replay holds
    every event of a file in memory at once, and most events (page and product views)
    carry properties no definition reads: not keeping them nearly halves the memory a
    loaded file takes, and with it the time to load it."""
    if raw is None:  # a Kafka record with a key and no value (a compaction tombstone)
        raise BadEvent("no event: the message has a null value (a tombstone)", "invalid_json")
    if len(raw) > max_bytes:
        raise BadEvent(f"payload of {len(raw)} bytes is above the limit of {max_bytes}")
    if len(raw) > 2 * MAX_NESTING and _brackets(raw) > MAX_NESTING:
        event = _slow(raw)  # perhaps nested deeper than the rules allow: msgspec's limit is the interpreter's
    else:
        try:
            wire = _decode(raw)
        except (ValueError, RecursionError):  # msgspec.DecodeError is a ValueError
            event = _slow(raw)
        else:
            event = _checked(wire, raw)
    if read_properties is not None and event.type not in read_properties:
        event.properties = UNREAD
    return event


def _brackets(raw: bytes | str) -> int:
    """Opening brackets in `raw`: an upper bound of its nesting depth."""
    if isinstance(raw, str):
        return raw.count("[") + raw.count("{")
    return raw.count(b"[") + raw.count(b"{")


def _checked(wire: _Wire, raw: bytes | str) -> Event:
    """The `Event` of a decoded message, after the checks types cannot express (any
    failure goes to `_slow`, which names the reason)."""
    kind, customer_id, anonymous_id, ts = _KNOWN_TYPES.get(wire.type), wire.customer_id, wire.anonymous_id, wire.ts
    if kind is None or (customer_id is None and anonymous_id is None) or (
            kind == "identify" and (customer_id is None or anonymous_id is None)) or (
            customer_id is not None and customer_id.startswith(RESERVED_PREFIXES)):
        return _slow(raw)
    if type(ts) is not int:
        try:
            ts = epoch_ms(ts)  # type: ignore[arg-type]
        except ValueError:  # no offset
            return _slow(raw)
    if not 0 <= ts <= LATEST_TIMESTAMP:
        return _slow(raw)
    properties = wire.properties
    return Event(wire.event_id, kind, ts, customer_id, anonymous_id, {} if properties is None else properties)


def _slow(raw: bytes | str) -> Event:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadEvent(_not_json(raw, exc), "invalid_json") from None
    return event_from_dict(data)


def _not_json(raw: bytes | str, exc: orjson.JSONDecodeError) -> str:
    """Why a message is not JSON. Bytes that are not UTF-8 (a Latin-1 export, binary
    data) are named with their place: orjson reports them at the start of the line."""
    if isinstance(raw, bytes):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as bad:
            return (f"not valid JSON: byte 0x{raw[bad.start]:02x} at column {bad.start + 1} is not UTF-8 "
                    "(JSON text must be UTF-8)")
    return f"not valid JSON: {_json_reason(raw, exc)}"


def _json_reason(raw: bytes | str, exc: orjson.JSONDecodeError) -> str:
    """orjson's reason in the words of one message: its "line 1" means the message, not
    the file's line, and a line cut short (a file still being written, a truncated
    upload) is said to be so instead of as a control character inside a string."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    reason = exc.msg
    rest = text[exc.pos:]
    if not text.strip():
        return "empty, no JSON at all"
    if reason == "unexpected end of data" or (reason.startswith("unexpected control character") and rest.strip() == ""):
        return "it ends before the JSON is complete (cut short?)"
    place = f"column {exc.colno}" if exc.lineno == 1 else f"line {exc.lineno} of the message, column {exc.colno}"
    if reason.startswith("unexpected control character") and rest:
        return f"{reason} (U+{ord(rest[0]):04X}, which JSON needs escaped) at {place}"
    if reason == "unexpected content after document":
        return f"more text after the JSON value at {place} (two events on one line?)"
    return f"{reason} at {place}"
