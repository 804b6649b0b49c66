"""One batch of input messages -> state changes, change events, forwards and dead letters.

Kept free of Faust so the routing rules can be tested directly:
  * an event is processed on the partition of its routing key (the customer id, or
    for anonymous-only events the anonymous id); a message keyed otherwise is
    forwarded to the repartition topic keyed by that id;
  * `identify` first visits the anonymous id's partition, where the visitor's history
    and the alias live, then travels on to the customer's partition with the history;
    the hand-over waits there until that partition has read up to the identify's
    time (see `handover`);
  * an anonymous-only event of an identified visitor is forwarded to the customer;
    one of a visitor not (yet) identified is kept raw in the visitor's state (the
    latest `RECENT_ANONYMOUS`, older ones folded in), because the identify may reach
    this partition after it: the hand-over then folds in what happened before the
    identify and forwards the rest to the customer, to count from its own time;
  * a message that cannot be used goes to the dead-letter topic with its original
    bytes, source topic/partition/offset and the reason.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from rules import BadEvent, Change, Engine, parse_event
from rules.evaluate.events import Event
from rules.evaluate.engine import ANONYMOUS
from stream.kafka import envelope
from stream.kafka.handover import DETACH, EVENT, PendingHandovers
from stream.kafka import messages as m
from stream.kafka.messages import Incoming, Message, Output
from rules.evaluate.state import CustomerState
from stream.kafka.statestore import ALIAS_PREFIX, TableAliases, TableStates
from stream.kafka.timers import TimerIndex

RECENT_ANONYMOUS = 16
"""Raw anonymous events a visitor's state keeps unfolded (see the module docstring)."""

HELD_RECHECK_MS = 1_000
"""A customer whose events wait for an identify hand-over when one of its flips falls
due is looked at again this much later in its partition's time, not at every tick of
the timer loop; the hand-over's arrival schedules its flips anew (applying the
identify sets its next flip, one put off included)."""

WAITS_FOR = b"I"
"""Tags the first item of a customer's `held`: the identify whose hand-over it waits
for (the other items are raw events, which start with `{`). Knowing it lets the same
identify read again after a restart send its hand-over request again, in case that
request never reached Kafka, and lets a late copy of an earlier hand-over pass without
releasing the events that wait for this one."""


@dataclass
class Topics:
    changes: str
    dlq: str
    repartition: str


@dataclass
class BatchStats:
    processed: int = 0
    forwarded: int = 0
    dead_letters: int = 0
    duplicates: int = 0
    changes: int = 0
    by_topic: dict[tuple[str, str], int] = field(default_factory=dict)  # (topic, outcome) -> n
    by_reason: dict[str, int] = field(default_factory=dict)  # dead letters by BadEvent.code


class Processor:
    def __init__(self, engine: Engine, states: TableStates, aliases: TableAliases, timers: TimerIndex,
                 output: Output, topics: Topics, max_event_bytes: int = 64 * 1024,
                 on_change: Callable[[Change, int], None] | None = None) -> None:
        self.engine = engine
        self.states = states
        self.aliases = aliases
        self.timers = timers
        self.output = output
        self.topics = topics
        self.max_event_bytes = max_event_bytes
        self.on_change = on_change
        self.partition_of: dict[str, int] = {}  # keys written this round -> table partition
        self.round = 0
        self.confirmed = 0  # the latest round whose output Kafka has acknowledged
        self.pending = PendingHandovers()
        self.handed_over: list[tuple[int, str]] = []  # (round, visitor key) of states kept by `_detach`

    def begin_round(self) -> None:
        """A new round: its changes are tagged with its id in the outbox until `confirm`."""
        self.round = max(self.round + 1, time.time_ns())  # increasing even if the wall clock steps back
        self.partition_of.clear()
        if self.handed_acknowledged():
            self._forget_handed()

    def handed_acknowledged(self) -> bool:
        """Kept hand-overs wait to be dropped (a round starting now drops them): the
        worker starts a round for this alone, or a kept one outlives the quiet that may
        follow and is sent again at every later recovery."""
        return bool(self.handed_over) and self.handed_over[0][0] <= self.confirmed

    def confirm(self, round_id: int) -> None:
        """Everything sent up to round `round_id` is in Kafka: outbox entries of that
        round and earlier can go (they are dropped when their state is next written)."""
        self.confirmed = max(self.confirmed, round_id)

    # -- input --------------------------------------------------------------------
    def process(self, batch: Sequence[Incoming], stats: BatchStats) -> None:
        counts = stats.by_topic
        for message in batch:
            key = (message.topic, self._one(message, stats))
            counts[key] = counts.get(key, 0) + 1
        if self.pending:
            self.resume(int(time.time() * 1000), stats)

    def _one(self, message: Incoming, stats: BatchStats) -> str:
        # Most input carries no headers: the lookups are skipped then. Headers that are
        # there are a mapping (records with headers come as `Message`, see `Incoming`).
        headers: Mapping[str, bytes] = message.headers  # type: ignore[assignment]
        kind = headers.get(m.KIND, b"event") if headers else b"event"
        if kind == b"visitor":
            raw, visitor = envelope.unpack(message.value)
        else:
            raw, visitor = message.value, None
        try:
            event = parse_event(raw, self.max_event_bytes)  # the size limit included
        except BadEvent as exc:
            self._dead_letter(message, str(exc))
            stats.dead_letters += 1
            stats.by_reason[exc.code] = stats.by_reason.get(exc.code, 0) + 1
            if message.offset >= 0:  # read progress all the same, or the partition never catches up
                self.timers.observe(message.topic, message.partition, None, message.offset)
            return "dead_letter"
        if message.offset >= 0:  # not a message taken back out of a state
            self.timers.observe(message.topic, message.partition, event.ts, message.offset)
        customer = headers.get(m.CUSTOMER) if headers else None
        if customer is not None:
            event.customer_id = customer.decode()
        if kind == b"visitor":  # identify back on the customer's partition, with the history
            outcome = self._apply(event, message, stats, visitor or CustomerState())
            self._release(event.customer_id or "", raw, message, stats)
            return outcome
        if kind == b"detach":  # identify on the visitor's partition: hand the history over
            return self._detach(event, message, stats)
        routing = event.customer_id or event.anonymous_id or ""
        if message.key is None or message.key.decode(errors="replace") != routing:
            self._forward(routing, message.value, {m.KIND: b"event"})
            stats.forwarded += 1
            return "forwarded"
        if event.customer_id is None:
            since = self.pending.since(ANONYMOUS + routing, message.partition)
            if since is not None and event.ts > since:  # after a waiting identify: goes with it
                return self._keep(ANONYMOUS + routing, EVENT + message.value, message.partition)
            owner = self.aliases.get(routing)
            if owner is not None:
                self._forward(owner, message.value, {m.KIND: b"event", m.CUSTOMER: owner.encode()})
                stats.forwarded += 1
                return "forwarded"
        return self._local(event, message, stats)

    def _detach(self, event: Event, message: Incoming, stats: BatchStats) -> str:
        anonymous = event.anonymous_id or ""
        key = ANONYMOUS + anonymous
        visitor = self.states.get(key)
        waiting = visitor is not None and visitor.held is not None
        if waiting or (self.aliases.get(anonymous) is None and self._behind(message.partition, event.ts)):
            self.pending.wait(message.partition, key, event.ts)
            return self._keep(key, DETACH + message.value, message.partition)
        later = self._fold_recent(key, event.ts) if visitor is not None and visitor.recent else []
        customer = event.customer_id or ""
        history = self.engine.detach_visitor(anonymous, customer)
        handed = [customer.encode(), envelope.pack(message.value, history), *later]
        if history is not None or later:
            # Kept until Kafka has this round's messages: a crash after the link and the
            # removal reached the changelog, but before these did, would lose the history
            # (`recover` sends it again; the customer drops a copy it already applied).
            kept = CustomerState()
            kept.handed = handed
            self.states[key] = kept
            self.handed_over.append((self.round, key))
        self._note(key, message.partition)
        self._note(ALIAS_PREFIX + anonymous, message.partition)
        stats.forwarded += self._send_handed(handed)
        return "forwarded"

    def _send_handed(self, handed: list[bytes]) -> int:
        """Send a hand-over: the identify with the history, then the visitor's events that
        happened after it (the customer's own events now, in time order)."""
        customer, handover, *later = handed
        self._forward(customer.decode(), handover, {m.KIND: b"visitor"})
        for raw in later:
            self._forward(customer.decode(), raw, {m.KIND: b"event", m.CUSTOMER: customer})
        return 1 + len(later)

    def _forget_handed(self) -> None:
        """Drop the kept hand-overs of rounds Kafka has acknowledged."""
        waiting = []
        for round_id, key in self.handed_over:
            if round_id > self.confirmed:
                waiting.append((round_id, key))
                continue
            state = self.states.get(key)
            if state is not None and state.handed is not None:
                self.partition_of[key] = state.partition  # the deletion goes to the partition holding it
                del self.states[key]
        self.handed_over = waiting

    def _behind(self, partition: int, ts: int) -> bool:
        return self.timers.horizon(partition, int(time.time() * 1000)) < ts

    def _keep(self, key: str, item: bytes, partition: int) -> str:
        """Keep a tagged message in a visitor's state until its hand-over can go."""
        state = self.states.get(key) or CustomerState()
        if state.held is None:
            state.held = []
        state.held.append(item)
        self.states[key] = state
        self._note(key, partition)
        return "held"

    def resume(self, now: int, stats: BatchStats) -> None:
        """Carry out the hand-overs whose visitor partition has caught up, then the
        anonymous events that waited behind them, in the order they came."""
        for partition, key in self.pending.due(lambda p: self.timers.horizon(p, now)):
            state = self.states.get(key)
            if state is None or not state.held:
                continue
            held, state.held = state.held, None
            self.states[key] = state
            anonymous = key[len(ANONYMOUS):].encode()
            for item in held:
                kind = b"detach" if item[:1] == DETACH else b"event"
                self._one(Message(self.topics.repartition, partition, -1, anonymous, item[1:], {m.KIND: kind}, 0),
                          stats)

    def recover_waiting(self, key: str, state: CustomerState) -> None:
        """After assignment: a visitor state holding a hand-over waits again."""
        for item in state.held or ():
            if item[:1] == DETACH:
                self.pending.wait(state.partition, key, parse_event(item[1:]).ts)
                return

    def _defer(self, event: Event, message: Incoming, stats: BatchStats) -> str:
        """Keep an anonymous-only event raw in its visitor's state; fold in the oldest
        beyond `RECENT_ANONYMOUS` (a visitor is never evaluated, so nothing is late)."""
        key = ANONYMOUS + (event.anonymous_id or "")
        state = self.states.get(key) or CustomerState()
        recent = state.recent or []
        if event.event_id in state.seen or any(event_id == event.event_id for _, event_id, _ in recent):
            stats.duplicates += 1
            return "duplicate"
        recent.append((event.ts, event.event_id, message.value))
        state.recent = recent
        self.states[key] = state
        self._note(key, message.partition, state)
        if len(recent) > RECENT_ANONYMOUS:
            oldest = min(recent, key=_time_of)
            recent.remove(oldest)
            self._fold(key, [oldest])
        stats.processed += 1
        return "applied"

    def _fold_recent(self, key: str, until: int) -> list[bytes]:
        """Fold a visitor's kept events up to `until` into its history; return the raw
        later ones, oldest first."""
        state = self.states.get(key)
        recent = (state.recent if state is not None else None) or []
        if state is not None:
            state.recent = None
            self.states[key] = state
        self._fold(key, [item for item in recent if item[0] <= until])
        return [raw for _, _, raw in sorted((item for item in recent if item[0] > until), key=_time_of)]

    def _fold(self, key: str, items: list[tuple[int, str, bytes]]) -> None:
        for _, _, raw in items:
            self.engine.apply(parse_event(raw))  # validated when it came in

    def _local(self, event: Event, message: Incoming, stats: BatchStats) -> str:
        """An event on its customer's partition: apply it, or hold it behind an identify."""
        if event.customer_id is None:
            return self._defer(event, message, stats)
        state = self.states.get(event.customer_id)
        if state is not None and state.held is not None:
            if state.held and state.held[0] == WAITS_FOR + message.value:
                # the identify it waits for, read again after a restart: its hand-over
                # request may never have reached Kafka (a second one is harmless)
                self._request_handover(message.value)
                stats.forwarded += 1
                return "forwarded"
            if event.event_id not in state.seen:
                state.held.append(message.value)
                self.states[event.customer_id] = state
                self._note(event.customer_id, message.partition)
            return "held"
        if event.type == "identify":
            return self._start_identify(event, message, stats, state)
        return self._apply(event, message, stats, None, state)

    def _start_identify(self, event: Event, message: Incoming, stats: BatchStats, state: CustomerState | None) -> str:
        """Hold the customer's later events until the visitor's history has arrived, so
        they are applied after the merge, in the order they came."""
        if state is not None and event.event_id in state.seen:
            stats.duplicates += 1
            return "duplicate"
        state = state or CustomerState()
        state.held = [WAITS_FOR + message.value]
        key = event.customer_id or ""
        self.states[key] = state
        self._note(key, message.partition)
        self._request_handover(message.value)
        stats.forwarded += 1
        return "forwarded"

    def _request_handover(self, identify: bytes) -> None:
        """Send an identify to its visitor's partition, which hands the history over."""
        anonymous = parse_event(identify).anonymous_id or ""  # validated when it came in
        self._forward(anonymous, identify, {m.KIND: b"detach"})

    def _release(self, key: str, identify: bytes, message: Incoming, stats: BatchStats) -> None:
        """The hand-over of `identify` arrived: apply the events that waited for it."""
        state = self.states.get(key)
        if state is None or state.held is None:
            return
        held = state.held
        if held and held[0][:1] == WAITS_FOR and held[0][1:] != identify:
            # a late copy of an earlier hand-over: these events wait for another. Its
            # round may have been redone after a crash, and that round may have sent the
            # request of the identify waited for now (released from `held`, so not read
            # again as input): send it again (a second one is harmless)
            self._request_handover(held[0][1:])
            stats.forwarded += 1
            return
        state.held = None
        self.states[key] = state
        # held events are this customer's, some carried here by a header alone (an
        # anonymous event of a linked visitor): they go back in with that header
        headers = {m.KIND: b"event", m.CUSTOMER: key.encode()}
        for raw in held:
            if raw[:1] == WAITS_FOR:
                continue
            replayed = Message(message.topic, message.partition, message.offset, key.encode(), raw, headers,
                               message.timestamp)
            self._one(replayed, stats)

    def _apply(self, event: Event, message: Incoming, stats: BatchStats, visitor: object,
               known: CustomerState | None = None) -> str:
        """Apply an event to its customer; `known` is the customer's state when the
        caller has it at hand (the engine changes that very object)."""
        engine = self.engine
        before = engine.duplicates
        changes = engine.apply(event, visitor=visitor)  # type: ignore[arg-type]
        if engine.duplicates != before:
            stats.duplicates += 1
            return "duplicate"
        key = event.customer_id or engine.key_of(event)
        partition = message.partition
        stats.processed += 1
        state = known if known is not None else self.states.get(key)
        self._note(key, partition, state)
        if state is not None:
            if changes:
                self._publish(key, changes, stats, message.timestamp or 0, state)
            self.timers.schedule(key, partition, state.wake)
        return "applied"

    # -- time ---------------------------------------------------------------------
    def fire(self, now: int, stats: BatchStats) -> int:
        """Fire every time-based flip due at or before `now` (wall clock, ms), and carry
        out identify hand-overs whose partition has caught up meanwhile."""
        if self.pending:
            self.resume(now, stats)
        fired = 0
        for key, partition, instant, horizon in self.timers.pop_due(now):
            waiting = self.states.get(key)
            if waiting is not None and waiting.held is not None:
                # its events wait for an identify in flight: flips must not overtake them
                self.timers.schedule(key, partition, max(instant, horizon + HELD_RECHECK_MS))
                continue
            changes = self.engine.advance(key, horizon)
            fired += 1
            self._note(key, partition)
            if changes:
                self._publish(key, changes, stats, 0)
            state = self.states.get(key)
            if state is not None:
                self.timers.schedule(key, partition, state.wake)
        return fired

    # -- output -------------------------------------------------------------------
    def _publish(self, key: str, changes: list[Change], stats: BatchStats, appended_ms: int,
                 state: CustomerState | None = None) -> None:
        state = state if state is not None else self.states.get(key)
        assert state is not None
        confirmed = self.confirmed
        outbox = [entry for entry in state.outbox if entry[0] > confirmed]
        encoded = key.encode()
        for change in changes:
            value = change.to_json()
            outbox.append((self.round, value))
            self.output.send(self.topics.changes, encoded, value)
            stats.changes += 1
            if self.on_change is not None:
                self.on_change(change, appended_ms)
        state.outbox = outbox
        self.states[key] = state

    def recover(self, key: str, state: CustomerState) -> int:
        """After assignment, for each state of the partitions taken on: a visitor holding
        a hand-over waits again; what the state still holds unconfirmed (changes in its
        outbox, a kept hand-over) is sent again. Returns how many messages were sent."""
        if state.held is not None and key.startswith(ANONYMOUS):
            self.recover_waiting(key, state)
        sent = self.republish(key, state)
        if state.handed is not None:
            sent += self._send_handed(state.handed)
            self.handed_over.append((0, key))  # dropped at the first round after the recovery's flush
        return sent

    def republish(self, key: str, state: CustomerState) -> int:
        """After recovery: send again whatever a state still holds in its outbox."""
        for _, value in state.outbox:
            self.output.send(self.topics.changes, key.encode(), value)
        return len(state.outbox)

    def _note(self, key: str, partition: int, state: CustomerState | None = None) -> None:
        """`key` was written on `partition` this round (`state`: its state, if at hand)."""
        self.partition_of[key] = partition
        if state is None and not key.startswith(ALIAS_PREFIX):
            state = self.states.get(key)
        if state is not None and state.partition != partition:
            state.partition = partition
            self.states[key] = state

    def _forward(self, key: str, value: bytes, headers: dict[str, bytes]) -> None:
        self.output.send(self.topics.repartition, key.encode(), value, headers)

    def _dead_letter(self, message: Incoming, reason: str) -> None:
        self.output.send(self.topics.dlq, message.key, message.value, {
            m.REASON: reason.encode(),
            m.SOURCE_TOPIC: message.topic.encode(),
            m.SOURCE_PARTITION: str(message.partition).encode(),
            m.SOURCE_OFFSET: str(message.offset).encode(),
        })


def _time_of(item: tuple[int, str, bytes]) -> int:
    return item[0]
