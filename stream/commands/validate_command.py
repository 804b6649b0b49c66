"""`segmenter validate PATH`: exit 0, or exit 1 with `file:line: message` lines."""
from __future__ import annotations

import argparse
import sys

from rules import DefinitionError, load_definitions
from stream.table import counted

HELP = "check segment definitions; prints file:line: message for every problem"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="+", help="a YAML file or a folder of them; several are merged as one set")


def run(args: argparse.Namespace) -> int:
    try:
        defs = load_definitions(*args.path)
    except DefinitionError as exc:
        print(exc, file=sys.stderr)
        print(f"{counted(len(exc.problems), 'problem')} found", file=sys.stderr)
        return 1
    tiers = sum(len(levels) for levels in defs.tiers.values())
    print(
        f"ok: {counted(len(defs.traits), 'trait')}, {counted(len(defs.segments) - tiers, 'segment')}, "
        f"{counted(len(defs.tiers), 'tier')} ({counted(tiers, 'level')}), "
        f"{counted(len(defs.destinations), 'destination')}; definition version {defs.version}"
    )
    return 0
