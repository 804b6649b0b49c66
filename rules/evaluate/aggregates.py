"""Running aggregates over one event type: count, sum, avg, min, max, first, last, distinct.

Each aggregate keeps a small "slot" in the customer's state. All slot operations are
order-insensitive (first/last compare by (timestamp, event_id)), which is what lets
late and out-of-order events land correctly and lets identify merge two histories.
Windowed aggregates keep one slot per time bucket, under the time of its earliest
event (see `windows`).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property

from rules.evaluate import comparison, exact, windows

DISTINCT_CAP = 1000
"""distinct() keeps at most this many values per customer (memory bound)."""

Slot = object
Values = list[object]


def is_number(value: object) -> bool:
    """A JSON number (a bool is not one, though Python counts it as an int)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def values_at(properties: dict[str, object], path: tuple[str, ...], leaves: bool = True) -> Values:
    """Every non-null value at `path`; a list on the way contributes each element.
    `leaves`: only the values that are no object or list (what aggregates fold in)."""
    current: list[object] = [properties]
    for part in path:
        found: list[object] = []
        for item in current:
            if isinstance(item, list):
                for element in item:
                    if isinstance(element, dict) and element.get(part) is not None:
                        value = element[part]
                        found.extend(value) if isinstance(value, list) else found.append(value)
            elif isinstance(item, dict) and item.get(part) is not None:
                value = item[part]
                found.extend(value) if isinstance(value, list) else found.append(value)
        current = found
    return [v for v in current if v is not None and not isinstance(v, (dict, list))] if leaves else current


def _later(a: list[object] | None, b: list[object] | None) -> list[object] | None:
    if a is None:
        return b
    if b is None:
        return a
    return b if (b[0], b[1]) > (a[0], a[1]) else a  # type: ignore[operator]


def _earlier(a: list[object] | None, b: list[object] | None) -> list[object] | None:
    if a is None:
        return b
    if b is None:
        return a
    return b if (b[0], b[1]) < (a[0], a[1]) else a  # type: ignore[operator]


def _min(a: object, b: object) -> object:
    return b if a is None else a if b is None else min(a, b)  # type: ignore[type-var]


def _max(a: object, b: object) -> object:
    return b if a is None else a if b is None else max(a, b)  # type: ignore[type-var]


def _union(a: list[object] | None, b: Iterable[object]) -> list[object]:
    """The values of `a` and then the new ones of `b`; 1 and true are two values."""
    result = list(a or ())
    for value in b:
        new = value not in result if type(value) is str else not comparison.strictly_in(value, result)
        if new and len(result) < DISTINCT_CAP:
            result.append(value)
    return result


def _first_value(values: Values) -> object:
    return values[0] if len(values) == 1 else (list(values) if values else None)


# kind -> (empty slot, add(slot, ts, event_id, values), merge(a, b), value(slot))
Add = Callable[[Slot, int, str, Values], Slot]
KINDS: dict[str, tuple[Slot, Add, Callable[[Slot, Slot], Slot], Callable[[Slot], object]]] = {
    "count": (0, lambda s, ts, eid, v: s + 1, lambda a, b: a + b, lambda s: s),  # type: ignore[operator]
    "sum": (0, lambda s, ts, eid, v: exact.add_all(s, v), exact.add, lambda s: s),
    "avg": (
        None,
        lambda s, ts, eid, v: _avg_add(s, [x for x in v if is_number(x)]),
        lambda a, b: b if a is None else a if b is None else [exact.add(a[0], b[0]), a[1] + b[1]],  # type: ignore[index]
        lambda s: None if s is None else exact.mean(s[0], s[1]),  # type: ignore[index]
    ),
    "min": (None, lambda s, ts, eid, v: _fold(_min, s, v), _min, lambda s: s),
    "max": (None, lambda s, ts, eid, v: _fold(_max, s, v), _max, lambda s: s),
    "first_ts": (None, lambda s, ts, eid, v: _min(s, ts), _min, lambda s: s),
    "last_ts": (None, lambda s, ts, eid, v: _max(s, ts), _max, lambda s: s),
    "first": (None, lambda s, ts, eid, v: _earlier(s, [ts, eid, _first_value(v)]) if v else s,  # type: ignore[arg-type]
              _earlier, lambda s: None if s is None else s[2]),  # type: ignore[index]
    "last": (None, lambda s, ts, eid, v: _later(s, [ts, eid, _first_value(v)]) if v else s,  # type: ignore[arg-type]
             _later, lambda s: None if s is None else s[2]),  # type: ignore[index]
    "distinct": (None, lambda s, ts, eid, v: _union(s, v) if v else s, lambda a, b: _union(a, b or ()),  # type: ignore[arg-type]
                 lambda s: s or []),
}
NUMERIC = {"sum", "avg", "min", "max"}


def _avg_add(slot: Slot, numbers: list[object]) -> Slot:
    if not numbers:
        return slot
    total = exact.add_all(0, numbers)
    return [total, len(numbers)] if slot is None else [exact.add(slot[0], total), slot[1] + len(numbers)]  # type: ignore[index]


def _fold(pick: Callable[[object, object], object], slot: Slot, values: Values) -> Slot:
    for value in values:
        if is_number(value):
            slot = pick(slot, value)
    return slot


@dataclass(frozen=True)
class AggregateSpec:
    """One aggregate as written, e.g. `count(order_placed, within=90d)`.

    `key` names its slot in the customer state; it is derived from the text of the
    aggregate, so state survives a definitions change that keeps the aggregate.
    """

    kind: str  # a key of KINDS
    event: str
    path: tuple[str, ...]
    within: int | None
    where_text: str | None

    @cached_property
    def key(self) -> str:
        path = ".".join(self.path)
        return f"{self.kind}|{self.event}|{path}|{self.within or ''}|{self.where_text or ''}"

    @cached_property
    def width(self) -> int:
        assert self.within is not None
        return windows.bucket_width(self.within)


def spec_kind(function: str, has_path: bool) -> str:
    if function in ("first", "last") and not has_path:
        return f"{function}_ts"
    return function


def add(spec: AggregateSpec, slots: dict[str, Slot], ts: int, event_id: str, values: Values, now: int) -> None:
    """Fold one event into the spec's slot (or its bucket)."""
    empty, add_one, _, _ = KINDS[spec.kind]
    if spec.within is None:
        slots[spec.key] = add_one(slots.get(spec.key, empty), ts, event_id, values)
        return
    buckets: dict[int, Slot] = slots.get(spec.key) or {}  # type: ignore[assignment]
    windows.fold_in(buckets, ts, spec.width, now - spec.within, lambda slot: add_one(slot, ts, event_id, values),
                    empty)
    if buckets:
        slots[spec.key] = buckets


Update = Callable[[dict[str, Slot], int, str, dict[str, object], int], None]


def make_update(spec: AggregateSpec, where: Callable[[object], object] | None) -> Update:
    """A specialised `add` for one aggregate: filter, extract values, fold in.

    Built once per definitions version; the common shapes (unwindowed counts, and sums,
    maxima and minima of one property, without a filter) avoid every lookup the general
    path makes.
    """
    key, path, kind = spec.key, spec.path, spec.kind
    _, add_one, _, _ = KINDS[kind]
    if spec.within is None and where is None and kind == "count":
        def count(slots: dict[str, Slot], ts: int, event_id: str, props: dict[str, object], now: int) -> None:
            slots[key] = slots.get(key, 0) + 1  # type: ignore[operator]
        return count
    if spec.within is None and where is None and kind == "sum" and len(path) == 1:
        name = path[0]

        def total(slots: dict[str, Slot], ts: int, event_id: str, props: dict[str, object], now: int) -> None:
            value = props.get(name)
            if type(value) is int or type(value) is float:
                slots[key] = exact.add(slots.get(key, 0), value)  # type: ignore[arg-type]
            elif value is not None:
                slots[key] = add_one(slots.get(key, 0), ts, event_id, values_at(props, path))

        return total

    if spec.within is None and where is None and kind in ("max", "min") and len(path) == 1:
        name, pick = path[0], (max if kind == "max" else min)

        def extreme(slots: dict[str, Slot], ts: int, event_id: str, props: dict[str, object], now: int) -> None:
            value = props.get(name)
            if type(value) is int or type(value) is float:
                found = slots.get(key)
                slots[key] = value if found is None else pick(found, value)  # as `_max`/`_min`
            elif value is not None:
                slots[key] = add_one(slots.get(key), ts, event_id, values_at(props, path))

        return extreme
    if spec.within is not None and where is None and kind == "count":
        return _window_count(key, spec.width, spec.within)
    if spec.within is None and where is None and kind == "last_ts":
        def latest(slots: dict[str, Slot], ts: int, event_id: str, props: dict[str, object], now: int) -> None:
            found = slots.get(key)
            if found is None or ts > found:  # type: ignore[operator]
                slots[key] = ts

        return latest

    def general(slots: dict[str, Slot], ts: int, event_id: str, props: dict[str, object], now: int) -> None:
        if where is not None and where(props) is not True:
            return
        add(spec, slots, ts, event_id, values_at(props, path) if path else [], now)

    return general


def _window_count(key: str, width: int, within: int) -> Update:
    """`count(type, within=D)`, the commonest window: one integer per bucket. An event
    in the latest bucket (most events) is counted here, without a call; any other goes
    through `windows.fold_in`."""
    def window_count(slots: dict[str, Slot], ts: int, event_id: str, props: dict[str, object], now: int) -> None:
        buckets: dict[int, int] | None = slots.get(key)  # type: ignore[assignment]
        if buckets:
            for last in reversed(buckets):
                break
            if 0 <= last - (ts - ts % width) < width and last > now - within:  # the latest, which counts
                if ts < last:
                    buckets[ts] = buckets.pop(last) + 1
                else:
                    buckets[last] += 1
                return
        else:
            buckets = slots[key] = {}
        windows.fold_in(buckets, ts, width, now - within, _one_more, 0)  # type: ignore[arg-type]
        if not buckets:
            del slots[key]

    return window_count


def _one_more(count: int) -> int:
    return count + 1


def value(spec: AggregateSpec, slots: dict[str, Slot], now: int) -> object:
    """The aggregate's value as of `now`."""
    empty, _, merge, finish = KINDS[spec.kind]
    if spec.within is None:
        return finish(slots.get(spec.key, empty))
    buckets: dict[int, Slot] | None = slots.get(spec.key)  # type: ignore[assignment]
    slot = empty
    if buckets and spec.kind == "count":
        return windows.window_total(buckets, now - spec.within)  # type: ignore[arg-type]
    if buckets:
        floor = now - spec.within
        for first in sorted(buckets):  # in time order, the order distinct() lists its values in
            if first > floor:
                slot = merge(slot, buckets[first])
    return finish(slot)


def merge_slots(spec: AggregateSpec, into: dict[str, Slot], other: dict[str, Slot]) -> None:
    """Merge another history's slot for `spec` into `into` (identify)."""
    if spec.key not in other:
        return
    _, _, merge, _ = KINDS[spec.kind]
    if spec.within is None:
        empty = KINDS[spec.kind][0]
        into[spec.key] = merge(into.get(spec.key, empty), other[spec.key])
        return
    buckets: dict[int, Slot] = dict(into.get(spec.key) or {})  # type: ignore[arg-type]
    for first, bucket in other[spec.key].items():  # type: ignore[attr-defined]
        windows.merge_bucket(buckets, first, bucket, spec.width, merge)
    into[spec.key] = dict(sorted(buckets.items()))  # in time order, as `windows.fold_in` keeps them
