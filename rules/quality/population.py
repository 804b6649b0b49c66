"""Sizes, shares and pairwise overlaps of segments, from memberships as of one instant.

Pure set arithmetic over `customer -> segments`, so it serves replayed memberships and
is easy to check by hand. Overlap is the Jaccard index |A and B| / |A or B|.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Container, Iterable, Mapping
from dataclasses import asdict, dataclass
from itertools import combinations

from rules.language.model import Definitions
from rules.quality.finding import Finding


@dataclass(frozen=True)
class SegmentSize:
    segment: str
    members: int
    share: float  # of all customers
    entered: int  # enter changes during the replay
    exited: int

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class Overlap:
    first: str
    second: str
    both: int
    either: int

    @property
    def jaccard(self) -> float:
        return self.both / self.either if self.either else 0.0

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "jaccard": round(self.jaccard, 6)}


def segment_sizes(segments: Iterable[str], memberships: Mapping[str, Iterable[str]],
                  entered: Mapping[str, int], exited: Mapping[str, int]) -> list[SegmentSize]:
    counts = Counter(segment for joined in memberships.values() for segment in joined)
    customers = len(memberships)
    return [SegmentSize(name, counts[name], counts[name] / customers if customers else 0.0,
                        entered.get(name, 0), exited.get(name, 0)) for name in segments]


def overlaps(memberships: Mapping[str, Iterable[str]]) -> list[Overlap]:
    """Every pair of segments with a member in common, largest Jaccard first."""
    sizes: Counter[str] = Counter()
    shared: Counter[tuple[str, str]] = Counter()
    for joined in memberships.values():
        names = sorted(set(joined))
        sizes.update(names)
        shared.update(combinations(names, 2))
    found = [Overlap(a, b, both, sizes[a] + sizes[b] - both) for (a, b), both in shared.items()]
    return sorted(found, key=lambda o: (-o.jaccard, o.first, o.second))


def population_findings(definitions: Definitions, sizes: list[SegmentSize], pairs: list[Overlap],
                        min_size: int, max_share: float, max_overlap: float,
                        ignored: Container[str] = ()) -> list[Finding]:
    """Too narrow, too broad, never entered, and overlapping segments. A segment never
    entered is not also called too narrow, unless `never-entered` is among `ignored`.
    A too-broad segment overlaps every other broad one (two segments of 95 % share at
    least 90 %): those overlaps are named in its too-broad warning, not one warning
    each, unless `too-broad` is among `ignored`."""
    broad = {size.segment for size in sizes if size.share > max_share} if "too-broad" not in ignored else set()
    overlapping: dict[str, list[str]] = {name: [] for name in broad}
    for pair in pairs:
        if pair.jaccard > max_overlap:
            for name, other in ((pair.first, pair.second), (pair.second, pair.first)):
                if name in broad:
                    overlapping[name].append(other)
    found: list[Finding] = []
    for size in sizes:
        segment = definitions.segments[size.segment]
        if size.entered == 0 and "never-entered" not in ignored:
            found.append(Finding("never-entered", f"segment {size.segment!r} was never entered in these events",
                                 segment.origin, size.segment))
        elif size.members < min_size:
            found.append(Finding("too-narrow", f"segment {size.segment!r} has {size.members:,} member{'s' if size.members != 1 else ''}, fewer than "
                                 f"--min-size {min_size:,}", segment.origin, size.segment))
        if size.share > max_share:
            others = overlapping.get(size.segment)
            also = (f"; so it overlaps {', '.join(map(repr, others))} by more than --max-overlap {max_overlap:.2f}"
                    if others else "")
            found.append(Finding("too-broad", f"segment {size.segment!r} holds {size.share:.1%} of customers, more "
                                 f"than --max-share {max_share:.4g} ({max_share * 100:.4g} %){also}", segment.origin,
                                 size.segment))
    for pair in pairs:
        if pair.jaccard > max_overlap and pair.first not in broad and pair.second not in broad:
            second = definitions.segments[pair.second]
            found.append(Finding("overlap", f"segments {pair.first!r} and {pair.second!r} overlap: Jaccard "
                                 f"{pair.jaccard:.2f} ({pair.both:,} of {pair.either:,} customers in both), more than "
                                 f"--max-overlap {max_overlap:.2f}", second.origin, pair.second))
    return found
