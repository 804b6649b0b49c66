"""An `smtp` destination: one email per action, from a template, sent exactly once.

Settings: `host`, `port` (25), `sender`, `to` (the recipient, with the template
placeholders; default `${profile.email}`), optional `username`/`password`,
`starttls`/`ssl`, `timeout` (seconds, 10). The action names the template:
`{email: {template: welcome}}`.

Exactly once: the Message-ID is derived from (customer, segment, seq, template), and
a Redis marker `<prefix>sent:<id>` is claimed with SET NX before sending ("sending",
expiring after `lock_seconds`, 300) and set to "sent" after the server accepted the
message (kept `marker_days`, 30). A redelivered or redriven change finds "sent" and
sends nothing; a failed send releases the claim so a retry may send. The one gap is a
crash between the server's acceptance and the marker write: the claim then expires
and the message may be sent again, with the same Message-ID (mail systems drop
duplicates by it).
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import smtplib
from email.message import EmailMessage
from email.utils import formatdate

from rules.language.model import Destination
from sinks.base import Delivery, OrderedSink, PermanentError, Status
from sinks.context import SinkContext
from sinks.templates import Rendered, TemplateFolder, flatten, render_text

log = logging.getLogger("segmenter.sinks.email")


class InFlight(Exception):
    """Another delivery holds the claim on this message; try again later."""


def message_key(item: Delivery, template: str) -> str:
    """One email per change, destination and template: two email destinations may
    use the same template name (a shop's and a sales team's `welcome`)."""
    change = item.change
    identity = f"{change.customer_id}\x1f{change.segment}\x1f{change.seq}\x1f{item.action.destination}\x1f{template}"
    return hashlib.sha256(identity.encode()).hexdigest()[:40]


class EmailSink(OrderedSink):
    def __init__(self, destination: Destination, context: SinkContext) -> None:
        super().__init__(destination)
        settings = destination.settings
        self.host = str(settings.get("host") or "localhost")
        self.port = int(str(settings.get("port") or 25))
        self.sender = str(settings.get("sender") or "segmenter@localhost")
        self.to = str(settings.get("to") or "${profile.email}")
        self.username, self.password = str(settings.get("username") or ""), str(settings.get("password") or "")
        self.starttls, self.ssl = bool(settings.get("starttls")), bool(settings.get("ssl"))
        self.timeout = float(str(settings.get("timeout") or 10))
        self.lock_seconds = int(str(settings.get("lock_seconds") or 300))
        self.marker_seconds = int(float(str(settings.get("marker_days") or 30)) * 86400)
        self.domain = self.sender.rpartition("@")[2] or "segmenter"
        self.templates = TemplateFolder(context.templates)
        self.lookup = context.profile_lookup
        self.redis = context.redis.get(context.redis_url)
        self.prefix = context.redis_prefix

    async def start(self) -> None:
        """Warn at once when the SMTP server does not answer (emails wait in retries, then
        in the dead-letter topic), so a wrong host or port shows when the sinks start."""
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), self.timeout)
        except (OSError, asyncio.TimeoutError) as exc:
            log.warning("%s: SMTP server %s:%d does not answer (%s); its emails will be retried, then "
                        "dead-lettered until it does", self.name, self.host, self.port, exc or "timeout")
            return
        writer.close()

    async def values(self, item: Delivery) -> tuple[dict[str, str], str]:
        """What templates can use: the change's fields, and profile/traits from the lookup;
        and, for the error of an email without recipient, what the lookup gave.

        A lookup that fails (unreachable, 5xx, timeout) raises, so the email is retried
        and then dead-lettered; a customer the lookup does not know renders without
        profile fields, and is dead-lettered only if that leaves it without recipient."""
        values = flatten({k: v for k, v in item.change.raw.items() if isinstance(v, (str, int, float, bool))})
        if self.lookup is None:
            return values, "no profile lookup is configured (--profile-url)"
        found = await self.lookup(item.change.customer_id)
        values.update(flatten({"profile": found.get("profile") or {}, "traits": found.get("traits") or {}}))
        if not found:
            return values, f"the profile lookup does not know customer {item.change.customer_id!r}"
        return values, f"the profile of customer {item.change.customer_id!r} has no such field"

    def message(self, item: Delivery, rendered: Rendered, to: str, key: str) -> EmailMessage:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self.sender, to, rendered.subject
        message["Message-ID"] = f"<{key}@{self.domain}>"
        message["Date"] = formatdate(localtime=False)
        message["X-Segmenter-Delivery"] = item.change.delivery_id
        if rendered.text is not None:
            message.set_content(rendered.text)
            if rendered.html is not None:
                message.add_alternative(rendered.html, subtype="html")
        else:
            message.set_content(rendered.html or "", subtype="html")
        return message

    async def deliver_one(self, item: Delivery) -> Status:
        template = item.action.params.get("template")
        if not isinstance(template, str) or not template:
            raise PermanentError("an email action needs a template: {email: {template: NAME}}")
        values, source = await self.values(item)
        rendered = self.templates.render(self.name, template, values)
        try:
            to = render_text(self.to, values).strip()
        except ValueError as exc:  # a placeholder that is no name, such as ${profile.e-mail}: fails every time
            raise PermanentError(f"{self.name}.to {self.to!r} cannot be filled in: {exc}") from None
        if not to:
            raise PermanentError(f"no recipient: {self.name}.to {self.to!r} renders empty: {source}")
        if rendered.missing:
            log.warning("template %s/%s: no value for %s", self.name, template, ", ".join(sorted(rendered.missing)))
        key = message_key(item, template)
        try:
            message = self.message(item, rendered, to, key)
        except ValueError as exc:  # a line break in a header (the subject from a profile value): every time
            raise PermanentError(f"the message cannot be built: {exc}") from None
        marker = f"{self.prefix}sent:{key}"
        if not await self.redis.set(marker, "sending", nx=True, ex=self.lock_seconds):
            if await self.redis.get(marker) == b"sent":
                return Status.DUPLICATE
            raise InFlight(f"message {key} is being sent by another delivery")
        try:
            await asyncio.to_thread(self._send, message, to)
        except Exception:
            await self._release(marker)
            raise
        await self._mark_sent(marker)
        return Status.APPLIED

    async def _release(self, marker: str) -> None:
        try:
            await self.redis.delete(marker)
        except Exception as exc:  # noqa: BLE001 - the claim expires by itself
            log.warning("could not release %s: %s", marker, exc)

    async def _mark_sent(self, marker: str) -> None:
        for attempt in range(5):
            try:
                await self.redis.set(marker, "sent", ex=self.marker_seconds)
                return
            except Exception as exc:  # noqa: BLE001 - the message is out; only the marker is at stake
                log.warning("could not mark %s sent (attempt %d): %s", marker, attempt + 1, exc)
                await asyncio.sleep(0.2 * 2**attempt)

    def _send(self, message: EmailMessage, to: str) -> None:
        factory = smtplib.SMTP_SSL if self.ssl else smtplib.SMTP
        try:
            with factory(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls()
                if self.username:
                    smtp.login(self.username, self.password)
                smtp.send_message(message, from_addr=self.sender, to_addrs=[to])
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            if all(code >= 500 for code in codes):
                raise PermanentError(f"recipient refused: {exc.recipients}") from None
            raise
        except smtplib.SMTPResponseException as exc:
            if exc.smtp_code >= 500:
                raise PermanentError(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}") from None
            raise
