"""SMTP email actions against a real SMTP server (aiosmtpd): templates, exactly once, failures."""
from __future__ import annotations

from pathlib import Path

from aiohttp import web

from rules.language.model import Action, Destination, Origin
from sinks.base import Delivery, PermanentError, Status
from sinks.changes import parse_change
from sinks.context import SinkContext
from sinks.dispatch import Dispatcher
from sinks.email import EmailSink
from sinks.profiles import HttpProfileLookup
from sinks.retry import RetryPolicy
from sinks.stats import SinkStats

HERE = Origin("test", 1)


def change(customer: str = "c-42", seq: int = 1, kind: str = "enter", segment: str = "vip"):
    return parse_change({"customer_id": customer, "segment": segment, "change": kind, "seq": seq,
                         "at": "2026-11-20T10:00:00Z", "cause": "e-123", "holdout": False, "definition": "d1"})


def write_template(context: SinkContext, name: str, text: str, suffix: str = ".txt") -> None:
    folder = context.templates / "mail"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}{suffix}").write_text(text)


def email_sink(context: SinkContext, mail_server, **settings: object) -> EmailSink:
    values = {"host": "127.0.0.1", "port": mail_server.port, "sender": "shop@example.com",
              "to": "${customer_id}@customers.example", **settings}
    return EmailSink(Destination("mail", "smtp", values, HERE), context)


def email(template: str) -> Action:
    return Action("email", "mail", {"template": template}, HERE)


async def test_renders_the_template_and_sends_once(context: SinkContext, mail_server) -> None:
    write_template(context, "welcome", "Subject: Welcome to ${segment}, $customer_id\n\n"
                                       "Hello ${customer_id}, you joined ${segment} at ${at} (seq $seq). $$5 off.\n")
    write_template(context, "welcome", "Subject: ignored\n<p>Hello ${customer_id} &amp; ${profile.name}</p>\n", ".html")
    sink = email_sink(context, mail_server)
    item = Delivery(change(), email("welcome"))
    assert await sink.deliver([item]) == [Status.APPLIED]
    assert await sink.deliver([item]) == [Status.DUPLICATE]  # a redelivered change
    fresh = email_sink(context, mail_server)  # another process, after a restart
    assert await fresh.deliver([item]) == [Status.DUPLICATE]
    assert len(mail_server.messages) == 1
    message = mail_server.messages[0]
    assert message["Subject"] == "Welcome to vip, c-42"
    assert mail_server.recipients == [["c-42@customers.example"]]
    assert message["Message-ID"].endswith("@example.com>")
    assert message["X-Segmenter-Delivery"] == "c-42:vip:1"
    text, html = (part.get_payload(decode=True).decode() for part in message.walk() if not part.is_multipart())
    assert "Hello c-42, you joined vip at 2026-11-20T10:00:00Z (seq 1). $5 off." in text
    assert "<p>Hello c-42 &amp; </p>" in html  # no profile lookup configured: empty
    # A new seq is a new message.
    assert await sink.deliver([Delivery(change(seq=3), email("welcome"))]) == [Status.APPLIED]
    assert len(mail_server.messages) == 2
    assert mail_server.messages[1]["Message-ID"] != message["Message-ID"]


async def test_profile_lookup_fills_the_template(context: SinkContext, mail_server) -> None:
    async def lookup(customer_id: str) -> dict:
        return {"profile": {"email": f"{customer_id}@real.example", "first_name": "Ada"},
                "traits": {"lifetime_spend": 6120.5}}

    context.profile_lookup = lookup
    write_template(context, "vip", "Subject: Thank you, ${profile.first_name}\n"
                                   "You spent ${traits.lifetime_spend}.\n")
    sink = email_sink(context, mail_server, to="${profile.email}")
    assert await sink.deliver([Delivery(change(), email("vip"))]) == [Status.APPLIED]
    assert mail_server.recipients == [["c-42@real.example"]]
    assert mail_server.messages[0]["Subject"] == "Thank you, Ada"
    assert "You spent 6120.5." in mail_server.messages[0].get_payload()


async def test_profile_from_an_http_service(context: SinkContext, mail_server) -> None:
    async def customer(request: web.Request) -> web.Response:
        assert request.headers.get("Authorization") == "Bearer t0ken"
        if request.match_info["id"] != "c-42":
            return web.json_response({"error": "unknown"}, status=404)
        return web.json_response({"customer_id": "c-42", "segments": ["vip"], "profile": {"email": "ada@x.example"},
                                  "traits": {"orders": 7}})

    app = web.Application()
    app.router.add_get("/customers/{id}", customer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    lookup = HttpProfileLookup(f"http://127.0.0.1:{port}/", token="t0ken")
    try:
        assert await lookup("nobody") == {}
        context.profile_lookup = lookup
        write_template(context, "vip", "Subject: ${traits.orders} orders\nHi\n")
        sink = email_sink(context, mail_server, to="${profile.email}")
        assert await sink.deliver([Delivery(change(), email("vip"))]) == [Status.APPLIED]
        assert mail_server.recipients == [["ada@x.example"]] and mail_server.messages[0]["Subject"] == "7 orders"
        assert isinstance((await sink.deliver([Delivery(change("nobody"), email("vip"))]))[0], PermanentError)
    finally:
        await lookup.close()
        await runner.cleanup()


async def test_temporary_failures_are_retried_and_sent_once(context: SinkContext, mail_server) -> None:
    write_template(context, "welcome", "Subject: Hi\nHello\n")
    mail_server.fail_next = 2
    sink = email_sink(context, mail_server)
    stats = SinkStats()
    dispatcher = Dispatcher({"mail": sink}, RetryPolicy(max_retries=3, base=0.01), stats)
    assert await dispatcher.deliver([Delivery(change(), email("welcome"))]) == []
    assert len(mail_server.messages) == 1 and stats.get("retries", "mail") == 2


async def test_missing_template_is_dead_lettered_at_once(context: SinkContext, mail_server) -> None:
    sink = email_sink(context, mail_server)
    stats = SinkStats()
    dispatcher = Dispatcher({"mail": sink}, RetryPolicy(max_retries=3, base=0.01), stats)
    dead = await dispatcher.deliver([Delivery(change(), email("nope"))])
    assert len(dead) == 1 and dead[0].attempts == 1 and "nope.txt" in dead[0].error
    assert stats.get("retries") == 0
    outcome = (await sink.deliver([Delivery(change(), email("../../etc/passwd"))]))[0]
    assert isinstance(outcome, PermanentError)


async def test_server_down_fails_and_releases_the_claim(context: SinkContext, mail_server, tmp_path: Path) -> None:
    write_template(context, "welcome", "Subject: Hi\nHello\n")
    down = email_sink(context, mail_server, port=1)
    item = Delivery(change(), email("welcome"))
    assert isinstance((await down.deliver([item]))[0], OSError)
    assert await email_sink(context, mail_server).deliver([item]) == [Status.APPLIED]
    assert len(mail_server.messages) == 1


async def test_two_email_destinations_with_the_same_template_name_each_send(context: SinkContext, mail_server) -> None:
    """The shop's and the sales team's `welcome`: one is no duplicate of the other."""
    for folder in ("mail", "sales"):
        (context.templates / folder).mkdir(parents=True, exist_ok=True)
        (context.templates / folder / "welcome.txt").write_text(f"Subject: from {folder}\n\nHello ${{customer_id}}\n")
    shop = email_sink(context, mail_server)
    sales = EmailSink(Destination("sales", "smtp", {**shop_settings(mail_server), "to": "sales@shop.example"}, HERE),
                      context)
    item = change()
    assert await shop.deliver([Delivery(item, email("welcome"))]) == [Status.APPLIED]
    assert await sales.deliver([Delivery(item, Action("email", "sales", {"template": "welcome"}, HERE))]) \
        == [Status.APPLIED]
    assert sorted(message["Subject"] for message in mail_server.messages) == ["from mail", "from sales"]


def shop_settings(mail_server) -> dict[str, object]:
    return {"host": "127.0.0.1", "port": mail_server.port, "sender": "shop@example.com"}


async def test_a_recipient_that_cannot_be_filled_in_is_dead_lettered_at_once(context: SinkContext,
                                                                            mail_server) -> None:
    write_template(context, "welcome", "Subject: Hi\n\nHello\n")
    sink = email_sink(context, mail_server, to="${profile.e-mail}")
    dispatcher = Dispatcher({"mail": sink}, RetryPolicy(max_retries=5, base=0.01), SinkStats())
    (dead,) = await dispatcher.deliver([Delivery(change(), email("welcome"))])
    assert dead.attempts == 1 and "mail.to '${profile.e-mail}' cannot be filled in" in dead.error
    assert mail_server.messages == []
