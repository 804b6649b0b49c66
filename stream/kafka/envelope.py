"""`identify` forwarded to the customer's partition together with the detached visitor history."""
from __future__ import annotations

import struct

from rules.evaluate.state import CustomerState

_LENGTH = struct.Struct(">I")


def pack(event: bytes, visitor: CustomerState | None) -> bytes:
    history = visitor.to_bytes() if visitor is not None else b""
    return _LENGTH.pack(len(event)) + event + history


def unpack(value: bytes) -> tuple[bytes, CustomerState | None]:
    (length,) = _LENGTH.unpack_from(value)
    event = value[_LENGTH.size:_LENGTH.size + length]
    history = value[_LENGTH.size + length:]
    return event, (CustomerState.from_bytes(history) if history else None)
