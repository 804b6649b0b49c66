"""`segmenter validate PATH`: exit 0, or exit 1 with `file:line: message` lines."""
from __future__ import annotations

import argparse
import sys

from rules import DefinitionError, load_definitions

HELP = "check segment definitions; prints file:line: message for every problem"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="a YAML file or a folder of them (all merged)")


def run(args: argparse.Namespace) -> int:
    try:
        defs = load_definitions(args.path)
    except DefinitionError as exc:
        print(exc, file=sys.stderr)
        count = len(exc.problems)
        print(f"{count} problem{'s' if count != 1 else ''} found", file=sys.stderr)
        return 1
    tiers = sum(len(levels) for levels in defs.tiers.values())
    print(
        f"ok: {len(defs.traits)} traits, {len(defs.segments) - tiers} segments, "
        f"{len(defs.tiers)} tiers ({tiers} levels), {len(defs.destinations)} destinations; "
        f"definition version {defs.version}"
    )
    return 0
