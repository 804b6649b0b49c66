"""Change events in, actions carried out, dead letters out: the sinks without Kafka.

Both the consume loop (`sinks.runner`) and the tests drive this. A holdout change
runs nothing and is counted; a change of a segment the loaded definitions no longer
have is logged and skipped (its actions are unknown, so there is nothing to retry
or dead-letter); a message that is not a change event is logged and counted.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable

from rules.language.model import Definitions
from sinks.actions import actions_for
from sinks.base import Delivery
from sinks.changes import BadChange, parse_change
from sinks.dispatch import DeadLetter, Dispatcher
from sinks.stats import SinkStats

log = logging.getLogger("segmenter.sinks")


class ChangeProcessor:
    def __init__(self, definitions: Definitions, dispatcher: Dispatcher, stats: SinkStats) -> None:
        self.definitions = definitions
        self.dispatcher = dispatcher
        self.stats = stats
        self._unknown: set[str] = set()

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
                if change.segment not in self._unknown:
                    self._unknown.add(change.segment)
                    log.warning("segment %r is not in the loaded definitions (%s): its changes are skipped",
                                change.segment, self.definitions.version)
                continue
            self.stats.add("changes", "holdout" if change.holdout else "member")
            found.extend(Delivery(change, action) for action in actions)
        return found

    async def process(self, messages: Iterable[bytes]) -> list[DeadLetter]:
        return await self.dispatcher.deliver(self.deliveries(messages))
