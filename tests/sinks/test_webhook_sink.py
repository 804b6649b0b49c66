"""Webhook actions against a real HTTP server (aiohttp) that checks the signature and
fails on demand."""
from __future__ import annotations

import orjson

from rules.language.model import Action, Destination, Origin
from sinks.base import Delivery, Status
from sinks.changes import parse_change
from sinks.context import SinkContext
from sinks.dispatch import Dispatcher
from sinks.retry import RetryPolicy
from sinks.stats import SinkStats
from sinks.webhook import WebhookSink

HERE = Origin("test", 1)
HOOK = Action("webhook", "crm", {}, HERE)


def change(customer: str, seq: int, kind: str = "enter"):
    return parse_change({"customer_id": customer, "segment": "vip", "change": kind, "seq": seq,
                         "at": "2026-11-20T10:00:00Z", "cause": "e-1", "holdout": False, "definition": "d1"})


def hook_sink(context: SinkContext, url: str, secret: str = "s3cret", timeout: float = 2.0) -> WebhookSink:
    return WebhookSink(Destination("crm", "webhook", {"url": url, "secret": secret, "timeout": timeout}, HERE), context)


async def test_signed_post_retried_with_backoff(context: SinkContext, hook_server) -> None:
    hook_server.fail_next = 3
    sink = hook_sink(context, hook_server.url)
    stats = SinkStats()
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    dispatcher = Dispatcher({"crm": sink}, RetryPolicy(max_retries=5, base=0.1, cap=1.0), stats, sleep=sleep)
    items = [Delivery(change("c-1", 1), HOOK), Delivery(change("c-1", 2, "exit"), HOOK), Delivery(change("c-2", 1), HOOK)]
    assert await dispatcher.deliver(items) == []
    await sink.close()
    assert hook_server.bad_signatures == 0
    bodies = [orjson.loads(body) for _, body in hook_server.received]
    # Per customer in order, although c-1's first attempt failed.
    assert [(b["customer_id"], b["seq"]) for b in bodies if b["customer_id"] == "c-1"] == [("c-1", 1), ("c-1", 2)]
    assert sorted(headers["X-Segmenter-Delivery"] for headers, _ in hook_server.received) == ["c-1:vip:1", "c-1:vip:2", "c-2:vip:1"]
    assert bodies[0]["change"] in ("enter", "exit") and hook_server.received[0][0]["Content-Type"] == "application/json"
    # Exponential, with jitter in [d/2, d].
    assert len(waits) >= 2 and 0.05 <= waits[0] <= 0.1 and 0.1 <= waits[1] <= 0.2


async def test_wrong_secret_is_permanent(context: SinkContext, hook_server) -> None:
    sink = hook_sink(context, hook_server.url, secret="wrong")
    dispatcher = Dispatcher({"crm": sink}, RetryPolicy(max_retries=5, base=0.01), SinkStats())
    dead = await dispatcher.deliver([Delivery(change("c-1", 1), HOOK)])
    await sink.close()
    assert len(dead) == 1 and dead[0].attempts == 1 and "401" in dead[0].error
    assert hook_server.bad_signatures == 1


async def test_down_past_the_retries_is_dead_lettered_in_order(context: SinkContext, hook_server) -> None:
    hook_server.down = True
    sink = hook_sink(context, hook_server.url)
    dispatcher = Dispatcher({"crm": sink}, RetryPolicy(max_retries=2, base=0.01), SinkStats())
    items = [Delivery(change("c-1", 1), HOOK), Delivery(change("c-1", 2, "exit"), HOOK)]
    dead = await dispatcher.deliver(items)
    assert [letter.delivery.change.seq for letter in dead] == [1, 2]
    assert "503" in dead[0].error and "HeldBack" in dead[1].error
    assert hook_server.requests == 3  # only the first of c-1 was tried; the second waited behind it
    hook_server.down = False
    assert await dispatcher.deliver([letter.delivery for letter in dead]) == []
    assert [orjson.loads(body)["seq"] for _, body in hook_server.received] == [1, 2]
    await sink.close()


async def test_timeout_and_refused_connection_are_retryable(context: SinkContext) -> None:
    sink = hook_sink(context, "http://127.0.0.1:1/hook")
    outcome = (await sink.deliver([Delivery(change("c-1", 1), HOOK)]))[0]
    assert isinstance(outcome, Exception) and not isinstance(outcome, Status)
    await sink.close()


async def test_a_redirect_is_dead_lettered_not_followed(context: SinkContext, hook_server) -> None:
    """Following it would turn the POST into a GET without the change, and its 200 would
    count as delivered."""
    sink = hook_sink(context, hook_server.url.replace("/hook", "/moved"))
    dispatcher = Dispatcher({"crm": sink}, RetryPolicy(max_retries=3, base=0.01), SinkStats())
    dead = await dispatcher.deliver([Delivery(change("c-1", 1), HOOK)])
    await sink.close()
    assert hook_server.landings == 0 and hook_server.received == []
    assert len(dead) == 1 and dead[0].attempts == 1
    assert "answered 301, a redirect to /landing" in dead[0].error


async def test_a_hung_receiver_holds_an_attempt_only_for_its_budget(context: SinkContext, hook_server) -> None:
    """A receiver that takes connections and never answers: 60 messages at 16 at a time,
    each waiting out its timeout, held the round for four timeouts per attempt (with a
    thousand messages, past the consumer's poll interval, so the round ran again and
    dead-lettered everything twice). Messages not started within the attempt's budget
    wait for the next attempt, here the last: they are dead-lettered unsent."""
    hook_server.delay = 2.0
    sink = hook_sink(context, hook_server.url, timeout=0.3)
    policy = RetryPolicy(max_retries=0, attempt_budget=0.5)
    items = [Delivery(change(f"c-{n}", 1), HOOK) for n in range(60)]
    dead = await Dispatcher({"crm": sink}, policy, SinkStats()).deliver(items)
    await sink.close()
    assert [letter.delivery for letter in dead] == items  # nothing lost, in order
    unsent = [letter for letter in dead if letter.error.startswith("NotStarted: not started")]
    assert hook_server.requests + len(unsent) == 60 and unsent  # each message either tried or left unsent
    assert all(letter.attempts == 1 for letter in dead)
