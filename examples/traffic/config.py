"""What a simulation run is asked for, and the units it counts in (epoch milliseconds)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

SECOND = 1_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
YEAR = 365 * DAY
INF = float("inf")
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

MEMBERSHIP_SKU = "MEMBERSHIP-ANNUAL"
"""The SKU of the paid annual membership (the `membership_pricing` example segment)."""

CATEGORIES = ("hair", "skin", "makeup", "fragrance", "tools")
"""Product categories of the simulated shop; the membership is in its own category."""


@dataclass
class TrafficConfig:
    """What to simulate.

    Over the default 400 days a shop yields about 16 events per customer, anonymous
    visitors included: 1,000 customers give ~16,500 events, 100,000 customers ~1.6
    million. For a stream of an exact length, take the first N events (``--limit`` or
    ``itertools.islice``); the stream is in time order, so that is a shorter period.
    """

    customers: int = 1000
    """Registered customers who appear in the stream (each gets a ``customer_created``)."""
    days: float = 400.0
    """Length of the simulated period, starting at ``start``."""
    seed: int = 7
    """Everything random derives from this; same config, same bytes."""
    start: datetime = field(default_factory=lambda: datetime(2025, 1, 1, tzinfo=timezone.utc))
    """First instant of the period (timezone-aware; naive values are taken as UTC)."""
    bad_event_rate: float = 0.001
    """Share of extra messages that are unusable per the product contract (section 2) (dead-letter material)."""
    anonymous_share: float = 0.2
    """Share of visitors who arrive anonymous: ``customers * anonymous_share`` extra
    visitors browse and never sign up, and this share of new customers browse
    anonymously before they sign up and are linked by an ``identify`` event."""
    duplicate_rate: float = 0.002
    """Chance, per event, that the producer re-sends a recent message byte for byte."""
    late_rate: float = 0.01
    """Chance, per event, that it arrives late: after events up to an hour newer."""
