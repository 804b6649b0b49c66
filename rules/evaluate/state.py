"""Per-customer state, free of Faust so replay, tests and the worker share it.

Memory per customer is bounded whatever the length of the history: one slot per
aggregate (windowed ones one per bucket, at most window/width + 2), at most
`RECENT_EVENT_IDS` remembered event ids for duplicate suppression, and one sequence
number per segment the customer ever entered; an anonymous visitor's state in the
worker also keeps at most `stream.kafka.processor.RECENT_ANONYMOUS` raw events.
"""
from __future__ import annotations

import operator
import pickle

import msgspec

RECENT_EVENT_IDS = 128
"""A repeated event_id is recognised while it is among the customer's last this many."""


class CustomerState:
    __slots__ = ("profile", "profile_ts", "slots", "seen", "seqs", "flips", "wake", "version", "clock",
                 "outbox", "partition", "held", "recent", "handed")

    def __init__(self) -> None:
        self.profile: dict[str, object] = {}
        self.profile_ts: dict[str, int] = {}  # attribute -> timestamp of the event that set it
        self.slots: dict[str, object] = {}  # aggregate key -> slot
        self.seen: dict[str, None] = {}  # recent event ids, oldest first
        self.seqs: dict[str, int] = {}  # segment -> seq; odd means member
        self.flips: dict[str, int] = {}  # time-dependent segment -> next possible flip
        self.wake: int | None = None  # min(flips)
        self.version = ""  # definitions version last evaluated with
        self.clock = 0  # latest instant this customer was evaluated at (never goes back)
        # Changes not yet known to be published, with the round that made them: stored
        # with the state in one table write, so a crash between that write and the
        # publish cannot lose them (the worker re-publishes them on recovery).
        self.outbox: list[tuple[int, bytes]] = []
        self.partition = -1  # the worker's table partition holding this state
        self.held: list[bytes] | None = None  # events waiting for an identify in flight
        # A visitor's latest anonymous events, not yet folded in: (ts, event_id, raw message).
        # The worker keeps at most a few so an identify that reaches the visitor's
        # partition after them can still leave out those that happened after it.
        self.recent: list[tuple[int, str, bytes]] | None = None
        # A visitor's history just handed over to a customer, kept until Kafka has the
        # messages that carry it: [customer id, identify with the history, later raw
        # events] (see `stream.kafka.processor.Processor._detach`).
        self.handed: list[bytes] | None = None

    def remember(self, event_id: str) -> bool:
        """Record an event id; False when it was already applied."""
        seen = self.seen
        if event_id in seen:
            return False
        seen[event_id] = None
        if len(seen) > RECENT_EVENT_IDS:
            del seen[next(iter(seen))]
        return True

    def set_profile(self, properties: dict[str, object], ts: int) -> None:
        """Newer values win per attribute, so a late `customer_updated` cannot undo a newer one."""
        profile, stamps = self.profile, self.profile_ts
        if not stamps:  # a new customer's first profile (most of them): every value is newer
            profile.update(properties)
            for name in properties:  # (dict.fromkeys would size small profiles for 16 entries)
                stamps[name] = ts
            return
        for name, value in properties.items():
            if stamps.get(name, -(2**62)) <= ts:
                profile[name] = value
                stamps[name] = ts

    def member(self, segment: str) -> bool:
        return bool(self.seqs.get(segment, 0) & 1)

    def memberships(self) -> list[str]:
        return sorted(name for name, seq in self.seqs.items() if seq & 1)

    def __getstate__(self) -> tuple[object, ...]:
        return _FIELDS(self)  # type: ignore[no-any-return]

    def __setstate__(self, values: tuple[object, ...]) -> None:
        fresh = CustomerState()  # fields added later keep their defaults
        for name in self.__slots__:
            setattr(self, name, getattr(fresh, name))
        for name, value in zip(self.__slots__, values):
            setattr(self, name, value)

    def to_bytes(self) -> bytes:
        """The table value: the fields in order as MessagePack (about twice as fast as
        pickle, which the worker paid on every state write); a state holding what
        MessagePack cannot carry (an integer beyond 64 bits, text with a lone surrogate)
        is pickled instead. `from_bytes` reads both."""
        try:
            return _encode(_FIELDS(self))
        except (OverflowError, ValueError, TypeError):
            return pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def from_bytes(data: bytes) -> CustomerState:
        if data[:1] == _PICKLED:
            state = pickle.loads(data)
            assert isinstance(state, CustomerState)
            return state
        state = CustomerState.__new__(CustomerState)
        state.__setstate__(_decode(data))
        # MessagePack has no tuples: the entries that were tuples become tuples again
        state.outbox = [tuple(entry) for entry in state.outbox]  # type: ignore[misc]
        if state.recent is not None:
            state.recent = [tuple(entry) for entry in state.recent]  # type: ignore[misc]
        return state


_FIELDS = operator.attrgetter(*CustomerState.__slots__)
_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder().decode
_PICKLED = b"\x80"  # every pickle of protocol 2 or later starts so; MessagePack of a 14-field array does not
