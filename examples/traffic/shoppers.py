"""Who visits the shop: countries, names, the kinds of customer and how each behaves,
and the state of one shopper while their timeline is generated."""
from __future__ import annotations

from dataclasses import dataclass

# country, weight, UTC offset in minutes (no daylight saving: the app reports a fixed offset)
COUNTRIES = (("US", 34, -300), ("GB", 12, 0), ("DE", 12, 60), ("FR", 8, 60), ("CA", 6, -300),
             ("NL", 5, 60), ("ES", 5, 60), ("IT", 4, 60), ("SE", 3, 60), ("AU", 4, 600),
             ("JP", 3, 540), ("IN", 4, 330))
FIRST_NAMES = ("Ava", "Noah", "Mia", "Liam", "Emma", "Lucas", "Sofia", "Leon", "Chloe", "Mateo", "Hannah",
               "Yuki", "Priya", "Oliver", "Amelia", "Elias", "Nora", "Hugo", "Isla", "Omar", "Lea", "Arjun",
               "Zoe", "Finn", "Clara", "Jonas", "Maya", "Theo", "Alice", "Sam")
LAST_NAMES = ("Smith", "Muller", "Garcia", "Rossi", "Martin", "Johansson", "Tanaka", "Patel", "Brown",
              "Schmidt", "Dubois", "Jansen", "Lopez", "Wilson", "Kowalski", "Nguyen", "Silva", "Fischer",
              "Taylor", "Moreau", "Bianchi", "Sato", "Khan", "Clarke", "Weber", "Lindqvist", "Costa", "Evans")
DOMAINS = ("example.com", "example.net", "example.org")


@dataclass(frozen=True, slots=True)
class Kind:
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


KINDS: tuple[Kind, ...] = (
    #     name               share existing gap  buy   cart  views   basket premium churn engagement
    Kind("big_spender",     0.012, 0.80, 14.0, 0.80, 0.05, (0, 2), (3, 6), 0.50, 0.000, 0.40),
    Kind("regular",         0.060, 0.60, 45.0, 0.50, 0.12, (0, 2), (1, 4), 0.20, 0.010, 0.25),
    Kind("occasional",      0.120, 0.50, 90.0, 0.35, 0.15, (1, 2), (1, 3), 0.15, 0.050, 0.10),
    Kind("one_off",         0.140, 0.30, 60.0, 0.55, 0.10, (1, 2), (1, 3), 0.15, 0.000, 0.05, once=True),
    Kind("cart_abandoner",  0.100, 0.40, 75.0, 0.06, 0.60, (1, 2), (1, 2), 0.15, 0.080, 0.08),
    Kind("browser",         0.548, 0.40, 150.0, 0.00, 0.05, (0, 2), (1, 1), 0.10, 0.250, 0.04),
    Kind("engaged_browser", 0.020, 0.50, 3.0, 0.02, 0.08, (2, 5), (1, 2), 0.15, 0.080, 0.20),
)
BROWSER = next(k for k in KINDS if k.name == "browser")  # how anonymous visitors behave
KIND_CUM: tuple[float, ...] = tuple(sum(k.weight for k in KINDS[: i + 1]) for i in range(len(KINDS)))

BROWSE, CART, BUY = 0, 1, 2


# A timeline entry: (timestamp ms, tie-break, encoded event or None for a wake-up call,
# may be delivered late)
Entry = tuple[int, int, bytes | None, bool]


class Shopper:
    """Mutable state of one customer or visitor while their timeline is generated."""

    __slots__ = ("cid", "aid", "kind", "q", "fav", "app", "app_share", "engagement",
                 "member_until", "churned", "country", "profile_name")

    def __init__(self, cid: str | None, aid: str | None, kind: Kind) -> None:
        self.cid = cid
        self.aid = aid
        self.kind = kind
        self.q: list[Entry] = []  # built, not yet handed out
        self.fav = "hair"
        self.app: tuple[int, str] = (0, "Z")
        self.app_share = 0.0
        self.engagement = kind.engagement
        self.member_until = -1
        self.churned = False
        self.country = "US"
        self.profile_name = ""


# A timestamp format: None = integer epoch ms, else (offset in ms, suffix such as "Z")
Mode = tuple[int, str] | None
UTC_Z: tuple[int, str] = (0, "Z")
