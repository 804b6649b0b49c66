"""`segmenter` command line: one entry point, one subcommand module each."""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from importlib import metadata

from sinks import cli as sinks_command
from sinks import redrive_cli as redrive_command
from stream.commands import demo_command, lint_command, preview_command, replay_command, validate_command, worker_command

COMMANDS = {
    "validate": validate_command,
    "replay": replay_command,
    "worker": worker_command,
    "demo": demo_command,
    "lint": lint_command,
    "preview": preview_command,
    "sinks": sinks_command,
    "redrive": redrive_command,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="segmenter",
        description="Real-time customer segmentation: exact enter/exit change streams from Kafka events.",
    )
    parser.add_argument("--version", action="version", version=f"segmenter {_installed_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module in COMMANDS.items():
        module.register(sub.add_parser(name, help=module.HELP, description=module.HELP))
    return parser


def _installed_version() -> str:
    try:
        return metadata.version("segmenter")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "(not installed)"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(COMMANDS[args.command].run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of the output went away (`segmenter lint ... | head`)
        # stop quietly, as Unix tools do; stdout goes to /dev/null so that the flush at
        # exit does not fail on the closed pipe again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a tool the pipe stopped


if __name__ == "__main__":
    raise SystemExit(main())
