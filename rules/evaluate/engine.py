"""The evaluator: events and clock ticks in, membership changes out.

One engine serves replay, tests and the streaming worker. It is given the mapping
that holds customer states (a dict here, a write-back cache over a Faust table in the
worker) and it always assigns a state back after changing it.
"""
from __future__ import annotations

from collections.abc import MutableMapping

from rules.evaluate import aggregates
from rules.evaluate.changes import Change
from rules.evaluate.events import Event
from rules.evaluate.explain import Explainer
from rules.evaluate.holdout import in_holdout
from rules.evaluate.plan import Plan, compile_plan
from rules.evaluate.program import Program, compile_program
from rules.evaluate.state import RECENT_EVENT_IDS, CustomerState
from rules.language.model import Definitions
from rules.timeutil import timestamp_or_none

ANONYMOUS = "anon:"
"""State key prefix of visitors known only by `anonymous_id`."""


DEFAULTED = -1
"""The profile stamp of a defaulted `created_at` at time t is DEFAULTED - t: below
every event's time (so any given value wins) and higher for earlier defaults."""

SPECIAL_TYPES = frozenset({"identify", "customer_created", "customer_updated"})
"""Event types with a step of their own: the merge of a visitor, the profile."""

MAX_PLANS = 4096
"""Evaluation plans kept per engine (one per set of segments an evaluation asked for)."""

MAX_STEPS = 1024
"""Event types whose step is kept (the others are worked out again on each event)."""

Step = tuple[tuple[aggregates.Update, ...], Plan | None]
_UNKNOWN = object()


class Engine:
    def __init__(
        self,
        definitions: Definitions,
        states: MutableMapping[str, CustomerState] | None = None,
        aliases: MutableMapping[str, str] | None = None,
    ) -> None:
        self.definitions = definitions
        self.program: Program = compile_program(definitions)
        self.states: MutableMapping[str, CustomerState] = states if states is not None else {}
        self.aliases: MutableMapping[str, str] = aliases if aliases is not None else {}
        self.duplicates = 0
        self._explainer: Explainer | None = None
        self._plans: dict[tuple[int, ...], Plan] = {}
        self._steps: dict[str, Step | None] = {}  # see `_step`
        self._timer_plans: dict[tuple[str, ...], Plan | None] = {}  # see `_timer_plan`

    # -- events -----------------------------------------------------------------
    def key_of(self, event: Event) -> str:
        if event.customer_id is not None:
            return event.customer_id
        anonymous = event.anonymous_id or ""
        return self.aliases.get(anonymous) or ANONYMOUS + anonymous

    def apply(self, event: Event, now: int | None = None, visitor: CustomerState | None = None) -> list[Change]:
        """Apply one event and return the membership changes it causes.

        The clock is the event's own time (or `now` if given), but never earlier than
        the customer's last evaluation: live and replay then see the same instants.
        For `identify`, `visitor` is the anonymous history detached elsewhere (see
        `detach_visitor`); without it the engine detaches it from its own states.
        """
        # The common case in few steps: a known customer's new event, in time, under the
        # current definitions, with no flip due, of a type that is not special.
        key = event.customer_id
        if key is not None and now is None and visitor is None:
            state = self.states.get(key)
            if state is not None:
                ts, event_id, seen, wake = event.ts, event.event_id, state.seen, state.wake
                step = self._steps.get(event.type, _UNKNOWN)
                if step is _UNKNOWN:
                    step = self._step(event.type)
                if (step is not None and event_id not in seen and ts >= state.clock and (wake is None or wake > ts)
                        and state.version == self.program.version):
                    seen[event_id] = None
                    if len(seen) > RECENT_EVENT_IDS:
                        del seen[next(iter(seen))]
                    updates, plan = step
                    if updates:
                        slots, properties = state.slots, event.properties
                        for update in updates:
                            update(slots, ts, event_id, properties, ts)
                    changes = [] if plan is None else plan(key, state, ts, ts, event_id)
                    self.states[key] = state
                    return changes
        return self._apply(event, now, visitor)

    def _step(self, kind: str) -> Step | None:
        """What an event of type `kind` does to a known customer: its aggregate updates
        and the plan of the segments it can affect; None for the types with a step of
        their own (`SPECIAL_TYPES`)."""
        step = None
        if kind not in SPECIAL_TYPES:
            step = (self.program.update_functions.get(kind, ()), self._plan(self.program.affected.get(kind, ())))
        if len(self._steps) < MAX_STEPS:  # bounded: a stream may carry any number of type names
            self._steps[kind] = step
        return step

    def _apply(self, event: Event, now: int | None, visitor: CustomerState | None) -> list[Change]:
        key = event.customer_id
        if key is None:
            key = self.key_of(event)
        state = self.states.get(key)
        created = state is None
        if state is None:
            state = CustomerState()
        elif event.event_id in state.seen:
            self.duplicates += 1
            return []
        now = event.ts if now is None else now
        if now < state.clock:
            now = state.clock
        anonymous = event.customer_id is None and key.startswith(ANONYMOUS)
        if anonymous or state.wake is None or state.wake >= now:
            changes = []
        else:
            changes = self._catch_up(key, state, now, inclusive=False)
        seen = state.seen
        seen[event.event_id] = None
        if len(seen) > RECENT_EVENT_IDS:
            del seen[next(iter(seen))]
        program = self.program
        kind = event.type
        if kind in ("customer_created", "customer_updated"):
            self._profile(state, event)
        updates = program.update_functions.get(kind)
        if updates:
            slots, ts, event_id, properties = state.slots, event.ts, event.event_id, event.properties
            for update in updates:
                update(slots, ts, event_id, properties, now)
        if anonymous:  # no evaluation, but the clock moves: events delivered newest first
            state.clock = now  # then drop what can never count, and a visitor's windows stay bounded
            self.states[key] = state
            return changes
        if kind == "identify":
            if visitor is None:
                visitor = self.detach_visitor(event.anonymous_id or "", event.customer_id or "")
            if visitor is not None:
                self._merge_visitor(state, visitor)
                seen.pop(event.event_id, None)  # the visitor's ids may have pushed it out of the ring:
                state.remember(event.event_id)  # it must stay, or a redelivered identify merges again
        if kind == "identify" or (state.version != program.version and not created):
            plan = self._plan(program.all_segments())
        elif created:
            plan = self._plan(program.first_event(kind))
        elif state.wake is not None and state.wake <= now:
            # flips due at this very instant are part of this event's evaluation
            due = {program.by_name[n].index for n, at in state.flips.items() if at <= now and n in program.by_name}
            plan = self._plan(program.closure(due | set(program.affected.get(kind, ()))))
        else:  # the segments this type of event can affect
            plan = self._plan(program.affected.get(kind, ()))
        if plan is not None:
            if changes:
                changes.extend(plan(key, state, now, event.ts, event.event_id))
            else:
                changes = plan(key, state, now, event.ts, event.event_id)
        self.states[key] = state
        return changes

    def _profile(self, state: CustomerState, event: Event) -> None:
        """Set the profile attributes of a profile event. `created_at` not given in a
        `customer_created` defaults to its time, but a default never replaces a value
        given by an event, whatever their times, and of several defaults the earliest
        stays (an account is created once; a repeated `customer_created` must not make
        a two-year customer new): its stamp is below every real one (`DEFAULTED`)."""
        properties = dict(event.properties)
        created_at = properties.get("created_at")
        if isinstance(created_at, str):  # read once here; text that is no time stays as it came
            parsed = timestamp_or_none(created_at)
            if parsed is not None:
                properties["created_at"] = parsed
        defaulted = event.type == "customer_created" and created_at is None
        if defaulted:
            properties.pop("created_at", None)
        if properties:
            state.set_profile(properties, event.ts)
        if defaulted:
            state.set_profile({"created_at": event.ts}, DEFAULTED - event.ts)

    def detach_visitor(self, anonymous_id: str, customer_id: str) -> CustomerState | None:
        """Link `anonymous_id` to `customer_id` (the first link wins) and hand over the
        visitor's history, removing it here. Returns None when already linked or empty."""
        if anonymous_id in self.aliases:
            return None
        self.aliases[anonymous_id] = customer_id
        return self.states.pop(ANONYMOUS + anonymous_id, None)

    def _merge_visitor(self, state: CustomerState, visitor: CustomerState) -> None:
        for spec in self.program.specs.values():
            aggregates.merge_slots(spec, state.slots, visitor.slots)
        for name, ts in visitor.profile_ts.items():
            state.set_profile({name: visitor.profile[name]}, ts)
        for event_id in visitor.seen:
            state.remember(event_id)

    # -- time -------------------------------------------------------------------
    def wake_at(self, key: str) -> int | None:
        state = self.states.get(key)
        return None if state is None else state.wake

    def advance(self, key: str, now: int) -> list[Change]:
        """Fire every time-based flip of `key` due at or before `now`."""
        state = self.states.get(key)
        if state is None or state.wake is None or state.wake > now:
            return []
        changes = self._catch_up(key, state, now, inclusive=True)
        self.states[key] = state
        return changes

    def _catch_up(self, key: str, state: CustomerState, now: int, inclusive: bool) -> list[Change]:
        changes: list[Change] = []
        while state.wake is not None and (state.wake <= now if inclusive else state.wake < now):
            instant = state.wake
            names = []
            for name, at in state.flips.items():
                if at <= instant:
                    names.append(name)
            due = tuple(names)
            plan = self._timer_plans.get(due, _UNKNOWN)
            if plan is _UNKNOWN:
                plan = self._timer_plan(due)
            if plan is None:  # flips of segments that no longer exist
                index = self.program.by_name
                state.flips = {n: at for n, at in state.flips.items() if n in index}
                state.wake = min(state.flips.values(), default=None)
                continue
            changes.extend(plan(key, state, instant, instant, "timer"))
        return changes

    def _timer_plan(self, due: tuple[str, ...]) -> Plan | None:
        """The plan for segments whose flips fell due (by name, in the order the state
        lists them) and every segment that reads them; None when none of them exists.
        Kept by those names: a customer's flips come due in few combinations, and
        working out the dependents again on every wake-up was most of a catch-up."""
        index = self.program.by_name
        targets = self.program.closure({index[name].index for name in due if name in index})
        plan = self._plan(targets) if targets else None
        if len(self._timer_plans) >= MAX_PLANS:
            self._timer_plans.clear()  # bounded, like the plans themselves
        self._timer_plans[due] = plan
        return plan

    # -- membership ---------------------------------------------------------------
    def _plan(self, targets: tuple[int, ...]) -> Plan | None:
        """The compiled plan for `targets` (None when there is nothing to evaluate)."""
        plan = self._plans.get(targets)
        if plan is None and targets:
            if len(self._plans) >= MAX_PLANS:
                self._plans.clear()  # bounded; the sets in use are compiled again
            plan = self._plans[targets] = compile_plan(self.program, targets)
        return plan

    # -- reading ------------------------------------------------------------------
    def memberships(self, key: str) -> tuple[list[str], list[str]]:
        """(segments, holdout segments) of a customer, both sorted."""
        state = self.states.get(key)
        if state is None:
            return [], []
        segments = state.memberships()
        holdout = [s for s in segments if s in self.program.by_name
                   and in_holdout(key, s, self.program.by_name[s].holdout)]
        return segments, holdout

    def explain(self, key: str, now: int) -> dict[str, object] | None:
        """Segments, traits and the value of every condition part, as of `now`."""
        state = self.states.get(key)
        if state is None:
            return None
        if self._explainer is None:
            assert self.program.compiler is not None
            self._explainer = Explainer(self.definitions, self.program.compiler)
        segments, holdout = self.memberships(key)
        details = self._explainer.explain(state, now, set(holdout), anonymous=key.startswith(ANONYMOUS))
        return {"customer_id": key, "segments": segments, "holdout": holdout, **details}

    def customers(self) -> list[str]:
        return sorted(k for k in self.states if not k.startswith(ANONYMOUS))
