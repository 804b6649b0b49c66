"""Validated segment definitions: what the compiler and the sinks consume."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from rules.language.ast import Node

ACTION_KINDS = {"email": "smtp", "group": "redis", "pricing": "redis", "webhook": "webhook", "export": "csv"}
"""Action kind -> destination type it needs."""

ACTION_SETTINGS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "email": (frozenset({"template"}), frozenset({"template"})),
    "group": (frozenset(), frozenset({"add", "remove"})),  # {group: {}}: the segment's own name
    "pricing": (frozenset({"price_list", "discount_percent"}), frozenset({"price_list", "discount_percent"})),
    "webhook": (frozenset(), frozenset()),
    "export": (frozenset(), frozenset()),
}
"""Action kind -> (settings of which it needs at least one, every setting its sink reads),
besides `destination`; checked by `validate` so that a typo fails in CI, not in a sink."""

DESTINATION_NEEDS = {"webhook": "url", "csv": "path"}
"""Destination type -> the setting it cannot work without."""

DESTINATION_SETTINGS: dict[str, frozenset[str]] = {
    "smtp": frozenset({"host", "port", "sender", "to", "username", "password", "starttls", "ssl", "timeout",
                       "lock_seconds", "marker_days", "description"}),
    "redis": frozenset({"url", "prefix", "description"}),
    "webhook": frozenset({"url", "secret", "timeout", "headers", "description"}),
    "csv": frozenset({"path", "description"}),
}
"""Destination type -> every setting its sink reads (besides `type`; `description` is
for people, as on segments): another is a typo."""

_TEMPLATE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def is_template_name(name: str) -> bool:
    """Is `name` an email template's name, a file name in the destination's template
    folder (no path: `../` would reach files outside it, and `..` is refused anywhere)?
    One rule for `validate` and the sink that opens the file."""
    return bool(_TEMPLATE_NAME.match(name)) and ".." not in name

URL_SCHEMES = {"webhook": ("http", "https"), "redis": ("redis", "rediss", "unix")}
"""Destination type -> the URL schemes its client opens."""

NUMBER_SETTINGS = {"port": "a whole number", "lock_seconds": "a whole number", "timeout": "a number of seconds",
                   "marker_days": "a number of days"}
"""Destination settings a sink reads as numbers (or from `${VAR}`, read when the sinks start)."""


@dataclass(frozen=True)
class Origin:
    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Trait:
    name: str
    expr: Node
    origin: Origin


@dataclass(frozen=True)
class Action:
    """One `on_enter`/`on_exit` entry, e.g. `{group: {add: vip}}`."""

    kind: str
    destination: str
    params: dict[str, object]
    origin: Origin


@dataclass(frozen=True)
class Segment:
    name: str
    when: Node
    origin: Origin
    description: str = ""
    exit_when: Node | None = None
    holdout: float = 0.0  # share of customers, 0..1
    on_enter: tuple[Action, ...] = ()
    on_exit: tuple[Action, ...] = ()
    tier: str | None = None  # set for the levels of a tier
    tier_rank: int = 0
    when_line: int = 0  # line of the `when` text, for expression errors
    exit_line: int = 0


@dataclass(frozen=True)
class Destination:
    name: str
    type: str
    settings: dict[str, object]
    origin: Origin


@dataclass
class Definitions:
    """The merged, validated set. `version` identifies it in every change event."""

    traits: dict[str, Trait] = field(default_factory=dict)
    segments: dict[str, Segment] = field(default_factory=dict)
    tiers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    destinations: dict[str, Destination] = field(default_factory=dict)
    version: str = ""
    broken: set[tuple[str, str]] = field(default_factory=set)
    """(kind, name) of each trait, segment or destination left out for an error of its
    own, already reported: a condition naming it gets no second, false "unknown"."""

    def levels_above(self, segment: Segment) -> tuple[str, ...]:
        """The levels of `segment`'s tier before it (it holds only when none of them
        does: first match wins); none for a segment outside a tier."""
        return tuple(self.tiers.get(segment.tier, ())[:segment.tier_rank]) if segment.tier else ()
