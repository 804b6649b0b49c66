"""The shop example's emails, as a new user runs them: every email action of
examples/segments has a template in examples/templates/email/, and each one, sent
through a real SMTP server with a profile from the example traffic and the worker's
`GET /customers/{id}` shape, reaches the profile's address with every placeholder filled."""
from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from examples.traffic import TrafficConfig, generate
from rules import load_definitions
from rules.language.model import Action, Origin
from sinks.base import Delivery, PermanentError, Status
from sinks.changes import parse_change
from sinks.context import SinkContext
from sinks.email import EmailSink
from sinks.environment import resolve_destinations
from sinks.profiles import HttpProfileLookup
from sinks.registry import check_templates

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# Written by hand from examples/segments/shop.yaml: segment -> template of its email action.
EMAIL_ACTIONS = {"new_customer": "welcome", "big_order": "thank_you", "vip": "vip_welcome",
                 "cart_abandoner": "cart_reminder", "lapsed": "win_back"}
TRAITS = {"lifetime_spend": 6120.5, "orders": 7, "orders_90d": 2}


def a_generated_profile() -> tuple[str, dict[str, Any]]:
    """(customer id, profile) of a customer_created event of the example traffic."""
    for raw in itertools.islice(generate(TrafficConfig(customers=20, days=20, seed=5)), 5000):
        event = orjson.loads(raw) if raw.startswith(b"{") else None
        if isinstance(event, dict) and event.get("type") == "customer_created":
            return event["customer_id"], event["properties"]
    raise AssertionError("the example traffic created no customer")


def change(customer: str, segment: str) -> Any:
    return parse_change({"customer_id": customer, "segment": segment, "change": "enter", "seq": 1,
                         "at": "2026-11-20T10:00:00Z", "cause": "e-1", "holdout": False, "definition": "d"})


@pytest.fixture
async def profile_service() -> AsyncIterator[tuple[str, str, dict[str, Any]]]:
    """(base url, known customer id, its profile): a service with the worker's answer shape."""
    customer_id, profile = a_generated_profile()

    async def customer(request: web.Request) -> web.Response:
        if request.match_info["id"] != customer_id:
            return web.json_response({"error": "unknown customer"}, status=404)
        return web.json_response({"customer_id": customer_id, "segments": ["vip"], "profile": profile,
                                  "traits": TRAITS})

    app = web.Application()
    app.router.add_get("/customers/{id}", customer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}", customer_id, profile
    await runner.cleanup()


def example_email_sink(context: SinkContext, port: int) -> EmailSink:
    definitions = load_definitions(EXAMPLES / "segments")
    destinations = resolve_destinations(definitions, {"SMTP_HOST": "127.0.0.1", "CRM_URL": "http://x",
                                                      "CRM_SECRET": "s"})
    email = destinations["email"]
    email.settings["port"] = port  # the example's 1025 may be taken here
    context.templates = EXAMPLES / "templates"
    return EmailSink(email, context)


def test_every_email_action_of_the_examples_has_a_template(context: SinkContext) -> None:
    definitions = load_definitions(EXAMPLES / "segments")
    found = {segment.name: action.params["template"] for segment in definitions.segments.values()
             for action in segment.on_enter + segment.on_exit if action.kind == "email"}
    assert found == EMAIL_ACTIONS
    sink = example_email_sink(context, 25)
    assert check_templates(definitions, {"email": sink}) == []


async def test_example_emails_render_with_a_real_profile(context: SinkContext, mail_server,
                                                         profile_service) -> None:
    base_url, customer_id, profile = profile_service
    lookup = HttpProfileLookup(base_url)
    context.profile_lookup = lookup
    sink = example_email_sink(context, mail_server.port)
    try:
        for segment, template in EMAIL_ACTIONS.items():
            item = Delivery(change(customer_id, segment), Action("email", "email", {"template": template}, Origin("t", 1)))
            values, _ = await sink.values(item)
            assert sink.templates.render("email", template, values).missing == frozenset(), template
            assert await sink.deliver([item]) == [Status.APPLIED]
    finally:
        await lookup.close()
    assert mail_server.recipients == [[profile["email"]]] * len(EMAIL_ACTIONS)
    for message in mail_server.messages:
        assert profile["name"] in message["Subject"]
        for part in message.walk():
            if not part.is_multipart():
                body = part.get_payload(decode=True).decode()
                assert "$" not in body and profile["name"] in body
    vip = mail_server.messages[list(EMAIL_ACTIONS).index("vip")]
    parts = {part.get_content_type(): part.get_payload(decode=True).decode()
             for part in vip.walk() if not part.is_multipart()}
    assert "after 7 orders with us" in parts["text/plain"]
    assert "<strong>7 orders</strong>" in parts["text/html"]


async def test_an_unknown_customer_is_dead_lettered_with_the_reason(context: SinkContext, mail_server,
                                                                    profile_service) -> None:
    base_url, _, _ = profile_service
    lookup = HttpProfileLookup(base_url)
    context.profile_lookup = lookup
    sink = example_email_sink(context, mail_server.port)
    try:
        item = Delivery(change("c-nobody", "new_customer"), Action("email", "email", {"template": "welcome"}, Origin("t", 1)))
        [outcome] = await sink.deliver([item])
    finally:
        await lookup.close()
    assert isinstance(outcome, PermanentError)
    assert "no recipient" in str(outcome) and "'c-nobody'" in str(outcome)
    assert mail_server.messages == []


async def test_an_unreachable_profile_service_is_retried_not_dropped(context: SinkContext, mail_server) -> None:
    lookup = HttpProfileLookup("http://127.0.0.1:9")  # nothing listens on the discard port
    context.profile_lookup = lookup
    sink = example_email_sink(context, mail_server.port)
    try:
        item = Delivery(change("c-1", "new_customer"), Action("email", "email", {"template": "welcome"}, Origin("t", 1)))
        [outcome] = await sink.deliver([item])
    finally:
        await lookup.close()
    assert isinstance(outcome, Exception) and not isinstance(outcome, PermanentError)  # retried, then dead-lettered
    assert mail_server.messages == []


async def test_without_profile_lookup_the_reason_names_the_flag(context: SinkContext, mail_server) -> None:
    sink = example_email_sink(context, mail_server.port)
    item = Delivery(change("c-1", "new_customer"), Action("email", "email", {"template": "welcome"}, Origin("t", 1)))
    [outcome] = await sink.deliver([item])
    assert isinstance(outcome, PermanentError) and "--profile-url" in str(outcome)
