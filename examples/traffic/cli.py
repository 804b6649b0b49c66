"""`python -m examples.traffic`: write a synthetic stream to a file (or stdout)."""
from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

from examples.traffic.config import TrafficConfig
from examples.traffic.stream import write_jsonl


def _parse_start(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: write a synthetic stream to a file (or stdout with ``--out -``)."""
    defaults = TrafficConfig()
    parser = argparse.ArgumentParser(
        prog="python -m examples.traffic",
        description="Write deterministic synthetic shop events as JSON lines (.jsonl or .jsonl.gz).")
    parser.add_argument("--customers", type=int, default=defaults.customers)
    parser.add_argument("--days", type=float, default=defaults.days)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--start", type=_parse_start, default=defaults.start,
                        help="first instant, RFC 3339 (default %(default)s)")
    parser.add_argument("--bad-event-rate", type=float, default=defaults.bad_event_rate)
    parser.add_argument("--anonymous-share", type=float, default=defaults.anonymous_share)
    parser.add_argument("--duplicate-rate", type=float, default=defaults.duplicate_rate)
    parser.add_argument("--late-rate", type=float, default=defaults.late_rate)
    parser.add_argument("--limit", type=int, default=None, help="stop after this many events")
    parser.add_argument("--out", default="events.jsonl.gz", help="output file, or - for stdout")
    parser.add_argument("--progress", action="store_true", help="report progress on stderr")
    args = parser.parse_args(argv)
    config = TrafficConfig(customers=args.customers, days=args.days, seed=args.seed, start=args.start,
                           bad_event_rate=args.bad_event_rate, anonymous_share=args.anonymous_share,
                           duplicate_rate=args.duplicate_rate, late_rate=args.late_rate)
    count = write_jsonl(Path(args.out), config, progress=args.progress, limit=args.limit)
    if args.out != "-":
        print(f"wrote {count:,} events to {args.out}", file=sys.stderr)
    return 0
