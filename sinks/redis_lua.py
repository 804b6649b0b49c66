"""Redis clients and Lua scripts run many at a time in one round trip.

Each group or pricing write is one Lua script, so checking the (customer, segment)
seq and writing the effect is one atomic step in Redis: a replayed, duplicated or
reordered change can never slip between the check and the write. Scripts are sent
as EVALSHA commands in a non-transactional pipeline; when Redis does not know the
script (first use, or after a restart) it is loaded and only those calls are sent
again, which is safe because a NOSCRIPT call did nothing.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError


class LuaScript:
    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()


Call = tuple[LuaScript, Sequence[str], Sequence[str | int]]  # script, keys, args


async def run_many(client: Redis, calls: Sequence[Call]) -> list[object]:
    """One result (or exception) per call, in order, in one round trip (two if Redis must
    first learn a script); raises only when Redis cannot be reached."""
    results: list[object] = [None] * len(calls)
    pending = list(range(len(calls)))
    for round_ in range(2):
        pipe = client.pipeline(transaction=False)
        for index in pending:
            script, keys, args = calls[index]
            pipe.evalsha(script.sha, len(keys), *keys, *args)
        answers = await pipe.execute(raise_on_error=False)
        unknown = [index for index, answer in zip(pending, answers) if isinstance(answer, NoScriptError)]
        for index, answer in zip(pending, answers):
            results[index] = answer
        if not unknown or round_:
            break
        for script in {calls[index][0] for index in unknown}:
            await client.script_load(script.source)
        pending = unknown
    return results


class RedisClients:
    """One client (connection pool) per URL, shared by every sink that writes there."""

    def __init__(self) -> None:
        self._clients: dict[str, Redis] = {}

    def get(self, url: str) -> Redis:
        client = self._clients.get(url)
        if client is None:
            # One quick retry covers a pooled connection Redis closed (a restart); longer
            # outages are the dispatcher's to retry with backoff, then dead-letter.
            client = Redis.from_url(url, socket_connect_timeout=2.0, socket_timeout=10.0,
                                    retry=Retry(NoBackoff(), 1), health_check_interval=30)
            self._clients[url] = client
        return client

    async def unreachable(self) -> list[tuple[str, str]]:
        """(url, error) for every Redis in use that does not answer a PING; checked at
        start so that a wrong `--redis-url` shows at once, not as dead letters later."""
        problems: list[tuple[str, str]] = []
        for url, client in self._clients.items():
            try:
                await client.ping()
            except Exception as exc:  # noqa: BLE001 - any failure is worth the same warning
                problems.append((url, str(exc).rstrip(".") or type(exc).__name__))
        return problems

    async def close(self) -> None:
        clients, self._clients = self._clients, {}
        for client in clients.values():
            await client.aclose()
