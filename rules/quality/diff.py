"""Who enters and who leaves each segment when one set of memberships replaces another."""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

SAMPLES = 5


@dataclass
class SegmentDiff:
    segment: str
    status: str  # "added", "removed", "changed", "same" (definition)
    before: int = 0
    after: int = 0
    entered: int = 0
    exited: int = 0
    unchanged: int = 0
    entered_sample: list[str] = field(default_factory=list)  # first customer ids, sorted
    exited_sample: list[str] = field(default_factory=list)
    held_before: int = 0  # members in the segment's holdout (control) group
    held_after: int = 0

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def segment_diffs(before: Mapping[str, Sequence[str]], after: Mapping[str, Sequence[str]],
                  statuses: Mapping[str, str], held_before: Mapping[str, Sequence[str]] | None = None,
                  held_after: Mapping[str, Sequence[str]] | None = None) -> list[SegmentDiff]:
    """One row per segment of either set, in `statuses` order; customers in id order.
    `held_before`/`held_after`: customer -> segments whose holdout group holds them."""
    rows = {name: SegmentDiff(name, status) for name, status in statuses.items()}
    for customer in sorted(set(before) | set(after)):
        old, new = set(before.get(customer, ())), set(after.get(customer, ()))
        for name in old | new:
            row = rows[name]
            if name in old and name in new:
                row.unchanged += 1
            elif name in new:
                row.entered += 1
                if len(row.entered_sample) < SAMPLES:
                    row.entered_sample.append(customer)
            else:
                row.exited += 1
                if len(row.exited_sample) < SAMPLES:
                    row.exited_sample.append(customer)
    held = [Counter(name for segments in found.values() for name in segments)
            for found in (held_before or {}, held_after or {})]
    for row in rows.values():
        row.before, row.after = row.unchanged + row.exited, row.unchanged + row.entered
        row.held_before, row.held_after = held[0][row.segment], held[1][row.segment]
    return list(rows.values())


def customer_diffs(before: Mapping[str, Sequence[str]], after: Mapping[str, Sequence[str]],
                   held_before: Mapping[str, Sequence[str]] | None = None,
                   held_after: Mapping[str, Sequence[str]] | None = None) -> Iterator[dict[str, object]]:
    """Per customer whose segments or holdout groups differ: what they enter and exit,
    and both lists, by customer id; `holdout_before`/`holdout_after` when the holdout
    groups differ (a changed holdout share moves customers without moving members)."""
    held_before, held_after = held_before or {}, held_after or {}
    for customer in sorted(set(before) | set(after)):
        old, new = before.get(customer, []), after.get(customer, [])
        old_held, new_held = set(held_before.get(customer, ())), set(held_after.get(customer, ()))
        if set(old) != set(new) or old_held != new_held:
            line: dict[str, object] = {"customer_id": customer, "entered": sorted(set(new) - set(old)),
                                       "exited": sorted(set(old) - set(new)), "before": sorted(old),
                                       "after": sorted(new)}
            if old_held != new_held:
                line.update(holdout_before=sorted(old_held), holdout_after=sorted(new_held))
            yield line
