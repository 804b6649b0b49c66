"""Who enters and who leaves each segment when one set of memberships replaces another."""
from __future__ import annotations

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

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def segment_diffs(before: Mapping[str, Sequence[str]], after: Mapping[str, Sequence[str]],
                  statuses: Mapping[str, str]) -> list[SegmentDiff]:
    """One row per segment of either set, in `statuses` order; customers in id order."""
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
    for row in rows.values():
        row.before, row.after = row.unchanged + row.exited, row.unchanged + row.entered
    return list(rows.values())


def customer_diffs(before: Mapping[str, Sequence[str]], after: Mapping[str, Sequence[str]]) -> Iterator[dict[str, object]]:
    """Per customer whose segments differ: what they enter and exit, and both lists, by customer id."""
    for customer in sorted(set(before) | set(after)):
        old, new = before.get(customer, []), after.get(customer, [])
        if set(old) != set(new):
            yield {"customer_id": customer, "entered": sorted(set(new) - set(old)),
                   "exited": sorted(set(old) - set(new)), "before": sorted(old), "after": sorted(new)}
