"""Change streams for the Redis tests, and the state they must leave, computed here
independently of the sinks: a plain in-memory model applies the clean stream in order."""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import redis as sync_redis

from rules import load_definitions
from rules.language.model import Definitions
from sinks.context import SinkContext
from sinks.dispatch import Dispatcher
from sinks.environment import resolve_destinations
from sinks.processor import ChangeProcessor
from sinks.registry import build_sinks
from sinks.retry import RetryPolicy
from sinks.stats import SinkStats

SEGMENTS_YAML = """
segments:
  loyalty:
    when: "true"
    on_enter: [{group: {add: loyalty}}]
    on_exit: [{group: {remove: loyalty}}]
  big_order:
    when: "true"
    on_enter: [{group: {add: big_order}}]
  members:
    when: "true"
    on_enter: [{pricing: {price_list: members, discount_percent: 15}}]
  vip:
    when: "true"
    holdout: 10%
    on_enter: [{group: {}}, {pricing: {price_list: vip, discount_percent: 50}}]
    on_exit: [{group: {}}]
tiers:
  spend_tier:
    - {name: platinum, when: "false", on_enter: [{pricing: {price_list: platinum, discount_percent: 70}}]}
    - {name: gold, when: "false", on_enter: [{pricing: {price_list: gold, discount_percent: 50}}]}
    - {name: silver, when: "true", on_enter: [{pricing: {price_list: silver, discount_percent: 30}}]}
destinations:
  group: {type: redis}
  pricing: {type: redis}
"""
PLAIN = ["loyalty", "big_order", "members", "vip"]
LEVELS = ["platinum", "gold", "silver"]
START = datetime(2026, 1, 1, tzinfo=timezone.utc)


def definitions(folder: Path) -> Definitions:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "segments.yaml").write_text(SEGMENTS_YAML)
    return load_definitions(folder)


def processor_for(defs: Definitions, context: SinkContext, policy: RetryPolicy | None = None) -> ChangeProcessor:
    """The sinks without Kafka, for these definitions (no environment variables needed)."""
    stats = SinkStats()
    sinks = build_sinks(resolve_destinations(defs, {}), context)
    return ChangeProcessor(defs, Dispatcher(sinks, policy or RetryPolicy(0), stats), stats)


def clean_stream(customers: int, steps: int, seed: int = 7) -> list[dict[str, Any]]:
    """Changes as the worker publishes them: per (customer, segment) seq 1, 2, 3...,
    enter and exit alternating, tier moves as exit-then-enter; customers interleaved."""
    rng = random.Random(seed)
    per_customer: list[list[dict[str, Any]]] = []
    for number in range(customers):
        customer = f"c-{number:05d}"
        seqs: dict[str, int] = {}
        level: str | None = None
        holdout = rng.random() < 0.2
        changes: list[dict[str, Any]] = []

        def emit(segment: str, kind: str) -> None:
            seqs[segment] = seqs.get(segment, 0) + 1
            at = START + timedelta(minutes=len(changes) + number)
            changes.append({"customer_id": customer, "segment": segment, "change": kind, "seq": seqs[segment],
                            "at": at.strftime("%Y-%m-%dT%H:%M:%SZ"), "cause": f"e-{number}-{len(changes)}",
                            "holdout": holdout and segment == "vip", "definition": "test"})

        for _ in range(rng.randint(1, steps)):
            if rng.random() < 0.4:
                target = rng.choice([None, *LEVELS])
                if target != level:
                    if level is not None:
                        emit(level, "exit")
                    if target is not None:
                        emit(target, "enter")
                    level = target
            else:
                segment = rng.choice(PLAIN)
                emit(segment, "exit" if seqs.get(segment, 0) % 2 else "enter")
        per_customer.append(changes)
    stream: list[dict[str, Any]] = []
    while any(per_customer):
        queue = rng.choice([changes for changes in per_customer if changes])
        stream.append(queue.pop(0))
    return stream


def messy(stream: list[dict[str, Any]], seed: int = 11) -> list[dict[str, Any]]:
    """Every change once or more (a third of them twice or three times), in any order."""
    rng = random.Random(seed)
    copies = [change for change in stream for _ in range(rng.choice([1, 1, 2, 3]))]
    rng.shuffle(copies)
    return copies


def expected_state(defs: Definitions, stream: list[dict[str, Any]], prefix: str) -> dict[str, Any]:
    """The Redis keys the clean stream must leave, by plain sequential application."""
    groups: dict[str, set[str]] = {}
    prices: dict[str, dict[str, tuple[str, str]]] = {}
    for change in stream:
        if change["holdout"]:
            continue
        customer, segment = change["customer_id"], change["segment"]
        spec = defs.segments[segment]
        enter = change["change"] == "enter"
        for action in spec.on_enter if enter else spec.on_exit:
            if action.kind == "group":
                add, remove = action.params.get("add"), action.params.get("remove")
                if add is None and remove is None:
                    (add, remove) = (segment, None) if enter else (None, segment)
                if add is not None:
                    groups.setdefault(str(add), set()).add(customer)
                if remove is not None:
                    groups.setdefault(str(remove), set()).discard(customer)
        granted = [a for a in spec.on_enter if a.kind == "pricing"]
        if granted and enter:
            params = granted[0].params
            prices.setdefault(customer, {})[segment] = (str(params["price_list"]), str(params["discount_percent"]))
        elif granted:
            prices.get(customer, {}).pop(segment, None)
    state: dict[str, Any] = {}
    for group, members in groups.items():
        if members:
            state[f"{prefix}segment:{group}"] = members
            for customer in members:
                state.setdefault(f"{prefix}customer:{customer}", set()).add(group)
    for customer, grants in prices.items():
        if not grants:
            continue
        fields = {f"{seg}.{name}": value for seg, (plist, disc) in grants.items()
                  for name, value in (("price_list", plist), ("discount_percent", disc))}
        best = sorted(grants, key=lambda seg: (-float(grants[seg][1]), seg))[0]
        fields.update(segment=best, price_list=grants[best][0], discount_percent=grants[best][1])
        state[f"{prefix}pricing:{customer}"] = fields
    return state


def redis_state(url: str, prefix: str) -> dict[str, Any]:
    """Every group and pricing key under `prefix` (not the seq guards), decoded."""
    client = sync_redis.Redis.from_url(url, decode_responses=True)
    state: dict[str, Any] = {}
    for key in client.scan_iter(match=prefix + "*", count=1000):
        rest = key[len(prefix):]
        if rest.startswith(("segment:", "customer:")):
            state[key] = set(client.smembers(key))
        elif rest.startswith("pricing:"):
            state[key] = client.hgetall(key)
    client.close()
    return state
