"""An independent, brute-force model of segment evaluation (SPEC sections 2-4).

Nothing here is incremental: every evaluation recomputes every aggregate from the
customer's full applied history, and time-based changes between events are found by
probing candidate instants rather than by solving for them. The only thing taken from
the product is `bucket_width`, the documented bucketing parameter of `within=` windows.

Definitions are built as small expression trees (`Expr`) that can both render the
definition text the product parses (`text()`) and evaluate themselves (`ev()`), so the
reference never goes through the product's parser or compiler.
"""
from __future__ import annotations

import math
import operator
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from fractions import Fraction

import yaml

from rules.evaluate.windows import bucket_width

SECOND = 1_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
WEEK = 7 * DAY
YEAR = 365 * DAY
UNITS = {"s": SECOND, "m": MINUTE, "h": HOUR, "d": DAY, "w": WEEK, "y": YEAR}
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
ANON = "anon:"
PROFILE_TYPES = ("customer_created", "customer_updated")


def duration_ms(text: str) -> int:
    return int(text[:-1]) * UNITS[text[-1]]


def parse_ts(value: object) -> int | None:
    """RFC 3339 with offset, or integer epoch ms -> epoch ms; anything else -> None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
        if moment.tzinfo is None:
            return None
        delta = moment - EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
    return None


def profile_ts(value: object) -> int | None:
    """A profile attribute read as an instant: as `parse_ts`, and a date alone
    (YYYY-MM-DD) is midnight UTC of that day."""
    if isinstance(value, str) and len(value) == 10 and value[4] == value[7] == "-":
        try:
            day = date.fromisoformat(value)
        except ValueError:
            return None
        return (day - EPOCH.date()).days * 86_400_000
    return parse_ts(value)


def rfc3339(ms: int, offset_minutes: int = 0) -> str:
    moment = (EPOCH + timedelta(milliseconds=ms)).astimezone(timezone(timedelta(minutes=offset_minutes)))
    return moment.isoformat(timespec="milliseconds")


def is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def truth(value: object) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    return bool(value)


def holds(value: object) -> bool:
    """A condition that is null counts as false."""
    return truth(value) is True


def values_at(properties: object, path: Sequence[str]) -> list[object]:
    """Every non-null scalar at `path`; a list met on the way contributes every element."""
    current: list[object] = [properties]
    for part in path:
        found: list[object] = []
        for item in current:
            if isinstance(item, dict):
                value = item.get(part)
                if isinstance(value, list):
                    found.extend(value)
                elif value is not None:
                    found.append(value)
        current = found
    return [v for v in current if v is not None and not isinstance(v, (dict, list))]


# -- events --------------------------------------------------------------------------


@dataclass(frozen=True)
class Rec:
    event_id: str
    type: str
    ts: int
    customer_id: str | None
    anonymous_id: str | None
    props: dict


def rec_of(raw: dict) -> Rec:
    ts = parse_ts(raw["timestamp"])
    assert ts is not None
    return Rec(raw["event_id"], raw["type"], ts, raw.get("customer_id"), raw.get("anonymous_id"),
               raw.get("properties") or {})


# -- expressions -----------------------------------------------------------------------


class Env:
    """One customer at one instant: history by type, profile, clock, memberships."""

    def __init__(self, now: int, history: Iterable[Rec], profile: dict, traits: dict[str, Expr]) -> None:
        self.now = now
        self.by_type: dict[str, list[Rec]] = defaultdict(list)
        for rec in history:
            self.by_type[rec.type].append(rec)
        self.profile = profile
        self.traits = traits
        self.members: dict[str, bool] = {}
        self.cache: dict[str, object] = {}


class Expr:
    def text(self) -> str:
        raise NotImplementedError

    def ev(self, env: object) -> object:
        raise NotImplementedError

    def kids(self) -> tuple[Expr, ...]:
        return ()

    def durations(self) -> set[int]:
        found: set[int] = set()
        for kid in self.kids():
            found |= kid.durations()
        return found

    def windows(self) -> set[int]:
        found: set[int] = set()
        for kid in self.kids():
            found |= kid.windows()
        return found

    def __repr__(self) -> str:
        return self.text()


@dataclass(repr=False)
class Lit(Expr):
    value: object

    def text(self) -> str:
        v = self.value
        if v is True:
            return "true"
        if v is False:
            return "false"
        if v is None:
            return "null"
        if isinstance(v, str):
            return '"' + v + '"'
        if isinstance(v, list):
            return "[" + ", ".join(Lit(x).text() for x in v) + "]"
        return repr(v)

    def ev(self, env: object) -> object:
        return self.value


@dataclass(repr=False)
class Dur(Expr):
    spelled: str  # e.g. "90d"

    @property
    def ms(self) -> int:
        return duration_ms(self.spelled)

    def text(self) -> str:
        return self.spelled

    def ev(self, env: object) -> object:
        return self.ms

    def durations(self) -> set[int]:
        return {self.ms}


@dataclass(repr=False)
class Now(Expr):
    def text(self) -> str:
        return "now"

    def ev(self, env: Env) -> object:  # type: ignore[override]
        return env.now


@dataclass(repr=False)
class Profile(Expr):
    name: str

    def text(self) -> str:
        return f"profile.{self.name}"

    def ev(self, env: Env) -> object:  # type: ignore[override]
        return env.profile.get(self.name)


@dataclass(repr=False)
class TraitRef(Expr):
    name: str
    expr: Expr

    def text(self) -> str:
        return self.name

    def ev(self, env: Env) -> object:  # type: ignore[override]
        if self.name not in env.cache:
            env.cache[self.name] = self.expr.ev(env)
        return env.cache[self.name]

    def kids(self) -> tuple[Expr, ...]:
        return (self.expr,)


@dataclass(repr=False)
class Agg(Expr):
    fn: str  # count sum avg min max first last distinct
    event: str
    path: tuple[str, ...] = ()
    where: Expr | None = None  # evaluated on the event's properties
    within: Dur | None = None

    def text(self) -> str:
        target = ".".join((self.event,) + self.path)
        extra = ""
        if self.where is not None:
            extra += f", where={self.where.text()}"
        if self.within is not None:
            extra += f", within={self.within.text()}"
        return f"{self.fn}({target}{extra})"

    def windows(self) -> set[int]:
        return {self.within.ms} if self.within is not None else set()

    def durations(self) -> set[int]:
        return self.windows()

    def events(self, env: Env) -> list[Rec]:
        found = env.by_type.get(self.event, [])
        if self.where is not None:
            found = [r for r in found if holds(self.where.ev(r.props))]
        if self.within is not None:
            window = self.within.ms
            width = bucket_width(window)
            # A UTC-aligned bucket counts while its earliest event (of those it folds in:
            # this aggregate's type and filter, up to now) is inside the window.
            found = [r for r in found if r.ts <= env.now]
            earliest: dict[int, int] = {}
            for r in found:
                start = r.ts - r.ts % width
                earliest[start] = min(earliest.get(start, r.ts), r.ts)
            found = [r for r in found if earliest[r.ts - r.ts % width] > env.now - window]
        return found

    def ev(self, env: Env) -> object:  # type: ignore[override]
        found = self.events(env)
        fn = self.fn
        if fn == "count":
            return len(found)
        if fn in ("first", "last") and not self.path:
            stamps = [r.ts for r in found]
            if not stamps:
                return None
            return min(stamps) if fn == "first" else max(stamps)
        per_event = [(r, values_at(r.props, self.path)) for r in found]
        numbers = [v for _, values in per_event for v in values if is_number(v)]
        if fn in ("sum", "avg"):  # exact: each number as the decimal it was written as
            total = sum(Fraction(repr(v)) if type(v) is float else Fraction(v) for v in numbers)
            if fn == "avg":
                return float(total / len(numbers)) if numbers else None
            return float(total) if any(type(v) is float for v in numbers) else int(total)
        if fn == "min":
            return min(numbers) if numbers else None
        if fn == "max":
            return max(numbers) if numbers else None
        if fn == "distinct":
            kept: list[object] = []
            for value in (v for _, values in per_event for v in values):
                if not any(same(value, k) for k in kept):
                    kept.append(value)
            return kept
        if fn in ("first", "last"):
            candidates = [(r.ts, r.event_id, values) for r, values in per_event if values]
            if not candidates:
                return None
            chosen = (max if fn == "last" else min)(candidates, key=lambda c: (c[0], c[1]))[2]
            return chosen[0] if len(chosen) == 1 else list(chosen)
        raise AssertionError(fn)


@dataclass(repr=False)
class PropPath(Expr):
    """A bare name inside where=: a property of the event."""

    path: tuple[str, ...]

    def text(self) -> str:
        return ".".join(self.path)

    def ev(self, props: dict) -> object:  # type: ignore[override]
        current: object = props
        for index, part in enumerate(self.path):
            if isinstance(current, list):  # a path through a list: every value under it
                return values_at({"_": current}, ("_",) + self.path[index:])
            if not isinstance(current, dict):
                return None
            current = current.get(part)
        return current


@dataclass(repr=False)
class Since(Expr):
    arg: Expr

    def text(self) -> str:
        return f"since({self.arg.text()})"

    def ev(self, env: Env) -> object:  # type: ignore[override]
        moment = self.arg.ev(env)
        moment = profile_ts(moment) if isinstance(moment, (str, int)) else moment
        if not is_number(moment):
            return None
        return env.now - moment  # type: ignore[operator]

    def kids(self) -> tuple[Expr, ...]:
        return (self.arg,)


@dataclass(repr=False)
class Coalesce(Expr):
    args: tuple[Expr, ...]

    def text(self) -> str:
        return "coalesce(" + ", ".join(a.text() for a in self.args) + ")"

    def ev(self, env: object) -> object:
        for arg in self.args:
            value = arg.ev(env)
            if value is not None:
                return value
        return None

    def kids(self) -> tuple[Expr, ...]:
        return self.args


COMPARE = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
           ">": operator.gt, ">=": operator.ge}
ARITH = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}


def arith(op: str, a: object, b: object) -> object:
    """Arithmetic as a person does it on the numbers as written: with a float among
    two finite, non-zero numbers, on the fractions their shortest decimals stand
    for, rounded to a float once; Python's own operator otherwise."""
    numbers = all(type(v) is int or type(v) is float for v in (a, b))
    if not numbers or (type(a) is int and type(b) is int) or not a or not b or not (
            math.isfinite(a) and math.isfinite(b)):  # type: ignore[arg-type]
        return ARITH[op](a, b)
    exact = ARITH[op](Fraction(repr(a)), Fraction(repr(b)))
    try:
        return float(exact)
    except OverflowError:
        return math.inf if exact > 0 else -math.inf


def same(a: object, b: object) -> bool:
    """JSON equality: a bool is never a number."""
    return isinstance(a, bool) == isinstance(b, bool) and a == b


def compare_one(op: str, a: object, b: object) -> bool | None:
    """Two single values: null is unknown, a bool has no order against a number, text
    that is an RFC 3339 time compares as the instant (against a number or another time)."""
    if a is None or b is None:
        return None
    if isinstance(a, bool) != isinstance(b, bool):
        return {"==": False, "!=": True}.get(op)
    if isinstance(a, str) and isinstance(b, str) and a[4:5] == b[4:5] == "-" and a[7:8] == b[7:8] == "-":
        if profile_ts(a) is not None and profile_ts(b) is not None:
            a, b = profile_ts(a), profile_ts(b)
    elif isinstance(a, str) and is_number(b):
        a = profile_ts(a)
    elif isinstance(b, str) and is_number(a):
        b = profile_ts(b)
    if a is None or b is None:
        return None
    try:
        return COMPARE[op](a, b)
    except TypeError:
        return None


def compare_values(op: str, a: object, b: object) -> bool | None:
    """Several values on one side (a path through a list): true when one of them
    satisfies the comparison; `!=` is the negation of `==` (none of them equals)."""
    if op == "!=":
        equal = compare_values("==", a, b)
        return None if equal is None else not equal
    if a is None or b is None:
        return None
    several_a, several_b = isinstance(a, list), isinstance(b, list)
    lefts = a if several_a and not several_b else [a]
    rights = b if several_b and not several_a else [b]
    outcomes = [compare_one(op, x, y) for x in lefts for y in rights]  # type: ignore[union-attr]
    return True if True in outcomes else (None if None in outcomes else False)


def member(needle: object, haystack: object) -> bool | None:
    """`in`: a substring of text; else one of the values, where a null among them makes
    a value not found unknown (SQL); several needles: one of them."""
    if needle is None or haystack is None:
        return None
    if isinstance(haystack, str):
        return needle in haystack if isinstance(needle, str) else None
    if isinstance(needle, list):
        outcomes = [member(n, haystack) for n in needle]
        return True if True in outcomes else (None if None in outcomes else False)
    if not isinstance(haystack, (list, set, frozenset, tuple)):
        return None
    if any(same(needle, item) for item in haystack):
        return True
    return None if any(item is None for item in haystack) else False


@dataclass(repr=False)
class Cmp(Expr):
    op: str
    left: Expr
    right: Expr

    def text(self) -> str:
        return f"{self.left.text()} {self.op} {self.right.text()}"

    def ev(self, env: object) -> object:
        return compare_values(self.op, self.left.ev(env), self.right.ev(env))

    def kids(self) -> tuple[Expr, ...]:
        return (self.left, self.right)


@dataclass(repr=False)
class Arith(Expr):
    op: str
    left: Expr
    right: Expr

    def text(self) -> str:
        return f"({self.left.text()} {self.op} {self.right.text()})"

    def ev(self, env: object) -> object:
        a, b = self.left.ev(env), self.right.ev(env)
        if a is None or b is None:
            return None
        try:
            return arith(self.op, a, b)
        except ZeroDivisionError:
            return None
        except TypeError:  # a time kept as text counts as its instant
            a, b = (profile_ts(v) if isinstance(v, str) else v for v in (a, b))
            try:
                return None if a is None or b is None else arith(self.op, a, b)
            except (TypeError, ZeroDivisionError):
                return None

    def kids(self) -> tuple[Expr, ...]:
        return (self.left, self.right)


@dataclass(repr=False)
class In(Expr):
    needle: Expr
    haystack: Expr
    negated: bool = False

    def text(self) -> str:
        return f"{self.needle.text()} {'not in' if self.negated else 'in'} {self.haystack.text()}"

    def ev(self, env: object) -> object:
        found = member(self.needle.ev(env), self.haystack.ev(env))
        return None if found is None else found != self.negated

    def kids(self) -> tuple[Expr, ...]:
        return (self.needle, self.haystack)


@dataclass(repr=False)
class IsNull(Expr):
    operand: Expr
    negated: bool = False

    def text(self) -> str:
        return f"{self.operand.text()} is {'not ' if self.negated else ''}null"

    def ev(self, env: object) -> object:
        value = self.operand.ev(env)
        return (value is not None) if self.negated else (value is None)

    def kids(self) -> tuple[Expr, ...]:
        return (self.operand,)


@dataclass(repr=False)
class And(Expr):
    items: tuple[Expr, ...]

    def text(self) -> str:
        return " and ".join(f"({i.text()})" for i in self.items)

    def ev(self, env: object) -> object:
        values = [truth(i.ev(env)) for i in self.items]
        if False in values:
            return False
        return None if None in values else True

    def kids(self) -> tuple[Expr, ...]:
        return self.items


@dataclass(repr=False)
class Or(Expr):
    items: tuple[Expr, ...]

    def text(self) -> str:
        return " or ".join(f"({i.text()})" for i in self.items)

    def ev(self, env: object) -> object:
        values = [truth(i.ev(env)) for i in self.items]
        if True in values:
            return True
        return None if None in values else False

    def kids(self) -> tuple[Expr, ...]:
        return self.items


@dataclass(repr=False)
class Not(Expr):
    item: Expr

    def text(self) -> str:
        return f"not ({self.item.text()})"

    def ev(self, env: object) -> object:
        value = truth(self.item.ev(env))
        return None if value is None else not value

    def kids(self) -> tuple[Expr, ...]:
        return (self.item,)


@dataclass(repr=False)
class InSegment(Expr):
    name: str

    def text(self) -> str:
        return f'in_segment("{self.name}")'

    def ev(self, env: Env) -> object:  # type: ignore[override]
        assert self.name in env.members, f"in_segment({self.name}) read before it was evaluated"
        return env.members[self.name]


# -- definitions ------------------------------------------------------------------------


@dataclass
class SegmentDef:
    name: str
    when: Expr
    exit_when: Expr | None = None
    holdout: str | None = None  # e.g. "50%"

    def exprs(self) -> list[Expr]:
        return [self.when] + ([self.exit_when] if self.exit_when is not None else [])


@dataclass
class TierDef:
    name: str
    levels: list[tuple[str, Expr]]

    def exprs(self) -> list[Expr]:
        return [when for _, when in self.levels]


@dataclass
class Model:
    traits: dict[str, Expr] = field(default_factory=dict)
    units: list[SegmentDef | TierDef] = field(default_factory=list)

    def to_yaml(self) -> str:
        data: dict[str, object] = {}
        if self.traits:
            data["traits"] = {name: expr.text() for name, expr in self.traits.items()}
        segments: dict[str, object] = {}
        tiers: dict[str, object] = {}
        for unit in self.units:
            if isinstance(unit, SegmentDef):
                body: dict[str, object] = {"when": unit.when.text()}
                if unit.exit_when is not None:
                    body["exit_when"] = unit.exit_when.text()
                if unit.holdout is not None:
                    body["holdout"] = unit.holdout
                segments[unit.name] = body
            else:
                tiers[unit.name] = [{"name": name, "when": when.text()} for name, when in unit.levels]
        if segments:
            data["segments"] = segments
        if tiers:
            data["tiers"] = tiers
        return yaml.safe_dump(data, sort_keys=False, width=10_000)

    def segment_names(self) -> list[str]:
        names: list[str] = []
        for unit in self.units:
            names.extend([unit.name] if isinstance(unit, SegmentDef) else [n for n, _ in unit.levels])
        return names

    def all_exprs(self) -> list[Expr]:
        found = list(self.traits.values())
        for unit in self.units:
            found.extend(unit.exprs())
        return found

    def durations(self) -> set[int]:
        """Every duration written, each scaled by every factor a value is multiplied or
        divided by (`since(t) * 2 > 2h` flips 1h after t), and their sums and differences."""
        found: set[int] = set()
        for expr in self.all_exprs():
            found |= expr.durations()
        factors: set[float] = set()
        offsets: set[int] = set()
        pending = self.all_exprs()
        while pending:
            expr = pending.pop()
            pending.extend(expr.kids())
            if isinstance(expr, Arith) and expr.op in "*/":
                factors |= {side.value for side in (expr.left, expr.right)  # type: ignore[misc]
                            if isinstance(side, Lit) and is_number(side.value) and side.value}
            if isinstance(expr, Arith) and expr.op in "+-":
                offsets |= {side.ms for side in (expr.left, expr.right) if isinstance(side, Dur)}
        for duration in list(found):
            for factor in factors:
                for scaled in (duration / factor, duration * factor):
                    found |= {math.floor(scaled), math.ceil(scaled)}
        # shifted by the durations added or taken in arithmetic (`2h - since(t) >= 1h` flips 1h after t)
        return found | {abs(d + sign * o) for d in found for o in offsets for sign in (1, -1)}

    def windows(self) -> set[int]:
        found: set[int] = set()
        for expr in self.all_exprs():
            found |= expr.windows()
        return found

    def used_traits(self) -> set[str]:
        """Traits that some segment reads, directly or through other traits."""
        found: set[str] = set()

        def walk(expr: Expr) -> None:
            if isinstance(expr, TraitRef) and expr.name not in found:
                found.add(expr.name)
            for kid in expr.kids():
                walk(kid)

        for unit in self.units:
            for expr in unit.exprs():
                walk(expr)
        return found

    def has_hysteresis(self) -> bool:
        return any(isinstance(u, SegmentDef) and u.exit_when is not None for u in self.units)

    def step(self, env: Env, previous: dict[str, bool]) -> dict[str, bool]:
        """Memberships after one evaluation, in definition order (in_segment reads earlier ones)."""
        new: dict[str, bool] = {}
        env.members = new
        for unit in self.units:
            if isinstance(unit, SegmentDef):
                was = previous.get(unit.name, False)
                if was and unit.exit_when is not None:
                    new[unit.name] = not holds(unit.exit_when.ev(env))
                else:
                    new[unit.name] = holds(unit.when.ev(env))
            else:
                chosen = next((name for name, when in unit.levels if holds(when.ev(env))), None)
                for name, _ in unit.levels:
                    new[name] = name == chosen
        return new

    def trait_values(self, env: Env) -> dict[str, object]:
        return {name: TraitRef(name, expr).ev(env) for name, expr in self.traits.items()}


def profile_of(history: Iterable[Rec]) -> dict[str, object]:
    """Per attribute, the value of the newest profile event (ties: the later applied);
    `created_at` given by no event is the time of the earliest `customer_created`."""
    profile: dict[str, object] = {}
    stamps: dict[str, int] = {}
    created: list[int] = []
    for rec in history:
        if rec.type not in PROFILE_TYPES:
            continue
        properties = dict(rec.props)
        if rec.type == "customer_created" and properties.get("created_at") is None:
            properties.pop("created_at", None)
            created.append(rec.ts)
        for name, value in properties.items():
            if name not in stamps or rec.ts >= stamps[name]:
                profile[name] = value
                stamps[name] = rec.ts
    if "created_at" not in stamps and created:
        profile["created_at"] = min(created)
    return profile


# -- simulation ------------------------------------------------------------------------


@dataclass
class RefResult:
    changes: dict[tuple[str, str], list[tuple[int, str, int, str]]]  # (customer, segment) -> (seq, change, at, cause)
    memberships: dict[str, list[str]]  # customer -> sorted segments at as_of
    customers: list[str]
    histories: dict[str, list[Rec]]  # customer -> applied events counted for it at the end
    evaluations: int = 0


class Reference:
    """Replays sorted events exactly as SPEC describes, recomputing everything each time."""

    def __init__(self, model: Model, extra_probes: Iterable[int] = ()) -> None:
        self.model = model
        self.extra = sorted(set(extra_probes))
        self.durations = sorted(model.durations())
        self.windows = sorted(model.windows())
        self.names = model.segment_names()

    def run(self, events: Sequence[Rec], as_of: int) -> RefResult:
        alias: dict[str, str] = {}
        applied: list[Rec] = []
        applied_keys: set[tuple[str, str]] = set()
        members: dict[str, dict[str, bool]] = {}
        seqs: dict[tuple[str, str], int] = defaultdict(int)
        changes: dict[tuple[str, str], list[tuple[int, str, int, str]]] = defaultdict(list)
        last_event: dict[str, int] = {}
        known: list[str] = []
        counter = [0]

        def owner(rec: Rec) -> str:
            if rec.customer_id is not None:
                return rec.customer_id
            assert rec.anonymous_id is not None
            return alias.get(rec.anonymous_id) or ANON + rec.anonymous_id

        def history(customer: str) -> list[Rec]:
            return [r for r in applied if owner(r) == customer]

        def evaluate(customer: str, now: int, cause: str, hist: list[Rec]) -> None:
            counter[0] += 1
            env = Env(now, hist, profile_of(hist), self.model.traits)
            previous = members.get(customer, {})
            new = self.model.step(env, previous)
            for name in self.names:
                if new[name] != previous.get(name, False):
                    seqs[(customer, name)] += 1
                    changes[(customer, name)].append(
                        (seqs[(customer, name)], "enter" if new[name] else "exit", now, cause))
            members[customer] = new

        def run_timers(customer: str, until: int, inclusive: bool) -> None:
            hist = history(customer)
            for instant in self.probes(hist, last_event[customer], until, inclusive):
                evaluate(customer, instant, "timer", hist)

        for rec in events:
            if rec.ts > as_of:
                break
            key = owner(rec)
            if (key, rec.event_id) in applied_keys:
                continue  # a repeated event_id for the same customer is applied once
            is_customer = not key.startswith(ANON)
            if is_customer and key in last_event:
                run_timers(key, rec.ts, inclusive=False)  # flips strictly before this event
            applied_keys.add((key, rec.event_id))
            applied.append(rec)
            if rec.type == "identify" and rec.anonymous_id is not None and rec.anonymous_id not in alias:
                alias[rec.anonymous_id] = key  # the first identify of an anonymous id wins
                visitor = ANON + rec.anonymous_id
                applied_keys |= {(key, eid) for k, eid in applied_keys if k == visitor}
            if not is_customer:
                continue  # anonymous visitors never have memberships
            if key not in last_event:
                known.append(key)
            evaluate(key, rec.ts, rec.event_id, history(key))
            last_event[key] = rec.ts
        for customer in known:
            run_timers(customer, as_of, inclusive=True)
        return RefResult(
            changes=dict(changes),
            memberships={c: sorted(n for n, m in members.get(c, {}).items() if m) for c in known},
            customers=sorted(known),
            histories={c: history(c) for c in known},
            evaluations=counter[0],
        )

    def probes(self, hist: list[Rec], after: int, until: int, inclusive: bool) -> list[int]:
        """Candidate instants in (after, until) (or (after, until]) at which a flip may lie."""
        instants = {r.ts for r in hist}
        for rec in hist:
            if rec.type in PROFILE_TYPES:
                for value in rec.props.values():
                    if isinstance(value, (int, str)) and not isinstance(value, bool):
                        moment = profile_ts(value)
                        if moment is not None:
                            instants.add(moment)
        candidates: set[int] = set(self.extra)
        for moment in instants:
            for duration in self.durations:
                for delta in (-1, 0, 1):
                    candidates.add(moment + duration + delta)
        for window in self.windows:  # a bucket leaves when its earliest event does
            for rec in hist:
                candidates.add(rec.ts + window)
        return sorted(c for c in candidates if after < c and (c <= until if inclusive else c < until))

    def final_state(self, events: Sequence[Rec], now: int) -> tuple[dict[str, list[str]], dict[str, dict[str, object]]]:
        """Order-free view: every event applied (duplicates once), evaluated once at `now`.

        Only meaningful for definitions without hysteresis (memberships then do not
        depend on the path).
        """
        assert not self.model.has_hysteresis()
        alias: dict[str, str] = {}
        for rec in events:
            if rec.type == "identify" and rec.anonymous_id is not None:
                alias.setdefault(rec.anonymous_id, rec.customer_id)  # type: ignore[arg-type]

        def owner(rec: Rec) -> str:
            if rec.customer_id is not None:
                return rec.customer_id
            return alias.get(rec.anonymous_id or "") or ANON + (rec.anonymous_id or "")

        histories: dict[str, list[Rec]] = defaultdict(list)
        seen: set[tuple[str, str]] = set()
        for rec in events:
            key = owner(rec)
            if (key, rec.event_id) in seen:
                continue
            seen.add((key, rec.event_id))
            histories[key].append(rec)
        memberships: dict[str, list[str]] = {}
        traits: dict[str, dict[str, object]] = {}
        for customer, hist in histories.items():
            if customer.startswith(ANON):
                continue
            hist = [r for r in hist if r.ts <= now]
            env = Env(now, hist, profile_of(hist), self.model.traits)
            new = self.model.step(env, {})
            memberships[customer] = sorted(n for n, m in new.items() if m)
            traits[customer] = self.model.trait_values(env)
        return memberships, traits
