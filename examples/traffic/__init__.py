"""Deterministic synthetic traffic of an online beauty shop.

Why this exists: tests, the benchmark, ``segmenter replay`` examples and the live demo all
need event streams that look like a real shop's (customers who sign up, browse, fill and
abandon carts, order, get refunds, open newsletters, return from a new device and go
quiet) and that are identical on every run, so a failing test or a benchmark number can
be reproduced. Everything is driven by one ``random.Random(seed)``: the same
`TrafficConfig` always yields the same bytes.

The stream also carries the dirt a real topic carries, each at a configurable rate:
unusable messages (for the dead-letter path), producer retries that re-send an earlier
message byte for byte, and events that arrive late (up to an hour out of order).

How it stays fast and small: every visitor's timeline is a lazy generator that builds one
visit at a time; a priority queue merges the generators in timestamp order, and a
visitor's generator is only created when its first event is due. Memory grows with the
number of visitors active at the same time, not with the length of the stream (about
180 MB for 100,000 customers), and a million events take about ten seconds.

Use it as a library (`generate`, `key_of`, `write_jsonl`) or from the command line::

    python -m examples.traffic --customers 1000 --days 400 --out events.jsonl.gz

The package, in the order a run uses it: `config` (what to simulate), `catalog` and
`shoppers` (what is sold, who buys), `visits` and `timelines` (what one shopper does),
`shop` (one run: encoding and the merge), `dirt` (unusable messages), `stream` (the
public functions) and `cli`.
"""
from __future__ import annotations

from examples.traffic.cli import main
from examples.traffic.config import CATEGORIES, MEMBERSHIP_SKU, TrafficConfig
from examples.traffic.stream import generate, generate_events, key_of, write_jsonl

__all__ = ["CATEGORIES", "MEMBERSHIP_SKU", "TrafficConfig", "generate", "generate_events", "key_of", "main",
           "write_jsonl"]
