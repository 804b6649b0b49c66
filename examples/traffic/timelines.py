"""The timeline of one registered customer or one visitor who never signs up: a lazy
generator of their events in timestamp order, built one visit at a time."""
from __future__ import annotations

import heapq
from bisect import bisect_right
from datetime import timedelta
from typing import TYPE_CHECKING, Iterator

from examples.traffic.config import CATEGORIES, DAY, EPOCH, HOUR, INF, MINUTE, SECOND, YEAR
from examples.traffic.shoppers import BROWSE, BROWSER, BUY, CART, COUNTRIES, KINDS, UTC_Z, Entry, Shopper
from examples.traffic.visits import new_profile, next_gap, pick_intent, read_newsletter, visit

if TYPE_CHECKING:
    from examples.traffic.shop import Shop


def customer_timeline(shop: Shop, idx: int, k: int, first: int, signup: int, existing: bool,
                      lead: int) -> Iterator[Entry]:
    """Timeline of one registered customer, in timestamp order."""
    rng = shop.rng
    rnd = rng.random
    kind = KINDS[k]
    cid = f"c-{idx:06d}"
    s = Shopper(cid, None, kind)
    r = rnd() * 100
    for country, weight, offset in COUNTRIES:
        r -= weight
        if r < 0:
            break
    s.country = country
    sign = "-" if offset < 0 else "+"
    s.app = (offset * MINUTE, f"{sign}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}")
    s.app_share = rnd() * 0.6
    s.fav = CATEGORIES[int(rnd() * len(CATEGORIES))]
    s.engagement = kind.engagement * (0.5 + rnd())
    q, emit, end = s.q, shop.emit, shop.end

    if existing:
        # A long-standing account: the profile sync sends it when the customer shows up;
        # created_at carries the real sign-up date, up to six years back.
        created = first - 30 * DAY - int(rnd() * 6 * YEAR)
        if kind.name == "big_spender" and rnd() < 0.8:
            created = min(created, first - 2 * YEAR - 30 * DAY - int(rnd() * 3 * YEAR))
        created_at = f"{EPOCH + timedelta(milliseconds=created):%Y-%m-%dT%H:%M:%SZ}"
        emit(s, first, "customer_created", cid, None, UTC_Z, new_profile(shop, s, idx, created_at), False)
        t = first + shop.randint(2 * SECOND, MINUTE)
        intent = pick_intent(shop, s)
        visit(shop, s, t, intent, cid, None)
    else:
        if lead:
            # Browsed anonymously before signing up; the sign-up visit links the ids.
            s.aid = shop.anon_id()
            for i in range(lead):
                t = first + (signup - first) * i // lead
                visit(shop, s, t, CART if rnd() < 0.2 else BROWSE, None, s.aid)
        intent = BUY if rnd() < kind.buy * 0.5 else BROWSE
        # usually left out: created_at then defaults to this event's timestamp
        stated = None if rnd() < 0.7 else str(shop.stamp(signup, UTC_Z))
        props = new_profile(shop, s, idx, stated)
        if lead:
            visit(shop, s, signup, intent, cid, s.aid, link=True, signup_props=props)
        else:
            emit(s, signup, "customer_created", cid, None, UTC_Z, props, False)
            visit(shop, s, signup + shop.randint(2 * SECOND, MINUTE), intent, cid, None)
        if rnd() < 0.5:  # the welcome email
            opened = signup + 10 * MINUTE + int(rng.expovariate(1 / (2 * HOUR)))
            if opened < end:
                emit(s, opened, "email_opened", cid, None, None,
                     {"campaign": "welcome", "subject": "Welcome to the shop"})
    if kind.once and intent == BUY:
        s.churned = True
    next_visit = signup + next_gap(shop, s)
    times = shop.campaign_times
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
            nxt: float = INF
            is_campaign = False
        else:
            nc = times[ci] if ci < ncampaigns else INF
            is_campaign = nc < next_visit
            nxt = nc if is_campaign else next_visit
            if nxt >= end:
                nxt = INF
        if q and q[0][0] <= nxt:
            while q and q[0][0] <= nxt:  # nothing changes while these are handed out
                yield heappop(q)
            continue
        if nxt == INF:
            return
        t = int(nxt)
        if is_campaign:
            clicked = read_newsletter(shop, s, ci)
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
        intent = pick_intent(shop, s)
        if rnd() < 0.03:  # logs in on a new device: anonymous first, then identify
            visit(shop, s, t, intent, cid, shop.anon_id(), link=True)
        else:
            visit(shop, s, t, intent, cid, None)
        if (kind.once and intent == BUY) or rnd() < kind.churn:
            s.churned = True
        next_visit = t + next_gap(shop, s)


def visitor_timeline(shop: Shop, first: int) -> Iterator[Entry]:
    """Timeline of a visitor who never signs up: one or two anonymous visits."""
    rng = shop.rng
    s = Shopper(None, shop.anon_id(), BROWSER)
    s.fav = CATEGORIES[int(rng.random() * len(CATEGORIES))]
    t = first
    for _ in range(1 + (rng.random() < 0.4)):
        if t >= shop.end:
            break
        visit(shop, s, t, CART if rng.random() < 0.15 else BROWSE, None, s.aid)
        t += HOUR + int(rng.expovariate(1 / (10 * DAY)))
    q = s.q
    while q:
        yield heapq.heappop(q)
