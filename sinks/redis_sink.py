"""A `redis` destination: group and pricing actions, a whole batch in one round trip.

The Lua scripts make every write exact on their own, so unlike message sinks the
batch needs no per-customer ordering here: a change applied "too early" is simply
one whose seq wins, and an older one arriving later is a no-op (`DUPLICATE`).
"""
from __future__ import annotations

from collections.abc import Sequence

from redis.exceptions import RedisError

from rules.language.model import Destination
from sinks.base import Delivery, Outcome, PermanentError, Sink, Status
from sinks.context import SinkContext
from sinks.redis_groups import group_call
from sinks.redis_lua import Call, run_many
from sinks.redis_pricing import pricing_call

BUILDERS = {"group": group_call, "pricing": pricing_call}


class RedisSink(Sink):
    def __init__(self, destination: Destination, context: SinkContext) -> None:
        super().__init__(destination)
        url, self.prefix = context.redis_for(destination.settings)
        self.client = context.redis.get(url)

    async def deliver(self, batch: Sequence[Delivery], deadline: float | None = None) -> list[Outcome]:
        outcomes: list[Outcome] = [RuntimeError("not delivered")] * len(batch)
        calls: list[Call] = []
        positions: list[int] = []
        for index, item in enumerate(batch):
            builder = BUILDERS.get(item.action.kind)
            if builder is None:
                outcomes[index] = PermanentError(f"a redis destination takes group and pricing actions, not {item.action.kind}")
                continue
            try:
                calls.append(builder(self.prefix, item))
            except PermanentError as exc:
                outcomes[index] = exc
                continue
            positions.append(index)
        if not calls:
            return outcomes
        try:
            results = await run_many(self.client, calls)
        except (RedisError, OSError) as exc:
            for index in positions:
                outcomes[index] = exc
            return outcomes
        for index, result in zip(positions, results):
            if isinstance(result, Exception):
                outcomes[index] = result
            else:
                outcomes[index] = Status.APPLIED if result == 1 else Status.DUPLICATE
        return outcomes
