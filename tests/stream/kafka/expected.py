"""What the worker should publish, computed independently of it: the offline evaluator
(`stream.replay.replay`) over the same messages, and plain-Python views of change streams."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from rules import BadEvent, Engine, Event, parse_event
from rules.language.model import Definitions
from stream.replay import replay

ChangeId = tuple[str, str, int]  # (customer, segment, seq)


def usable(raws: Iterable[bytes]) -> list[Event]:
    """The messages the evaluator accepts, in the order given."""
    events = []
    for raw in raws:
        try:
            events.append(parse_event(raw))
        except BadEvent:
            pass
    return events


def rejected(raws: Iterable[bytes]) -> list[bytes]:
    """The messages the evaluator refuses (dead-letter material)."""
    bad = []
    for raw in raws:
        try:
            parse_event(raw)
        except BadEvent:
            bad.append(raw)
    return bad


def replayed(defs: Definitions, raws: Iterable[bytes], as_of: int | None = None) -> tuple[list[dict[str, object]], Engine]:
    """`segmenter replay` over the usable messages: event-time order (ties keep order)."""
    events = sorted(usable(raws), key=lambda e: e.ts)
    engine = Engine(defs)
    out: list[dict[str, object]] = []
    replay(engine, events, lambda change: out.append(change.to_dict()), as_of)
    return out, engine


def change_id(change: dict[str, object]) -> ChangeId:
    return (str(change["customer_id"]), str(change["segment"]), int(change["seq"]))  # type: ignore[arg-type]


def by_id(changes: Iterable[dict[str, object]]) -> dict[ChangeId, dict[str, object]]:
    """Changes by (customer, segment, seq); a second copy must be identical."""
    keyed: dict[ChangeId, dict[str, object]] = {}
    conflicts = []
    for change in changes:
        known = keyed.setdefault(change_id(change), change)
        if known != change:
            conflicts.append((known, change))
    assert not conflicts, f"one (customer, segment, seq) published with different contents: {conflicts[:3]}"
    return keyed


def diff(found: dict[ChangeId, dict[str, object]], wanted: dict[ChangeId, dict[str, object]]) -> str:
    """A short account of how two keyed change streams differ (for assertion messages)."""
    missing = sorted(set(wanted) - set(found))
    extra = sorted(set(found) - set(wanted))
    changed = sorted(k for k in set(found) & set(wanted) if found[k] != wanted[k])
    lines = [f"{len(missing)} missing, {len(extra)} unexpected, {len(changed)} different"]
    lines += [f"  missing {wanted[k]}" for k in missing[:5]]
    lines += [f"  unexpected {found[k]}" for k in extra[:5]]
    lines += [f"  got {found[k]}\n  want {wanted[k]}" for k in changed[:5]]
    return "\n".join(lines)


def at_ms(change: dict[str, object]) -> int:
    """The change's `at` as epoch milliseconds (read with the standard library)."""
    return round(datetime.fromisoformat(str(change["at"]).replace("Z", "+00:00")).timestamp() * 1000)
