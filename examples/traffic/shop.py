"""One simulation run: the catalog, the visitors still to arrive, the encoding of events,
and the merge of every visitor's timeline into one stream with its dirt (late,
duplicated and unusable messages)."""
from __future__ import annotations

import heapq
import itertools
from bisect import bisect_right
from collections import deque
from datetime import timedelta, timezone
from random import Random
from typing import Iterator

import orjson

from examples.traffic.catalog import HOST, SUBJECTS, build_catalog
from examples.traffic.config import DAY, EPOCH, HOUR, INF, SECOND, TrafficConfig
from examples.traffic.dirt import bad_message
from examples.traffic.shoppers import KIND_CUM, KINDS, UTC_Z, Entry, Mode, Shopper
from examples.traffic.timelines import customer_timeline, visitor_timeline

_MINUTE_SECOND = tuple(f"{m:02d}:{s:02d}." for m in range(60) for s in range(60))  # by second of the hour
_MILLIS = tuple(f"{ms:03d}" for ms in range(1000))


class Shop:
    """One simulation run: the catalog, the visitors still to arrive, and the merge."""

    def __init__(self, config: TrafficConfig) -> None:
        if config.customers < 0 or config.days <= 0:
            raise ValueError("customers must be >= 0 and days > 0")
        self.config = config
        self.rng = Random(config.seed)
        self.rnd = self.rng.random
        start = config.start if config.start.tzinfo else config.start.replace(tzinfo=timezone.utc)
        self.start = int((start - EPOCH) / timedelta(milliseconds=1))
        self.end = self.start + int(config.days * DAY)
        self.catalog = build_catalog(self.rng)
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
            subject, path = SUBJECTS[i % len(SUBJECTS)]
            name = "newsletter-" + str(self.stamp(t, UTC_Z))[:10]
            out.append((t, name, subject, HOST + path))
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
            r = rnd() * KIND_CUM[-1]
            k = bisect_right(KIND_CUM, r)
            k = min(k, len(KINDS) - 1)
            kind = KINDS[k]
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
    def stamp(self, ts: int, mode: Mode) -> int | str:
        """Render `ts` (epoch ms) as integer ms or RFC 3339 with the mode's offset."""
        if mode is None:
            return ts
        offset, suffix = mode
        hour, ms = divmod(ts + offset, HOUR)
        prefix = self.hour_prefix.get(hour)
        if prefix is None:
            if len(self.hour_prefix) > 100_000:
                self.hour_prefix.clear()
            prefix = self.hour_prefix[hour] = (EPOCH + timedelta(hours=hour)).strftime("%Y-%m-%dT%H:")
        second, ms = divmod(ms, SECOND)
        return f"{prefix}{_MINUTE_SECOND[second]}{_MILLIS[ms]}{suffix}"

    def emit(self, s: Shopper, ts: int, etype: str, cid: str | None, aid: str | None, mode: Mode,
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

    # ---------------------------------------------------------------- merge
    def run(self) -> Iterator[bytes]:
        """Every timeline merged in timestamp order, with late, duplicated and unusable
        messages mixed in at the configured rates."""
        cfg, rng = self.config, self.rng
        rnd, randint = rng.random, self.randint
        bad_rate, late_rate, dup_rate = cfg.bad_event_rate, cfg.late_rate, cfg.duplicate_rate
        heappush, heappop, heapreplace = heapq.heappush, heapq.heappop, heapq.heapreplace
        pending = self.pending
        npending = len(pending)
        pi = 0
        next_arrival: float = pending[0][0] if npending else INF
        customers = cfg.customers
        heap: list[tuple[int, int, bytes | None, bool, Iterator[Entry]]] = []
        delayed: list[tuple[int, int, bytes, int]] = []  # (release time, seq, raw, timestamp)
        recent: deque[tuple[int, bytes]] = deque(maxlen=32)
        seq = 0
        max_ts = -1
        while True:
            if heap:
                top = heap[0]
                ts = top[0]
            else:
                if next_arrival == INF:
                    break
                ts = INF  # type: ignore[assignment]
            if next_arrival <= ts:
                first, idx, k, signup, existing, lead = pending[pi]
                pi += 1
                next_arrival = pending[pi][0] if pi < npending else INF
                gen = customer_timeline(self, idx, k, first, signup, existing, lead) if idx < customers \
                    else visitor_timeline(self, first)
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
                yield bad_message(self, raw)
            yield raw
            max_ts = ts
            recent.append((ts, raw))
            if rnd() < dup_rate:
                old_ts, old = recent[int(rnd() * len(recent))]
                yield old if max_ts - old_ts <= HOUR else raw
        while delayed:
            yield heappop(delayed)[2]
