"""Change events in, actions carried out, dead letters out: the sinks without Kafka.

Both the consume loop (`sinks.runner`) and the tests drive this. A holdout change
runs nothing and is counted; a message that is not a change event is logged and
counted. A change of a segment the loaded definitions do not have is skipped when it
was made under these same definitions, but dead-lettered when it was made under
others: the workers may run newer definitions than these sinks (a rollout, sinks not
restarted), and that segment's actions must not be lost. Redrive, with the
definitions it loads, looks its actions up again (`UNRESOLVED`).
"""
from __future__ import annotations

import logging
from collections.abc import Iterable

from rules.language.model import Action, Definitions, Origin
from sinks.actions import actions_for
from sinks.base import Delivery
from sinks.changes import BadChange, parse_change
from sinks.dispatch import DeadLetter, Dispatcher
from sinks.stats import SinkStats

log = logging.getLogger("segmenter.sinks")

UNRESOLVED = Action("unresolved", "(actions of the segment)", {}, Origin("(sinks)", 0))
"""The action of a dead letter whose change's segment these sinks do not know."""


class ChangeProcessor:
    def __init__(self, definitions: Definitions, dispatcher: Dispatcher, stats: SinkStats) -> None:
        self.definitions = definitions
        self.dispatcher = dispatcher
        self.stats = stats
        self._unknown: set[str] = set()
        self.unresolved: list[DeadLetter] = []  # filled by `deliveries`, taken by `process`

    def deliveries(self, messages: Iterable[bytes]) -> list[Delivery]:
        found: list[Delivery] = []
        for value in messages:
            try:
                change = parse_change(value)
            except BadChange as exc:
                self.stats.add("changes", "bad")
                log.warning("not a change event, skipped: %s: %.200r", exc, value)
                continue
            actions = actions_for(self.definitions, change)
            if actions is None:
                self.stats.add("changes", "unknown_segment")
                newer = change.raw.get("definition") not in (None, self.definitions.version)
                if newer:
                    self.unresolved.append(DeadLetter(Delivery(change, UNRESOLVED), (
                        f"segment {change.segment!r} is not in the definitions these sinks loaded "
                        f"({self.definitions.version}); the change was made under {change.raw.get('definition')}: "
                        "restart the sinks with the definitions the workers run, then run segmenter redrive"), 0))
                if change.segment not in self._unknown:
                    self._unknown.add(change.segment)
                    log.warning("segment %r is not in the loaded definitions (%s): its changes are %s",
                                change.segment, self.definitions.version,
                                "dead-lettered (made under other definitions; restart the sinks with the "
                                "workers' definitions, then redrive)" if newer else "skipped")
                continue
            self.stats.add("changes", "holdout" if change.holdout else "member")
            found.extend(Delivery(change, action) for action in actions)
        return found

    async def process(self, messages: Iterable[bytes]) -> list[DeadLetter]:
        deliveries = self.deliveries(messages)
        unresolved, self.unresolved = self.unresolved, []
        return unresolved + await self.dispatcher.deliver(deliveries)
