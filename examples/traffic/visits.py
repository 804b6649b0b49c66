"""What a shopper does on one visit (views, carts, orders, refunds), on a newsletter,
and the choices behind it; each step draws from the run's one random generator, in a
fixed order, so the stream stays the same for the same configuration."""
from __future__ import annotations

from typing import TYPE_CHECKING

from examples.traffic.catalog import HOST, LANDING, MEMBERSHIP, REFERRERS, Product
from examples.traffic.config import DAY, HOUR, MINUTE, SECOND, YEAR
from examples.traffic.shoppers import (BROWSE, BUY, CART, COUNTRIES, DOMAINS, FIRST_NAMES, LAST_NAMES, UTC_Z, Mode,
                                       Shopper)

if TYPE_CHECKING:
    from examples.traffic.shop import Shop


def pick_product(shop: Shop, s: Shopper) -> Product:
    rnd = shop.rng.random
    r = rnd()
    if r < 0.6:
        products = shop.catalog[s.fav]
    elif r < 0.6 + s.kind.premium * 0.4:
        products = shop.premium
    else:
        products = shop.all_products
    return products[int(rnd() * len(products))]


def timestamp_mode(shop: Shop, s: Shopper) -> Mode:
    r = shop.rng.random()
    if r < s.app_share:
        return s.app        # mobile app: local time with offset
    if r < 0.85:
        return UTC_Z        # web tracker: UTC with Z
    return None             # server-side tracking: epoch ms


def visit(shop: Shop, s: Shopper, t: int, intent: int, cid: str | None, aid: str | None,
          link: bool = False, signup_props: dict[str, object] | None = None) -> None:
    """Build one visit starting at `t` into the shopper's queue.

    With `link`, the visit starts anonymous (`aid` only); after the landing page the
    visitor signs up (`signup_props`: a ``customer_created`` first) or logs in, an
    ``identify`` links the two ids, and the rest of the visit carries both.
    """
    rng = shop.rng
    rnd = rng.random
    randint = shop.randint
    emit = shop.emit
    mode = timestamp_mode(shop, s)
    cur_cid = None if link else cid
    landing = LANDING[int(rnd() * len(LANDING))]
    props: dict[str, object] = {"url": HOST + landing}
    ref = REFERRERS[int(rnd() * len(REFERRERS))]
    if ref is not None:
        props["referrer"] = ref
    # before an identify, the anonymous id must be on record: that page view is never late
    emit(s, t, "page_view", cur_cid, aid, mode, props, not link)
    if link:
        t += randint(20 * SECOND, 4 * MINUTE)
        if signup_props is not None:
            emit(s, t, "customer_created", cid, None, UTC_Z, signup_props, False)
            t += randint(200, 3 * SECOND)
        emit(s, t, "identify", cid, aid, UTC_Z, None, False)
        cur_cid = cid
    elif cid is not None and rnd() < 0.015:
        t += randint(5 * SECOND, MINUTE)
        emit(s, t, "customer_updated", cid, None, UTC_Z, profile_update(shop, s))
    lo, hi = s.kind.views
    viewed: list[Product] = []
    for _ in range(randint(lo, hi)):
        t += randint(4 * SECOND, 90 * SECOND)
        p = pick_product(shop, s)
        viewed.append(p)
        emit(s, t, "product_viewed", cur_cid, aid, mode, p.view)
    if intent == BROWSE:
        return
    lo, hi = s.kind.basket
    count = randint(lo, hi) if intent == BUY else randint(1, 2)
    basket: list[tuple[Product, int]] = []
    for i in range(count):
        p = viewed[i] if i < len(viewed) else pick_product(shop, s)
        if any(p is b[0] for b in basket):
            continue
        qty = 1 if rnd() < 0.8 else randint(2, 3)
        basket.append((p, qty))
    if intent == BUY and s.member_until < t and rnd() < 0.05:
        basket.append((MEMBERSHIP, 1))
    for p, qty in basket:
        t += randint(5 * SECOND, 60 * SECOND)
        emit(s, t, "added_to_cart", cur_cid, aid, mode,
             {"sku": p.sku, "category": p.category, "price": p.cents / 100, "quantity": qty})
    cents = sum(p.cents * qty for p, qty in basket)
    if intent == CART:
        if rnd() < 0.3:
            t += randint(20 * SECOND, 3 * MINUTE)
            emit(s, t, "checkout_started", cur_cid, aid, mode,
                 {"value": cents / 100, "currency": "USD", "items": len(basket)})
        return
    t += randint(20 * SECOND, 3 * MINUTE)
    emit(s, t, "checkout_started", cur_cid, aid, mode,
         {"value": cents / 100, "currency": "USD", "items": len(basket)})
    t += randint(40 * SECOND, 5 * MINUTE)
    shop.orders += 1
    order_id = f"o-{shop.config.seed}-{shop.orders}"
    items = [{"sku": p.sku, "category": p.category, "quantity": qty, "price": p.cents / 100}
             for p, qty in basket]
    if any(p is MEMBERSHIP for p, _ in basket):
        s.member_until = t + YEAR
    order = {"order_id": order_id, "total": cents / 100, "currency": "USD", "items": items,
             "backordered": rnd() < 0.03}
    # orders come from the shop backend: epoch milliseconds, customer id only
    emit(s, t, "order_placed", cid, None, None, order)
    if rnd() < 0.06:
        when = t + randint(2 * DAY, 25 * DAY)
        if when < shop.end:
            if rnd() < 0.6 or len(basket) == 1:
                amount = cents
            else:
                p, qty = basket[int(rnd() * len(basket))]
                amount = p.cents * qty
            refund = {"order_id": order_id, "amount": amount / 100, "currency": "USD",
                      "reason": ("damaged", "wrong item", "changed mind")[int(rnd() * 3)]}
            emit(s, when, "order_refunded", cid, None, None, refund)


def profile_update(shop: Shop, s: Shopper) -> dict[str, object]:
    r = shop.rng.random()
    if r < 0.4:
        return {"accepts_marketing": shop.rng.random() < 0.5}
    if r < 0.7:
        return {"phone": f"+1555{shop.randint(1000000, 9999999)}"}
    if r < 0.85:
        return {"name": s.profile_name}
    s.country = COUNTRIES[int(shop.rng.random() * len(COUNTRIES))][0]
    return {"country": s.country}


def read_newsletter(shop: Shop, s: Shopper, index: int) -> int | None:
    """Open (and maybe click) newsletter `index`; returns the click time, if any."""
    rng = shop.rng
    sent, name, subject, url = shop.campaigns[index]
    opened = sent + MINUTE + int(rng.expovariate(1 / (5 * HOUR)))
    if opened >= shop.end:
        return None
    shop.emit(s, opened, "email_opened", s.cid, None, None, {"campaign": name, "subject": subject})
    if rng.random() < 0.3:
        clicked = opened + shop.randint(5 * SECOND, 3 * MINUTE)
        shop.emit(s, clicked, "email_clicked", s.cid, None, None, {"campaign": name, "url": url})
        if rng.random() < 0.6:
            return clicked
    return None


def new_profile(shop: Shop, s: Shopper, idx: int, created_at: str | None) -> dict[str, object]:
    rng = shop.rng
    first = FIRST_NAMES[int(rng.random() * len(FIRST_NAMES))]
    last = LAST_NAMES[int(rng.random() * len(LAST_NAMES))]
    s.profile_name = f"{first} {last}"
    domain = DOMAINS[int(rng.random() * len(DOMAINS))]
    props: dict[str, object] = {"email": f"{first}.{last}{idx}@{domain}".lower(),
                                "name": s.profile_name, "country": s.country}
    if created_at is not None:
        props["created_at"] = created_at
    if rng.random() < 0.5:
        props["accepts_marketing"] = rng.random() < 0.7
    return props


def pick_intent(shop: Shop, s: Shopper) -> int:
    r = shop.rng.random()
    kind = s.kind
    if r < kind.buy:
        return BUY
    if r < kind.buy + kind.cart:
        return CART
    return BROWSE


def next_gap(shop: Shop, s: Shopper) -> int:
    return HOUR + int(shop.rng.expovariate(1 / (s.kind.gap_days * DAY)))
