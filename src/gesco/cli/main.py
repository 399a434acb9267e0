"""The ``gesco`` command: one sub-command per module of this package.

Each module named in ``COMMAND_MODULES`` defines ``register(subparsers)``, which adds its
parser and sets ``func`` (``run(args) -> int``) as the parser's default.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from gesco import __version__

COMMAND_MODULES = ["demo", "data", "train", "sample", "transmit", "convert", "evaluate", "train_segmenter",
                   "compare", "train_deep_jscc", "waterfall"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gesco",
        description="Generative semantic communication: transmit semantic maps, regenerate images.",
    )
    parser.add_argument("--version", action="version", version=f"gesco {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"gesco.cli.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError, FileNotFoundError) as err:
        # User errors are reported in one line, without a traceback.
        print(f"gesco {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
