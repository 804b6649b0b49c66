"""Deterministic synthetic traffic of an online beauty shop.

Why this exists: tests, the benchmark, ``segmenter replay`` examples and the live demo all
need event streams that look like a real shop's (customers who sign up, browse, fill and
abandon carts, order, get refunds, open newsletters, return from a new device and go
quiet) and that are identical on every run, so a failing test or a benchmark number can
be reproduced. Everything is driven by one ``random.Random(seed)``: the same
`TrafficConfig` always yields the same bytes.

The stream also carries the dirt a real topic carries, each at a configurable rate:
unusable messages (for the dead-letter path), producer retries that re-send an earlier
message byte for byte, and events that arrive late (up to an hour out of order).

How it stays fast and small: every visitor's timeline is a lazy generator that builds one
visit at a time; a priority queue merges the generators in timestamp order, and a
visitor's generator is only created when its first event is due. Memory grows with the
number of visitors active at the same time, not with the length of the stream (about
180 MB for 100,000 customers), and a million events take about ten seconds.

Use it as a library (`generate`, `key_of`, `write_jsonl`) or from the command line::

    python -m examples.traffic --customers 1000 --days 400 --out events.jsonl.gz
"""
from __future__ import annotations

import argparse
import gzip
import heapq
import itertools
import re
import sys
import time
from bisect import bisect_right
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from random import Random
from typing import BinaryIO, Iterator, Sequence

import orjson

__all__ = ["TrafficConfig", "generate", "generate_events", "key_of", "main", "write_jsonl"]

SECOND = 1_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
YEAR = 365 * DAY
_INF = float("inf")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

MEMBERSHIP_SKU = "MEMBERSHIP-ANNUAL"
"""The SKU of the paid annual membership (the `membership_pricing` example segment)."""

CATEGORIES = ("hair", "skin", "makeup", "fragrance", "tools")
"""Product categories of the simulated shop; the membership is in its own category."""


@dataclass
class TrafficConfig:
    """What to simulate.

    Over the default 400 days a shop yields about 16 events per customer, anonymous
    visitors included: 1,000 customers give ~16,500 events, 100,000 customers ~1.6
    million. For a stream of an exact length, take the first N events (``--limit`` or
    ``itertools.islice``); the stream is in time order, so that is a shorter period.
    """

    customers: int = 1000
    """Registered customers who appear in the stream (each gets a ``customer_created``)."""
    days: float = 400.0
    """Length of the simulated period, starting at ``start``."""
    seed: int = 7
    """Everything random derives from this; same config, same bytes."""
    start: datetime = field(default_factory=lambda: datetime(2025, 1, 1, tzinfo=timezone.utc))
    """First instant of the period (timezone-aware; naive values are taken as UTC)."""
    bad_event_rate: float = 0.001
    """Share of extra messages that are unusable per the product contract (section 2) (dead-letter material)."""
    anonymous_share: float = 0.2
    """Share of visitors who arrive anonymous: ``customers * anonymous_share`` extra
    visitors browse and never sign up, and this share of new customers browse
    anonymously before they sign up and are linked by an ``identify`` event."""
    duplicate_rate: float = 0.002
    """Chance, per event, that the producer re-sends a recent message byte for byte."""
    late_rate: float = 0.01
    """Chance, per event, that it arrives late: after events up to an hour newer."""


# --------------------------------------------------------------------------- catalog

# category -> (sku prefix, product lines, (product type, lowest price, highest price) ...)
_CATALOG_SPEC: dict[str, tuple[str, tuple[str, ...], tuple[tuple[str, int, int], ...]]] = {
    "hair": ("HAIR", ("Argan Repair", "Volume Boost", "Curl Define", "Scalp Detox", "Colour Protect",
                      "Silk Smooth"),
             (("Shampoo", 8, 28), ("Conditioner", 9, 30), ("Hair Mask", 14, 42), ("Hair Oil", 16, 48),
              ("Leave-In Spray", 12, 32), ("Dry Shampoo", 7, 22))),
    "skin": ("SKIN", ("Hydra", "Vitamin C", "Retinol", "Ceramide", "Green Tea", "Hyaluronic"),
             (("Serum", 24, 95), ("Day Cream", 19, 75), ("Night Cream", 22, 85), ("Cleanser", 9, 32),
              ("Toner", 10, 35), ("Eye Cream", 21, 70))),
    "makeup": ("MAKE", ("Velvet", "Nude", "Glow", "Matte", "Luminous"),
               (("Foundation", 16, 52), ("Mascara", 9, 32), ("Lipstick", 8, 36), ("Concealer", 10, 34),
                ("Blush", 9, 30), ("Eyeshadow Palette", 19, 65))),
    "fragrance": ("FRAG", ("Noir", "Fleur", "Citrus", "Amber", "Ocean"),
                  (("Eau de Parfum 50 ml", 55, 165), ("Eau de Toilette 100 ml", 39, 120),
                   ("Body Mist", 14, 35))),
    "tools": ("TOOL", ("Pro", "Ionic", "Travel", "Ceramic"),
              (("Hair Dryer", 59, 329), ("Straightener", 45, 249), ("Curling Wand", 39, 189),
               ("Paddle Brush", 12, 39), ("Makeup Brush Set", 19, 89))),
}


@dataclass(frozen=True, slots=True)
class _Product:
    sku: str
    category: str
    cents: int
    view: dict[str, object]  # properties of product_viewed, shared (never mutated)
    url: str


def _build_catalog(rng: Random) -> dict[str, list[_Product]]:
    catalog: dict[str, list[_Product]] = {}
    for category, (prefix, lines, types) in _CATALOG_SPEC.items():
        products: list[_Product] = []
        for line in lines:
            for kind, low, high in types:
                sku = f"{prefix}-{len(products) + 1:04d}"
                cents = rng.randint(low, high) * 100 - (1 if rng.random() < 0.8 else 0)
                name = f"{line} {kind}"
                view = {"sku": sku, "category": category, "price": cents / 100, "name": name}
                products.append(_Product(sku, category, cents, view, f"/p/{sku.lower()}"))
        catalog[category] = products
    return catalog


_MEMBERSHIP = _Product(MEMBERSHIP_SKU, "membership", 4900,
                       {"sku": MEMBERSHIP_SKU, "category": "membership", "price": 49.0,
                        "name": "Annual Membership"}, "/membership")

_LANDING = ("/", "/", "/", "/sale", "/new", "/bestsellers", "/blog/hair-routine", "/blog/spf-guide",
            "/c/hair", "/c/skin", "/c/makeup", "/c/fragrance", "/c/tools", "/search?q=serum",
            "/search?q=shampoo", "/gift-cards")
_REFERRERS = ("https://www.google.com/", "https://www.instagram.com/", "https://www.tiktok.com/",
              "https://www.pinterest.com/", None, None, None)
_HOST = "https://shop.example.com"

# --------------------------------------------------------------------------- people

# country, weight, UTC offset in minutes (no daylight saving: the app reports a fixed offset)
_COUNTRIES = (("US", 34, -300), ("GB", 12, 0), ("DE", 12, 60), ("FR", 8, 60), ("CA", 6, -300),
              ("NL", 5, 60), ("ES", 5, 60), ("IT", 4, 60), ("SE", 3, 60), ("AU", 4, 600),
              ("JP", 3, 540), ("IN", 4, 330))
_FIRST = ("Ava", "Noah", "Mia", "Liam", "Emma", "Lucas", "Sofia", "Leon", "Chloe", "Mateo", "Hannah",
          "Yuki", "Priya", "Oliver", "Amelia", "Elias", "Nora", "Hugo", "Isla", "Omar", "Lea", "Arjun",
          "Zoe", "Finn", "Clara", "Jonas", "Maya", "Theo", "Alice", "Sam")
_LAST = ("Smith", "Muller", "Garcia", "Rossi", "Martin", "Johansson", "Tanaka", "Patel", "Brown",
         "Schmidt", "Dubois", "Jansen", "Lopez", "Wilson", "Kowalski", "Nguyen", "Silva", "Fischer",
         "Taylor", "Moreau", "Bianchi", "Sato", "Khan", "Clarke", "Weber", "Lindqvist", "Costa", "Evans")
_DOMAINS = ("example.com", "example.net", "example.org")


@dataclass(frozen=True, slots=True)
class _Kind:
    """A kind of customer: how often they visit and what they do there."""

    name: str
    weight: float        # share of customers
    existing: float      # share registered before `start` (long-standing accounts)
    gap_days: float      # mean days between visits
    buy: float           # chance a visit ends in an order
    cart: float          # chance a visit ends with an abandoned cart
    views: tuple[int, int]    # product views per visit
    basket: tuple[int, int]   # distinct items per order
    premium: float       # chance an item comes from fragrance/tools (bigger baskets)
    churn: float         # chance per visit never to come back
    engagement: float    # chance to open a newsletter
    once: bool = False   # buys once, then never comes back (lapses)


_KINDS: tuple[_Kind, ...] = (
    #     name               share existing gap  buy   cart  views   basket premium churn engagement
    _Kind("big_spender",     0.012, 0.80, 14.0, 0.80, 0.05, (0, 2), (3, 6), 0.50, 0.000, 0.40),
    _Kind("regular",         0.060, 0.60, 45.0, 0.50, 0.12, (0, 2), (1, 4), 0.20, 0.010, 0.25),
    _Kind("occasional",      0.120, 0.50, 90.0, 0.35, 0.15, (1, 2), (1, 3), 0.15, 0.050, 0.10),
    _Kind("one_off",         0.140, 0.30, 60.0, 0.55, 0.10, (1, 2), (1, 3), 0.15, 0.000, 0.05, once=True),
    _Kind("cart_abandoner",  0.100, 0.40, 75.0, 0.06, 0.60, (1, 2), (1, 2), 0.15, 0.080, 0.08),
    _Kind("browser",         0.548, 0.40, 150.0, 0.00, 0.05, (0, 2), (1, 1), 0.10, 0.250, 0.04),
    _Kind("engaged_browser", 0.020, 0.50, 3.0, 0.02, 0.08, (2, 5), (1, 2), 0.15, 0.080, 0.20),
)
_BROWSER = next(k for k in _KINDS if k.name == "browser")  # how anonymous visitors behave
_KIND_CUM: tuple[float, ...] = tuple(sum(k.weight for k in _KINDS[: i + 1]) for i in range(len(_KINDS)))

_BROWSE, _CART, _BUY = 0, 1, 2

_SUBJECTS = (("New in: summer fragrances", "/new"), ("Your hair routine, upgraded", "/c/hair"),
             ("Members save 15% this week", "/membership"), ("Skin care for winter", "/c/skin"),
             ("Best of makeup", "/c/makeup"), ("Tools the pros use", "/c/tools"),
             ("Last chance: sale ends tonight", "/sale"))

_TYPE = re.compile(r"[a-z][a-z0-9_]*")  # a valid event type (the product contract (section 2))
# Timestamps that cannot be parsed: the product contract (section 2) says such events must be dead-lettered.
_BAD_TIMESTAMPS = ("2025-13-45T10:00:00Z", "31/12/2025 10:00", "yesterday", "",
                   "2025-06-01T25:61:00+02:00", "next tuesday")


# A timeline entry: (timestamp ms, tie-break, encoded event or None for a wake-up call,
# may be delivered late)
_Entry = tuple[int, int, bytes | None, bool]


class _Shopper:
    """Mutable state of one customer or visitor while their timeline is generated."""

    __slots__ = ("cid", "aid", "kind", "q", "fav", "app", "app_share", "engagement",
                 "member_until", "churned", "country", "profile_name")

    def __init__(self, cid: str | None, aid: str | None, kind: _Kind) -> None:
        self.cid = cid
        self.aid = aid
        self.kind = kind
        self.q: list[_Entry] = []  # built, not yet handed out
        self.fav = "hair"
        self.app: tuple[int, str] = (0, "Z")
        self.app_share = 0.0
        self.engagement = kind.engagement
        self.member_until = -1
        self.churned = False
        self.country = "US"
        self.profile_name = ""


# A timestamp format: None = integer epoch ms, else (offset in ms, suffix such as "Z")
_Mode = tuple[int, str] | None
_Z: tuple[int, str] = (0, "Z")
_MINUTE_SECOND = tuple(f"{m:02d}:{s:02d}." for m in range(60) for s in range(60))  # by second of the hour
_MILLIS = tuple(f"{ms:03d}" for ms in range(1000))


class _Shop:
    """One simulation run: the catalog, the visitors still to arrive, and the merge."""

    def __init__(self, config: TrafficConfig) -> None:
        if config.customers < 0 or config.days <= 0:
            raise ValueError("customers must be >= 0 and days > 0")
        self.config = config
        self.rng = Random(config.seed)
        self.rnd = self.rng.random
        start = config.start if config.start.tzinfo else config.start.replace(tzinfo=timezone.utc)
        self.start = int((start - _EPOCH) / timedelta(milliseconds=1))
        self.end = self.start + int(config.days * DAY)
        self.catalog = _build_catalog(self.rng)
        self.premium = self.catalog["fragrance"] + self.catalog["tools"]
        self.all_products = [p for products in self.catalog.values() for p in products]
        self.id_prefix = f"e{config.seed}-"
        self.counter = 0
        self.tick = itertools.count().__next__  # tie-break: equal timestamps keep build order
        self.orders = 0
        self.hour_prefix: dict[int, str] = {}  # "2025-01-01T10:" by hours since the epoch
        self.campaigns = self._campaigns()
        self.campaign_times = [c[0] for c in self.campaigns]
        self.pending = self._arrivals()

    # ---------------------------------------------------------------- setup
    def _campaigns(self) -> list[tuple[int, str, str, str]]:
        """A newsletter every four weeks, Tuesday 09:00 UTC."""
        first = self.start - self.start % DAY + 9 * HOUR
        if first < self.start:
            first += DAY
        weekday = (first // DAY + 3) % 7  # 0 = Monday; 1970-01-01 was a Thursday
        first += ((1 - weekday) % 7) * DAY
        out = []
        t, i = first, 0
        while t < self.end:
            subject, path = _SUBJECTS[i % len(_SUBJECTS)]
            name = "newsletter-" + str(self.stamp(t, _Z))[:10]
            out.append((t, name, subject, _HOST + path))
            t += 28 * DAY
            i += 1
        return out

    def _arrivals(self) -> list[tuple[int, int, int, int, bool, int]]:
        """(first event time, index, kind, signup time, existing account, anonymous visits
        before sign-up) per visitor, sorted by first event time. Visitors with index >=
        customers never sign up (kind -1)."""
        cfg, rng = self.config, self.rng
        rnd = rng.random
        span = self.end - self.start
        out: list[tuple[int, int, int, int, bool, int]] = []
        for idx in range(cfg.customers):
            r = rnd() * _KIND_CUM[-1]
            k = bisect_right(_KIND_CUM, r)
            k = min(k, len(_KINDS) - 1)
            kind = _KINDS[k]
            if rnd() < kind.existing:
                window = min(span, int(2 * kind.gap_days * DAY))
                first = self.start + int(rnd() * window)
                out.append((first, idx, k, first, True, 0))
                continue
            signup = self.start + int(rnd() * span)
            lead = 0
            if rnd() < cfg.anonymous_share:
                before = min(signup - self.start, int(rnd() * 14 * DAY) + HOUR)
                if before >= HOUR:
                    lead = 1 + (rnd() < 0.4)
                    out.append((signup - before, idx, k, signup, False, lead))
                    continue
            out.append((signup, idx, k, signup, False, 0))
        for j in range(round(cfg.customers * cfg.anonymous_share)):
            out.append((self.start + int(rnd() * span), cfg.customers + j, -1, 0, False, 0))
        out.sort()
        return out

    # ---------------------------------------------------------------- encoding
    def stamp(self, ts: int, mode: _Mode) -> int | str:
        """Render `ts` (epoch ms) as integer ms or RFC 3339 with the mode's offset."""
        if mode is None:
            return ts
        offset, suffix = mode
        hour, ms = divmod(ts + offset, HOUR)
        prefix = self.hour_prefix.get(hour)
        if prefix is None:
            if len(self.hour_prefix) > 100_000:
                self.hour_prefix.clear()
            prefix = self.hour_prefix[hour] = (_EPOCH + timedelta(hours=hour)).strftime("%Y-%m-%dT%H:")
        second, ms = divmod(ms, SECOND)
        return f"{prefix}{_MINUTE_SECOND[second]}{_MILLIS[ms]}{suffix}"

    def emit(self, s: _Shopper, ts: int, etype: str, cid: str | None, aid: str | None, mode: _Mode,
             props: dict[str, object] | None, late_ok: bool = True) -> None:
        """Encode one event and queue it on the shopper's timeline.

        `late_ok` False keeps it from being delivered late (sign-ups and identifies,
        which later events depend on).
        """
        self.counter += 1
        d: dict[str, object] = {"event_id": f"{self.id_prefix}{self.counter}", "type": etype}
        if cid is not None:
            d["customer_id"] = cid
        if aid is not None:
            d["anonymous_id"] = aid
        d["timestamp"] = self.stamp(ts, mode)
        if props is not None:
            d["properties"] = props
        heapq.heappush(s.q, (ts, self.tick(), orjson.dumps(d), late_ok))

    def randint(self, low: int, high: int) -> int:
        """Like `Random.randint` (both ends included), several times faster."""
        return low + int(self.rnd() * (high - low + 1))

    def anon_id(self) -> str:
        return f"anon-{self.rng.getrandbits(64):016x}"

    # ---------------------------------------------------------------- behaviour
    def pick(self, s: _Shopper) -> _Product:
        rnd = self.rng.random
        r = rnd()
        if r < 0.6:
            products = self.catalog[s.fav]
        elif r < 0.6 + s.kind.premium * 0.4:
            products = self.premium
        else:
            products = self.all_products
        return products[int(rnd() * len(products))]

    def mode(self, s: _Shopper) -> _Mode:
        r = self.rng.random()
        if r < s.app_share:
            return s.app        # mobile app: local time with offset
        if r < 0.85:
            return _Z           # web tracker: UTC with Z
        return None             # server-side tracking: epoch ms

    def visit(self, s: _Shopper, t: int, intent: int, cid: str | None, aid: str | None,
              link: bool = False, signup_props: dict[str, object] | None = None) -> None:
        """Build one visit starting at `t` into the shopper's queue.

        With `link`, the visit starts anonymous (`aid` only); after the landing page the
        visitor signs up (`signup_props`: a ``customer_created`` first) or logs in, an
        ``identify`` links the two ids, and the rest of the visit carries both.
        """
        rng = self.rng
        rnd = rng.random
        randint = self.randint
        emit = self.emit
        mode = self.mode(s)
        cur_cid = None if link else cid
        landing = _LANDING[int(rnd() * len(_LANDING))]
        props: dict[str, object] = {"url": _HOST + landing}
        ref = _REFERRERS[int(rnd() * len(_REFERRERS))]
        if ref is not None:
            props["referrer"] = ref
        # before an identify, the anonymous id must be on record: that page view is never late
        emit(s, t, "page_view", cur_cid, aid, mode, props, not link)
        if link:
            t += randint(20 * SECOND, 4 * MINUTE)
            if signup_props is not None:
                emit(s, t, "customer_created", cid, None, _Z, signup_props, False)
                t += randint(200, 3 * SECOND)
            emit(s, t, "identify", cid, aid, _Z, None, False)
            cur_cid = cid
        elif cid is not None and rnd() < 0.015:
            t += randint(5 * SECOND, MINUTE)
            emit(s, t, "customer_updated", cid, None, _Z, self.update_props(s))
        lo, hi = s.kind.views
        viewed: list[_Product] = []
        for _ in range(randint(lo, hi)):
            t += randint(4 * SECOND, 90 * SECOND)
            p = self.pick(s)
            viewed.append(p)
            emit(s, t, "product_viewed", cur_cid, aid, mode, p.view)
        if intent == _BROWSE:
            return
        lo, hi = s.kind.basket
        count = randint(lo, hi) if intent == _BUY else randint(1, 2)
        basket: list[tuple[_Product, int]] = []
        for i in range(count):
            p = viewed[i] if i < len(viewed) else self.pick(s)
            if any(p is b[0] for b in basket):
                continue
            qty = 1 if rnd() < 0.8 else randint(2, 3)
            basket.append((p, qty))
        if intent == _BUY and s.member_until < t and rnd() < 0.05:
            basket.append((_MEMBERSHIP, 1))
        for p, qty in basket:
            t += randint(5 * SECOND, 60 * SECOND)
            emit(s, t, "added_to_cart", cur_cid, aid, mode,
                 {"sku": p.sku, "category": p.category, "price": p.cents / 100, "quantity": qty})
        cents = sum(p.cents * qty for p, qty in basket)
        if intent == _CART:
            if rnd() < 0.3:
                t += randint(20 * SECOND, 3 * MINUTE)
                emit(s, t, "checkout_started", cur_cid, aid, mode,
                     {"value": cents / 100, "currency": "USD", "items": len(basket)})
            return
        t += randint(20 * SECOND, 3 * MINUTE)
        emit(s, t, "checkout_started", cur_cid, aid, mode,
             {"value": cents / 100, "currency": "USD", "items": len(basket)})
        t += randint(40 * SECOND, 5 * MINUTE)
        self.orders += 1
        order_id = f"o-{self.config.seed}-{self.orders}"
        items = [{"sku": p.sku, "category": p.category, "quantity": qty, "price": p.cents / 100}
                 for p, qty in basket]
        if any(p is _MEMBERSHIP for p, _ in basket):
            s.member_until = t + YEAR
        order = {"order_id": order_id, "total": cents / 100, "currency": "USD", "items": items,
                 "backordered": rnd() < 0.03}
        # orders come from the shop backend: epoch milliseconds, customer id only
        emit(s, t, "order_placed", cid, None, None, order)
        if rnd() < 0.06:
            when = t + randint(2 * DAY, 25 * DAY)
            if when < self.end:
                if rnd() < 0.6 or len(basket) == 1:
                    amount = cents
                else:
                    p, qty = basket[int(rnd() * len(basket))]
                    amount = p.cents * qty
                refund = {"order_id": order_id, "amount": amount / 100, "currency": "USD",
                          "reason": ("damaged", "wrong item", "changed mind")[int(rnd() * 3)]}
                emit(s, when, "order_refunded", cid, None, None, refund)

    def update_props(self, s: _Shopper) -> dict[str, object]:
        r = self.rng.random()
        if r < 0.4:
            return {"accepts_marketing": self.rng.random() < 0.5}
        if r < 0.7:
            return {"phone": f"+1555{self.randint(1000000, 9999999)}"}
        if r < 0.85:
            return {"name": s.profile_name}
        s.country = _COUNTRIES[int(self.rng.random() * len(_COUNTRIES))][0]
        return {"country": s.country}

    def campaign(self, s: _Shopper, index: int) -> int | None:
        """Open (and maybe click) newsletter `index`; returns the click time, if any."""
        rng = self.rng
        sent, name, subject, url = self.campaigns[index]
        opened = sent + MINUTE + int(rng.expovariate(1 / (5 * HOUR)))
        if opened >= self.end:
            return None
        self.emit(s, opened, "email_opened", s.cid, None, None, {"campaign": name, "subject": subject})
        if rng.random() < 0.3:
            clicked = opened + self.randint(5 * SECOND, 3 * MINUTE)
            self.emit(s, clicked, "email_clicked", s.cid, None, None, {"campaign": name, "url": url})
            if rng.random() < 0.6:
                return clicked
        return None

    def profile(self, s: _Shopper, idx: int, created_at: str | None) -> dict[str, object]:
        rng = self.rng
        first = _FIRST[int(rng.random() * len(_FIRST))]
        last = _LAST[int(rng.random() * len(_LAST))]
        s.profile_name = f"{first} {last}"
        domain = _DOMAINS[int(rng.random() * len(_DOMAINS))]
        props: dict[str, object] = {"email": f"{first}.{last}{idx}@{domain}".lower(),
                                    "name": s.profile_name, "country": s.country}
        if created_at is not None:
            props["created_at"] = created_at
        if rng.random() < 0.5:
            props["accepts_marketing"] = rng.random() < 0.7
        return props

    def intent(self, s: _Shopper) -> int:
        r = self.rng.random()
        kind = s.kind
        if r < kind.buy:
            return _BUY
        if r < kind.buy + kind.cart:
            return _CART
        return _BROWSE

    def gap(self, s: _Shopper) -> int:
        return HOUR + int(self.rng.expovariate(1 / (s.kind.gap_days * DAY)))

    # ---------------------------------------------------------------- timelines
    def customer(self, idx: int, k: int, first: int, signup: int, existing: bool,
                 lead: int) -> Iterator[_Entry]:
        """Timeline of one registered customer, in timestamp order."""
        rng = self.rng
        rnd = rng.random
        kind = _KINDS[k]
        cid = f"c-{idx:06d}"
        s = _Shopper(cid, None, kind)
        r = rnd() * 100
        for country, weight, offset in _COUNTRIES:
            r -= weight
            if r < 0:
                break
        s.country = country
        sign = "-" if offset < 0 else "+"
        s.app = (offset * MINUTE, f"{sign}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}")
        s.app_share = rnd() * 0.6
        s.fav = CATEGORIES[int(rnd() * len(CATEGORIES))]
        s.engagement = kind.engagement * (0.5 + rnd())
        q, emit, end = s.q, self.emit, self.end

        if existing:
            # A long-standing account: the profile sync sends it when the customer shows up;
            # created_at carries the real sign-up date, up to six years back.
            created = first - 30 * DAY - int(rnd() * 6 * YEAR)
            if kind.name == "big_spender" and rnd() < 0.8:
                created = min(created, first - 2 * YEAR - 30 * DAY - int(rnd() * 3 * YEAR))
            created_at = f"{_EPOCH + timedelta(milliseconds=created):%Y-%m-%dT%H:%M:%SZ}"
            emit(s, first, "customer_created", cid, None, _Z, self.profile(s, idx, created_at), False)
            t = first + self.randint(2 * SECOND, MINUTE)
            intent = self.intent(s)
            self.visit(s, t, intent, cid, None)
        else:
            if lead:
                # Browsed anonymously before signing up; the sign-up visit links the ids.
                s.aid = self.anon_id()
                for i in range(lead):
                    t = first + (signup - first) * i // lead
                    self.visit(s, t, _CART if rnd() < 0.2 else _BROWSE, None, s.aid)
            intent = _BUY if rnd() < kind.buy * 0.5 else _BROWSE
            # usually left out: created_at then defaults to this event's timestamp
            stated = None if rnd() < 0.7 else str(self.stamp(signup, _Z))
            props = self.profile(s, idx, stated)
            if lead:
                self.visit(s, signup, intent, cid, s.aid, link=True, signup_props=props)
            else:
                emit(s, signup, "customer_created", cid, None, _Z, props, False)
                self.visit(s, signup + self.randint(2 * SECOND, MINUTE), intent, cid, None)
            if rnd() < 0.5:  # the welcome email
                opened = signup + 10 * MINUTE + int(rng.expovariate(1 / (2 * HOUR)))
                if opened < end:
                    emit(s, opened, "email_opened", cid, None, None,
                         {"campaign": "welcome", "subject": "Welcome to the shop"})
        if kind.once and intent == _BUY:
            s.churned = True
        next_visit = signup + self.gap(s)
        times = self.campaign_times
        ncampaigns = len(times)
        engagement = s.engagement
        # the next newsletter this customer will open (the others leave no trace)
        ci = bisect_right(times, signup)
        while ci < ncampaigns and rnd() >= engagement:
            ci += 1
        heappop = heapq.heappop
        waiting = -1
        while True:
            if s.churned:
                nxt: float = _INF
                is_campaign = False
            else:
                nc = times[ci] if ci < ncampaigns else _INF
                is_campaign = nc < next_visit
                nxt = nc if is_campaign else next_visit
                if nxt >= end:
                    nxt = _INF
            if q and q[0][0] <= nxt:
                while q and q[0][0] <= nxt:  # nothing changes while these are handed out
                    yield heappop(q)
                continue
            if nxt == _INF:
                return
            t = int(nxt)
            if is_campaign:
                clicked = self.campaign(s, ci)
                ci += 1
                while ci < ncampaigns and rnd() >= engagement:
                    ci += 1
                if clicked is not None and clicked + 5 * SECOND < next_visit:
                    next_visit = clicked + 5 * SECOND
                continue
            if waiting != t:
                # Sleep until the visit is due (a wake-up entry without an event), so
                # nothing is built weeks ahead and an idle customer costs little memory.
                waiting = t
                yield (t, 0, None, False)
                continue
            intent = self.intent(s)
            if rnd() < 0.03:  # logs in on a new device: anonymous first, then identify
                self.visit(s, t, intent, cid, self.anon_id(), link=True)
            else:
                self.visit(s, t, intent, cid, None)
            if (kind.once and intent == _BUY) or rnd() < kind.churn:
                s.churned = True
            next_visit = t + self.gap(s)

    def visitor(self, first: int) -> Iterator[_Entry]:
        """Timeline of a visitor who never signs up: one or two anonymous visits."""
        rng = self.rng
        s = _Shopper(None, self.anon_id(), _BROWSER)
        s.fav = CATEGORIES[int(rng.random() * len(CATEGORIES))]
        t = first
        for _ in range(1 + (rng.random() < 0.4)):
            if t >= self.end:
                break
            self.visit(s, t, _CART if rng.random() < 0.15 else _BROWSE, None, s.aid)
            t += HOUR + int(rng.expovariate(1 / (10 * DAY)))
        q = s.q
        while q:
            yield heapq.heappop(q)

    # ---------------------------------------------------------------- dirt
    def bad(self, raw: bytes) -> bytes:
        """An unusable message modelled on `raw`, as a broken producer would send it."""
        rng = self.rng
        k = int(rng.random() * 7)
        if k == 0:
            return raw[: max(1, len(raw) // 2)]  # truncated: not JSON
        if k == 1:
            return b"\xff\xfe" + raw[1:20] + b"\x00"  # binary garbage: not JSON
        if k == 2:
            return b"[" + raw + b"]"  # a batch sent as a JSON array: not an object
        d = orjson.loads(raw)
        self.counter += 1
        d["event_id"] = f"{self.id_prefix}{self.counter}"
        if k == 3:
            del d["event_id"]
        elif k == 4:
            d["timestamp"] = _BAD_TIMESTAMPS[int(rng.random() * len(_BAD_TIMESTAMPS))]
        elif k == 5:  # a producer that spells the type its own way
            words = str(d["type"]).split("_")
            spelled = (" ".join(w.capitalize() for w in words), "".join(w.capitalize() for w in words),
                       " ".join(words), str(d["type"]).upper())[int(rng.random() * 4)]
            d["type"] = spelled if not _TYPE.fullmatch(spelled) else spelled.upper()
        else:
            d.pop("customer_id", None)  # nobody to attribute it to
            d.pop("anonymous_id", None)
        return orjson.dumps(d)

    # ---------------------------------------------------------------- merge
    def run(self) -> Iterator[bytes]:
        cfg, rng = self.config, self.rng
        rnd, randint = rng.random, self.randint
        bad_rate, late_rate, dup_rate = cfg.bad_event_rate, cfg.late_rate, cfg.duplicate_rate
        heappush, heappop, heapreplace = heapq.heappush, heapq.heappop, heapq.heapreplace
        pending = self.pending
        npending = len(pending)
        pi = 0
        next_arrival: float = pending[0][0] if npending else _INF
        customers = cfg.customers
        heap: list[tuple[int, int, bytes | None, bool, Iterator[_Entry]]] = []
        delayed: list[tuple[int, int, bytes, int]] = []  # (release time, seq, raw, timestamp)
        recent: deque[tuple[int, bytes]] = deque(maxlen=32)
        seq = 0
        max_ts = -1
        while True:
            if heap:
                top = heap[0]
                ts = top[0]
            else:
                if next_arrival == _INF:
                    break
                ts = _INF  # type: ignore[assignment]
            if next_arrival <= ts:
                first, idx, k, signup, existing, lead = pending[pi]
                pi += 1
                next_arrival = pending[pi][0] if pi < npending else _INF
                gen = self.customer(idx, k, first, signup, existing, lead) if idx < customers \
                    else self.visitor(first)
                head = next(gen, None)
                if head is not None:
                    seq += 1
                    heappush(heap, (head[0], seq, head[2], head[3], gen))
                continue
            head = next(top[4], None)
            if head is None:
                heappop(heap)
            else:
                seq += 1
                heapreplace(heap, (head[0], seq, head[2], head[3], top[4]))
            while delayed and delayed[0][0] <= ts:
                _, _, late_raw, late_ts = heappop(delayed)
                yield late_raw
                recent.append((late_ts, late_raw))
            raw = top[2]
            if raw is None:  # a timeline's wake-up call, not an event
                continue
            if top[3] and rnd() < late_rate:
                # held back, released before the first event an hour (or less) newer
                seq += 1
                heappush(delayed, (ts + randint(SECOND, HOUR), seq, raw, ts))
                continue
            if rnd() < bad_rate:
                yield self.bad(raw)
            yield raw
            max_ts = ts
            recent.append((ts, raw))
            if rnd() < dup_rate:
                old_ts, old = recent[int(rnd() * len(recent))]
                yield old if max_ts - old_ts <= HOUR else raw
        while delayed:
            yield heappop(delayed)[2]


# --------------------------------------------------------------------------- public API

def generate(config: TrafficConfig) -> Iterator[bytes]:
    """Yield the shop's events, one JSON object (the product contract (section 2)) per item, as Kafka would carry them.

    Events come in timestamp order, except: late events (``late_rate``) arrive up to an
    hour after newer ones; duplicates (``duplicate_rate``) re-send the exact bytes of an
    event from the last hour; bad events (``bad_event_rate``) are raw unusable bytes.
    The stream is lazy: memory stays proportional to the visitors active at once.
    """
    return _Shop(config).run()


def generate_events(config: TrafficConfig) -> Iterator[bytes]:
    """Same as `generate` (the name the benchmark and demo scripts use)."""
    return generate(config)


def _usable(d: object) -> bool:
    """True if `d` (a decoded message) is an event the product contract (section 2) accepts."""
    if not isinstance(d, dict):
        return False
    if not isinstance(d.get("event_id"), str) or not d["event_id"]:
        return False
    etype = d.get("type")
    if not isinstance(etype, str) or not _TYPE.fullmatch(etype):
        return False
    cid, aid = d.get("customer_id"), d.get("anonymous_id")
    if not (isinstance(cid, str) and cid) and not (isinstance(aid, str) and aid):
        return False
    ts = d.get("timestamp")
    if isinstance(ts, str):
        try:
            if datetime.fromisoformat(ts).tzinfo is None:
                return False
        except ValueError:
            return False
    elif not isinstance(ts, int) or isinstance(ts, bool):
        return False
    props = d.get("properties")
    return props is None or isinstance(props, dict)


def key_of(raw: bytes) -> bytes | None:
    """The Kafka message key for `raw`: the customer id, else the anonymous id, UTF-8.

    Keying by customer keeps one customer's events in one partition, in order. Returns
    None for a message that is not a usable event, so a producer sends it unkeyed and
    the worker dead-letters it.
    """
    try:
        d = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not _usable(d):
        return None
    key = d.get("customer_id") or d["anonymous_id"]
    return str(key).encode()


def write_jsonl(path: Path, config: TrafficConfig, progress: bool = False, *,
                limit: int | None = None) -> int:
    """Write the stream to `path`, one event per line; gzip if the name ends in ``.gz``.

    Returns the number of lines written. `progress` reports the count and rate on
    stderr every 100,000 events; `limit` stops after that many events.
    """
    path = Path(path)
    if str(path) == "-":
        return _write(sys.stdout.buffer, config, progress, limit)
    if path.name.endswith(".gz"):
        # level 1: several times faster than the default, and still ~8x smaller than plain
        with gzip.open(path, "wb", compresslevel=1) as out:
            return _write(out, config, progress, limit)  # type: ignore[arg-type]
    with open(path, "wb") as out:
        return _write(out, config, progress, limit)


def _write(out: BinaryIO, config: TrafficConfig, progress: bool, limit: int | None) -> int:
    started = time.perf_counter()
    count = 0
    batch: list[bytes] = []
    for raw in generate(config):
        if limit is not None and count >= limit:
            break
        batch.append(raw)
        count += 1
        if len(batch) == 10_000:
            batch.append(b"")
            out.write(b"\n".join(batch))
            batch.clear()
            if progress and count % 100_000 == 0:
                rate = count / max(time.perf_counter() - started, 1e-9)
                print(f"{count:,} events, {rate:,.0f}/s", file=sys.stderr, flush=True)
    if batch:
        batch.append(b"")
        out.write(b"\n".join(batch))
    if progress:
        elapsed = time.perf_counter() - started
        print(f"done: {count:,} events in {elapsed:.1f}s ({count / max(elapsed, 1e-9):,.0f}/s)",
              file=sys.stderr, flush=True)
    return count


def _parse_start(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: write a synthetic stream to a file (or stdout with ``--out -``)."""
    defaults = TrafficConfig()
    parser = argparse.ArgumentParser(
        prog="python -m examples.traffic",
        description="Write deterministic synthetic shop events as JSON lines (.jsonl or .jsonl.gz).")
    parser.add_argument("--customers", type=int, default=defaults.customers)
    parser.add_argument("--days", type=float, default=defaults.days)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--start", type=_parse_start, default=defaults.start,
                        help="first instant, RFC 3339 (default %(default)s)")
    parser.add_argument("--bad-event-rate", type=float, default=defaults.bad_event_rate)
    parser.add_argument("--anonymous-share", type=float, default=defaults.anonymous_share)
    parser.add_argument("--duplicate-rate", type=float, default=defaults.duplicate_rate)
    parser.add_argument("--late-rate", type=float, default=defaults.late_rate)
    parser.add_argument("--limit", type=int, default=None, help="stop after this many events")
    parser.add_argument("--out", default="events.jsonl.gz", help="output file, or - for stdout")
    parser.add_argument("--progress", action="store_true", help="report progress on stderr")
    args = parser.parse_args(argv)
    config = TrafficConfig(customers=args.customers, days=args.days, seed=args.seed, start=args.start,
                           bad_event_rate=args.bad_event_rate, anonymous_share=args.anonymous_share,
                           duplicate_rate=args.duplicate_rate, late_rate=args.late_rate)
    count = write_jsonl(Path(args.out), config, progress=args.progress, limit=args.limit)
    if args.out != "-":
        print(f"wrote {count:,} events to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
