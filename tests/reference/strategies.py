"""Hypothesis strategies: random definitions (as reference expression trees) and random
event streams shaped to hit the edges: equal timestamps, gaps of exactly a duration used
in the definitions (and one millisecond either side), bucket-aligned instants,
duplicates, anonymous visitors with identify, profile events and dirty property values.

Definitions only use forms whose time-based flips lie on the reference's probe
instants: since(x) OP D, now - x OP D, count/sum/max(..., within=D) OP number, and
and/or/not combinations of those with time-free atoms.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from hypothesis import strategies as st

from reference_model import (
    DAY,
    HOUR,
    Agg,
    And,
    Arith,
    Cmp,
    Coalesce,
    Dur,
    Expr,
    In,
    InSegment,
    IsNull,
    Lit,
    Model,
    Not,
    Now,
    Or,
    Profile,
    PropPath,
    SegmentDef,
    Since,
    TierDef,
    TraitRef,
    duration_ms,
    rfc3339,
)
from rules.evaluate.windows import bucket_width

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z: aligned to every bucket width
DURATION_POOL = ["2h", "12h", "1d", "3d", "7d", "2w", "30d", "45d", "90d"]
THRESHOLDS = {
    "count": [0, 1, 2, 3, 5],
    "money": [0, 50, 100, 250, 500, 1000, 1500],
    "qty": [1, 2, 4, 8],
    "price": [2.5, 10, 25],
}
OPS = [">", ">=", "<", "<=", "==", "!="]


# -- definitions ------------------------------------------------------------------------


def _where(draw: st.DrawFn, event: str) -> Expr | None:
    if event == "order_placed":
        options: list[Expr] = [
            Cmp("==", PropPath(("backordered",)), Lit(True)),
            Cmp("!=", PropPath(("backordered",)), Lit(True)),
            Not(PropPath(("backordered",))),
            Cmp(">=", PropPath(("total",)), Lit(100)),
            Cmp("==", PropPath(("currency",)), Lit("EUR")),
            In(PropPath(("currency",)), Lit(["EUR", "USD"])),
            In(PropPath(("currency",)), Lit(["EUR", None]), True),  # not found beside a null: unknown
            # paths through the items: one item satisfying the comparison is enough
            Cmp("==", PropPath(("items", "category")), Lit("hair")),
            Cmp("!=", PropPath(("items", "category")), Lit("hair")),
            Cmp(">", PropPath(("items", "price")), Lit(20)),
            Cmp("==", PropPath(("items", "quantity")), Lit(1)),  # quantities include true and "2"
            In(PropPath(("items", "category")), Lit(["hair", "nails"])),
            Cmp(">=", Coalesce((PropPath(("total",)), Lit(0))), Lit(100)),  # an order without a total counts as 0
        ]
    elif event == "order_refunded":
        options = [Cmp(">", PropPath(("amount",)), Lit(20))]
    elif event == "page_view":  # a type whose properties only a filter reads
        options = [Cmp("==", PropPath(("url",)), Lit("/sale"))]
    else:
        return None
    return draw(st.none() | st.sampled_from(options))


def _within(draw: st.DrawFn, durations: list[str]) -> Dur | None:
    return draw(st.none() | st.sampled_from(durations).map(Dur))


def numeric_quantity(draw: st.DrawFn, durations: list[str], traits: dict[str, tuple[Expr, str]]) -> tuple[Expr, str]:
    """A number-valued expression and its kind (which thresholds make sense)."""
    choice = draw(st.integers(0, 13))
    w = lambda: _within(draw, durations)  # noqa: E731
    if choice == 0:
        return Agg("count", "order_placed", (), _where(draw, "order_placed"), w()), "count"
    if choice == 1:
        return Agg("sum", "order_placed", ("total",), _where(draw, "order_placed"), w()), "money"
    if choice == 2:
        return Agg("sum", "order_refunded", ("amount",), _where(draw, "order_refunded"), w()), "money"
    if choice == 3:
        return Agg(draw(st.sampled_from(["max", "min"])), "order_placed", ("total",), None, w()), "money"
    if choice == 4:
        return Agg("avg", "order_placed", ("total",), _where(draw, "order_placed"), w()), "money"
    if choice == 5:
        return Agg("min", "order_placed", ("items", "price")), "price"
    if choice == 6:
        return Agg("sum", "order_placed", ("items", "quantity"), None, w()), "qty"
    if choice == 7:
        kind = draw(st.sampled_from(["page_view", "added_to_cart", "order_refunded"]))
        return Agg("count", kind, (), _where(draw, kind), w()), "count"
    if choice == 8:
        return Arith("-", Agg("sum", "order_placed", ("total",)), Agg("sum", "order_refunded", ("amount",))), "money"
    if choice == 9:
        return Coalesce((Agg("max", "order_placed", ("total",), None, w()), Lit(0))), "money"
    if choice == 10:
        return Agg(draw(st.sampled_from(["first", "last"])), "order_placed", ("total",), None, w()), "money"
    if choice == 11:  # decimal arithmetic: cents add up as written
        return Arith("+", Agg("sum", "order_placed", ("total",)), Agg("sum", "order_refunded", ("amount",))), "money"
    if choice == 12:
        factor = Lit(draw(st.sampled_from([0.1, 1.1, 3, 0.25])))
        return Arith(draw(st.sampled_from(["*", "/"])), Agg("sum", "order_placed", ("total",), None, w()), factor), "money"
    numeric = [(n, k) for n, (e, k) in traits.items() if k != "duration"]
    if numeric:
        name, kind = draw(st.sampled_from(numeric))
        return TraitRef(name, traits[name][0]), kind
    return Agg("count", "order_placed"), "count"


def time_quantity(draw: st.DrawFn, durations: list[str], traits: dict[str, tuple[Expr, str]]) -> Expr:
    """A duration-valued expression that grows with the clock."""
    choice = draw(st.integers(0, 9))
    if choice == 7:  # a duration scaled: its flips move at another speed than the clock
        return Arith(draw(st.sampled_from(["*", "/"])), Since(Agg("last", "added_to_cart")),
                     Lit(draw(st.sampled_from([2, 0.5, 1.5]))))
    if choice == 8:  # shifted by a duration
        return Arith("+", Since(Agg("last", "added_to_cart")), Dur(draw(st.sampled_from(durations))))
    if choice == 9:  # falling as the clock runs: flips the other way
        return Arith("-", Dur(draw(st.sampled_from(durations))), Since(Agg("last", "order_placed")))
    if choice == 0:
        return Since(Agg("last", "order_placed"))
    if choice == 1:
        return Since(Agg("first", "order_placed"))
    if choice == 2:
        return Since(Agg("last", "added_to_cart"))
    if choice == 3:
        return Since(Agg("last", "page_view", (), None, Dur(draw(st.sampled_from(durations)))))
    if choice == 4:
        return Since(Profile("created_at"))
    if choice == 5:
        return Arith("-", Now(), Agg("first", "order_placed", (), _where(draw, "order_placed")))
    timed = [n for n, (e, k) in traits.items() if k == "duration"]
    if timed:
        name = draw(st.sampled_from(timed))
        return TraitRef(name, traits[name][0])
    return Since(Profile("created_at"))


def atom(draw: st.DrawFn, durations: list[str], traits: dict[str, tuple[Expr, str]]) -> Expr:
    choice = draw(st.integers(0, 9))
    if choice <= 3:
        quantity, kind = numeric_quantity(draw, durations, traits)
        return Cmp(draw(st.sampled_from(OPS)), quantity, Lit(draw(st.sampled_from(THRESHOLDS[kind]))))
    if choice <= 6:
        return Cmp(draw(st.sampled_from(OPS)), time_quantity(draw, durations, traits),
                   Dur(draw(st.sampled_from(durations))))
    if choice == 7:
        path, values = draw(st.sampled_from([(("items", "category"), ["hair", "skin", "nails"]),
                                             (("currency",), ["EUR", "USD"])]))
        return In(Lit(draw(st.sampled_from(values))),
                  Agg("distinct", "order_placed", path, None, _within(draw, durations)), draw(st.booleans()))
    if choice == 8:
        return draw(st.sampled_from([
            Cmp("==", Profile("country"), Lit("US")),
            In(Profile("country"), Lit(["US", "CA"])),
            IsNull(Profile("plan")),
            Cmp("==", Profile("plan"), Lit("pro")),
        ]))
    return draw(st.sampled_from([
        IsNull(Agg("last", "order_placed")),
        IsNull(Agg("max", "order_placed", ("total",), None, Dur(durations[0])), True),
        Cmp("<", Agg("last", "order_placed"), Agg("last", "added_to_cart")),
        Or((IsNull(Agg("last", "order_placed")), Cmp("<", Agg("last", "order_placed"), Agg("last", "added_to_cart")))),
    ]))


def condition(draw: st.DrawFn, durations: list[str], traits: dict[str, tuple[Expr, str]], depth: int = 2) -> Expr:
    kind = draw(st.sampled_from(["atom", "atom", "and", "or", "not"])) if depth > 0 else "atom"
    if kind == "atom":
        return atom(draw, durations, traits)
    if kind == "not":
        return Not(condition(draw, durations, traits, depth - 1))
    items = tuple(condition(draw, durations, traits, depth - 1) for _ in range(draw(st.integers(2, 3))))
    return And(items) if kind == "and" else Or(items)


def _hysteresis(draw: st.DrawFn, durations: list[str], traits: dict[str, tuple[Expr, str]]) -> tuple[Expr, Expr]:
    """when / exit_when over one quantity, with exit_when implying not when."""
    if draw(st.booleans()):
        quantity, kind = numeric_quantity(draw, durations, traits)
        values = THRESHOLDS[kind]
        make = Lit
    else:
        quantity, kind = time_quantity(draw, durations, traits), "duration"
        values = sorted(durations, key=duration_ms)
        make = Dur  # type: ignore[assignment]
    key = (lambda v: duration_ms(v)) if kind == "duration" else (lambda v: v)
    high = draw(st.sampled_from(values))
    if draw(st.booleans()):  # enter above, leave below a lower (or equal) mark
        low = draw(st.sampled_from([v for v in values if key(v) <= key(high)]))
        when: Expr = Cmp(draw(st.sampled_from([">", ">="])), quantity, make(high))
        exit_when: Expr = Cmp("<", quantity, make(low)) if key(low) < key(high) or when.op == ">=" else Cmp("<=", quantity, make(low))  # type: ignore[attr-defined]
    else:  # enter below, leave above a higher (or equal) mark
        low = draw(st.sampled_from([v for v in values if key(v) >= key(high)]))
        when = Cmp(draw(st.sampled_from(["<", "<="])), quantity, make(high))
        exit_when = Cmp(">", quantity, make(low)) if key(low) > key(high) or when.op == "<=" else Cmp(">=", quantity, make(low))  # type: ignore[attr-defined]
    if draw(st.booleans()):
        when = And((when, condition(draw, durations, traits, 1)))
    return when, exit_when


@st.composite
def models(draw: st.DrawFn, hysteresis: bool = True) -> Model:
    durations = draw(st.lists(st.sampled_from(DURATION_POOL), min_size=1, max_size=3, unique=True))
    traits: dict[str, tuple[Expr, str]] = {}
    for i in range(draw(st.integers(0, 3))):
        if draw(st.integers(0, 2)) == 0:
            traits[f"tr{i}"] = (time_quantity(draw, durations, traits), "duration")
        else:
            traits[f"tr{i}"] = numeric_quantity(draw, durations, traits)
    model = Model(traits={name: expr for name, (expr, _) in traits.items()})
    names: list[str] = []
    for i in range(draw(st.integers(1, 5))):
        kinds = ["plain", "plain", "tier"] + (["hysteresis", "hysteresis"] if hysteresis else []) + (["dependent", "dependent"] if names else [])
        kind = draw(st.sampled_from(kinds))
        holdout = draw(st.sampled_from([None, None, None, "50%", "10%"]))
        if kind == "plain":
            model.units.append(SegmentDef(f"s{i}", condition(draw, durations, traits), None, holdout))
            names.append(f"s{i}")
        elif kind == "hysteresis":
            when, exit_when = _hysteresis(draw, durations, traits)
            model.units.append(SegmentDef(f"s{i}", when, exit_when, holdout))
            names.append(f"s{i}")
        elif kind == "dependent":
            other: Expr = InSegment(draw(st.sampled_from(names)))
            if draw(st.booleans()):
                other = Not(other)
            rest = condition(draw, durations, traits, 1)
            when = And((other, rest)) if draw(st.booleans()) else Or((other, rest))
            model.units.append(SegmentDef(f"s{i}", when, None, holdout))
            names.append(f"s{i}")
        else:
            levels: list[tuple[str, Expr]] = []
            count = draw(st.integers(2, 3))
            if draw(st.booleans()):  # thresholds over one quantity, highest first
                quantity, kind_ = numeric_quantity(draw, durations, traits)
                marks = sorted(draw(st.lists(st.sampled_from(THRESHOLDS[kind_]), min_size=count, max_size=count, unique=True)), reverse=True) \
                    if len(THRESHOLDS[kind_]) >= count else THRESHOLDS[kind_][:count]
                levels = [(f"t{i}_{j}", Cmp(">", quantity, Lit(mark))) for j, mark in enumerate(marks)]
            else:
                levels = [(f"t{i}_{j}", condition(draw, durations, traits, 1)) for j in range(count)]
            if draw(st.booleans()):
                levels[-1] = (levels[-1][0], Lit(True))
            model.units.append(TierDef(f"t{i}", levels))
            names.extend(name for name, _ in levels)
    return model


# -- events ----------------------------------------------------------------------------


@dataclass
class Draft:
    event_id: str
    type: str
    ts: int
    customer_id: str | None = None
    anonymous_id: str | None = None
    properties: dict = field(default_factory=dict)
    offset: int | None = None  # minutes: write the timestamp as RFC 3339 with this offset

    def raw(self) -> dict:
        data: dict[str, object] = {"event_id": self.event_id, "type": self.type,
                                   "timestamp": self.ts if self.offset is None else rfc3339(self.ts, self.offset)}
        if self.customer_id is not None:
            data["customer_id"] = self.customer_id
        if self.anonymous_id is not None:
            data["anonymous_id"] = self.anonymous_id
        if self.properties:
            data["properties"] = self.properties
        return data


def _money(draw: st.DrawFn, top: int) -> float | int:
    """Whole amounts or cents: most cents have no exact binary value, so a float running
    total would depend on the order the amounts are added in."""
    cents = draw(st.integers(0, top * 100))
    return cents // 100 if cents % 100 == 0 else cents / 100


def _properties(draw: st.DrawFn, kind: str, ts: int) -> dict:
    if kind == "order_placed":
        props: dict[str, object] = {}
        total = draw(st.sampled_from(["n"] * 12 + ["missing", "bool", "text"]))
        if total == "n":
            props["total"] = _money(draw, 1500)
        elif total == "bool":
            props["total"] = True
        elif total == "text":
            props["total"] = "12"
        currency = draw(st.sampled_from(["EUR", "USD", None]))
        if currency is not None:
            props["currency"] = currency
        props["items"] = [
            {"sku": f"sku-{draw(st.integers(1, 5))}", "category": draw(st.sampled_from(["hair", "skin", "nails"])),
             "quantity": draw(st.sampled_from([1, 1, 2, 2, 3, 3, 1, 2, 3, True, "2"])), "price": _money(draw, 40)}
            for _ in range(draw(st.integers(0, 3)))
        ]
        backordered = draw(st.sampled_from([True, False, None]))
        if backordered is not None:
            props["backordered"] = backordered
        return props
    if kind == "order_refunded":
        return {"amount": _money(draw, 600)}
    if kind == "customer_created":
        props = {"country": draw(st.sampled_from(["US", "CA", "DE"]))}
        created = draw(st.sampled_from(["default", "default", "int", "text", "date"]))
        moment = ts - draw(st.integers(0, 400)) * DAY - draw(st.integers(0, DAY))
        if created == "int":
            props["created_at"] = moment
        elif created == "text":
            props["created_at"] = rfc3339(moment, draw(st.sampled_from([0, 120, -330])))
        elif created == "date":  # a date alone: midnight UTC
            props["created_at"] = rfc3339(moment)[:10]
        return props
    if kind == "customer_updated":
        props = {}
        if draw(st.booleans()):
            props["country"] = draw(st.sampled_from(["US", "CA", "DE"]))
        if draw(st.booleans()):
            props["plan"] = draw(st.sampled_from(["pro", "free", None]))
        if draw(st.integers(0, 9)) == 0:
            props["created_at"] = ts - draw(st.integers(0, 100)) * DAY
        return props
    if kind == "page_view":
        url = draw(st.sampled_from(["/", "/sale", None]))
        return {} if url is None else {"url": url}
    return {}


CUSTOMER_KINDS = (["order_placed"] * 7 + ["order_refunded"] * 2 + ["added_to_cart"] * 3 + ["page_view"] * 4
                  + ["customer_created"] * 2 + ["customer_updated"] * 2)
VISITOR_KINDS = ["page_view", "page_view", "added_to_cart", "order_placed", "customer_updated"]


def _next_ts(draw: st.DrawFn, previous: list[int], durations: list[int], widths: list[int]) -> int:
    last = previous[-1]
    how = draw(st.integers(0, 8))
    if how == 0:
        return last  # same instant
    if how in (1, 2):  # exactly a duration after an earlier event (or one ms either side)
        return draw(st.sampled_from(previous)) + draw(st.sampled_from(durations)) + draw(st.sampled_from([0, 0, 0, -1, 1]))
    if how == 3:  # the next bucket boundary
        width = draw(st.sampled_from(widths))
        return last - last % width + width
    if how == 4:
        return last + draw(st.integers(1, 6 * HOUR))
    return last + draw(st.integers(1, 12 * DAY))


@dataclass
class Scenario:
    model: Model
    events: list[dict]  # arrival order
    as_of: int
    extra_probes: list[int]

    def __repr__(self) -> str:
        lines = ["Scenario(", "--- definitions.yaml ---", self.model.to_yaml().rstrip(), "--- events (arrival order) ---"]
        lines += [json.dumps(e, sort_keys=True) for e in self.events]
        lines += [f"--- as_of={self.as_of} extra_probes={self.extra_probes}", ")"]
        return "\n".join(lines)

    def _repr_pretty_(self, printer: object, cycle: bool) -> None:  # how hypothesis prints examples
        printer.text(repr(self))  # type: ignore[attr-defined]


@st.composite
def scenarios(draw: st.DrawFn, hysteresis: bool = True, one_identify_per_visitor: bool = False,
              max_events: int = 30) -> Scenario:
    model = draw(models(hysteresis=hysteresis))
    durations = sorted(model.durations()) or [DAY]
    widths = sorted({bucket_width(w) for w in model.windows()} | {HOUR, DAY})
    customers = [f"c{i}" for i in range(1, draw(st.integers(1, 4)) + 1)]
    drafts: list[Draft] = []
    stamps: list[int] = []

    def stamp() -> int:
        if not stamps or draw(st.integers(0, 9)) == 0:
            ts = T0 + draw(st.integers(0, 120)) * DAY + draw(st.sampled_from([0, 0, draw(st.integers(0, DAY - 1))]))
        else:
            ts = _next_ts(draw, stamps, durations, widths)
        stamps.append(ts)
        return ts

    for customer in customers:
        stamps.clear()
        for k in range(draw(st.integers(1, max_events))):
            kind = draw(st.sampled_from(CUSTOMER_KINDS))
            ts = stamp()
            drafts.append(Draft(f"e{k}", kind, ts, customer, None, _properties(draw, kind, ts)))
    identifies = 0
    for v in range(draw(st.integers(0, 3))):
        visitor = f"v{v}"
        stamps.clear()
        for k in range(draw(st.integers(0, 10))):
            kind = draw(st.sampled_from(VISITOR_KINDS))
            ts = stamp()
            drafts.append(Draft(f"{visitor}-{k}", kind, ts, None, visitor, _properties(draw, kind, ts)))
        for _ in range(draw(st.sampled_from([0, 1, 1] if one_identify_per_visitor else [0, 1, 1, 2, 2, 3]))):
            ts = draw(st.sampled_from(stamps)) + draw(st.sampled_from([0, 1, -1, HOUR])) if stamps and draw(st.booleans()) else stamp()
            drafts.append(Draft(f"i{identifies}", "identify", ts, draw(st.sampled_from(customers)), visitor))
            identifies += 1
    # Profile attributes are "newest wins"; keep profile timestamps distinct so that the
    # winner never depends on an unspecified tie-break.
    profile = sorted((d for d in drafts if d.type in ("customer_created", "customer_updated")), key=lambda d: d.ts)
    for before, after in zip(profile, profile[1:]):
        if after.ts <= before.ts:
            after.ts = before.ts + 1
    for draft in drafts:
        if draw(st.integers(0, 7)) == 0:
            draft.offset = draw(st.sampled_from([0, 60, -300, 330]))
    raws = [d.raw() for d in drafts]
    order = draw(st.permutations(range(len(raws))))
    events = [raws[i] for i in order]
    for _ in range(draw(st.integers(0, 4))):  # producer retries: the same message again
        copy = dict(draw(st.sampled_from(events)))
        events.insert(draw(st.integers(0, len(events))), copy)
    last = max(d.ts for d in drafts)
    as_of = last + draw(st.sampled_from([0, 0, 1, HOUR]) | st.sampled_from(durations) | st.integers(0, 120 * DAY))
    extra = draw(st.lists(st.integers(T0, as_of), max_size=4))
    return Scenario(model, events, as_of, extra)
