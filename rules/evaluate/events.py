"""Raw message bytes -> validated `Event`, or `BadEvent` with a reason a person can act on."""
from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

import msgspec
import orjson

from rules.timeutil import epoch_ms, fast_timestamp, parse_timestamp

EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_]*$")
DEFAULT_MAX_BYTES = 64 * 1024
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
    properties: dict[str, Any] = msgspec.field(default_factory=dict)

    @property
    def key(self) -> str:
        """The id the event is keyed by: the customer, else the anonymous visitor."""
        return self.customer_id or self.anonymous_id or ""


_KNOWN_TYPES: set[str] = set()


def _check_type(kind: object) -> str:
    if kind in _KNOWN_TYPES:
        return kind  # type: ignore[return-value]
    if not isinstance(kind, str) or not EVENT_TYPE.match(kind):
        raise BadEvent(f"'type' must match [a-z][a-z0-9_]*, got {kind!r}", "unknown_type")
    if len(_KNOWN_TYPES) < 10_000:
        _KNOWN_TYPES.add(kind)
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
        raise BadEvent("missing or empty 'event_id' (must be a string)", "missing_field")
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


def parse_event(raw: bytes | str, max_bytes: int = DEFAULT_MAX_BYTES) -> Event:
    """Decode and validate one message; raises BadEvent with the reason.

    The fast path decodes into a typed struct in C and checks the rest here; anything
    it rejects goes through `event_from_dict`, which names the reason (and is the
    definition of what is valid)."""
    if len(raw) > max_bytes:
        raise BadEvent(f"payload of {len(raw)} bytes is above the limit of {max_bytes}")
    try:
        wire = _decode(raw)
    except msgspec.DecodeError:
        return _slow(raw)
    kind, customer_id, anonymous_id, ts = wire.type, wire.customer_id, wire.anonymous_id, wire.ts
    if kind not in _KNOWN_TYPES or (customer_id is None and anonymous_id is None) or (
            kind == "identify" and (customer_id is None or anonymous_id is None)) or (
            customer_id is not None and customer_id.startswith(RESERVED_PREFIXES)):
        return _slow(raw)
    if type(ts) is not int:
        try:
            ts = epoch_ms(ts)  # type: ignore[arg-type]
        except ValueError:  # no offset
            return _slow(raw)
    properties = wire.properties
    return Event(wire.event_id, kind, ts, customer_id, anonymous_id, {} if properties is None else properties)


def _slow(raw: bytes | str) -> Event:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadEvent(f"not valid JSON: {exc}", "invalid_json") from None
    return event_from_dict(data)
