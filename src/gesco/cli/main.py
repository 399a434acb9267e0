"""The ``gesco`` command: one sub-command per module of this package.

Each module named in ``COMMANDS`` defines ``register(subparsers)``, which adds its parser and sets ``func``
(``run(args) -> int``) as the parser's default. Only the module of the command being run is imported: the others
are listed with the one-line help of ``COMMANDS``, so ``gesco --help`` and ``gesco --version`` import none of them.
A command module imports its heavy dependencies (torch, diffusers, ...) inside ``run``, so that its ``--help``
answers at once as well (``tests/cli/test_cli_help.py``).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from gesco import __version__

#: command -> (module of ``gesco.cli``, the one line ``gesco --help`` shows; the module's ``register`` repeats it).
COMMANDS = {
    "demo": ("demo", "the whole link on held-out synthetic scenes with the shipped models"),
    "data": ("data", "make and inspect data sets"),
    "train": ("train", "train a GESCO receiver (noise-aware diffusion model) with accelerate"),
    "sample": ("sample", "regenerate images from label maps sent through the channel"),
    "transmit": ("transmit", "send one semantic map through the link and regenerate the image"),
    "convert-official": ("convert", "convert an official GESCO/SDM UNet checkpoint to a gesco model folder"),
    "evaluate": ("evaluate", "regenerate a set at each PSNR and report mIoU / FID / KID / ..."),
    "train-segmenter": ("train_segmenter", "train the compact segmenter used for mIoU"),
    "train-detector": ("train_detector", "train the compact object detector used for AP50"),
    "train-depth": ("train_depth", "train the compact monocular depth network used for AbsRel / delta1"),
    "compare": ("compare", "GESCO vs JPEG+LDPC and Deep JSCC at equal channel uses over SNR"),
    "train-deep-jscc": ("train_deep_jscc", "train the Deep JSCC baseline"),
    "waterfall": ("waterfall", "BLER of the 5G LDPC + QAM link against Es/N0 (plot + JSON)"),
    "train-map-denoiser": ("train_map_denoiser", "train the learned map denoiser through the link"),
    "distill-guidance": (
        "distill_guidance",
        "distil a receiver's guidance into a one-pass student (one forward per sampler step)",
    ),
    "distill-consistency": (
        "distill_consistency",
        "distil a receiver into a consistency model (lcm sampler, 2-8 steps of one forward)",
    ),
    "serve": ("serve", "the receiver as a network service, with a web demo"),
    "send": ("send", "send a semantic map through the channel to a gesco serve receiver"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``gesco`` parser with every command listed and ``command``'s full options.

    Args:
        command: the sub-command whose module is imported and registered (its options, its ``run``); the other
            commands get a placeholder parser with their help line. None or an unknown name imports no module.
    """
    parser = argparse.ArgumentParser(
        prog="gesco",
        description="Generative semantic communication: transmit semantic maps, regenerate images.",
    )
    parser.add_argument("--version", action="version", version=f"gesco {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_line) in COMMANDS.items():
        if name == command:
            importlib.import_module(f"gesco.cli.{module}").register(subparsers)
        else:
            subparsers.add_parser(name, help=help_line)
    return parser


def command_of(argv: Sequence[str]) -> str | None:
    """The sub-command named on a command line: its first word that is not an option (``gesco`` takes no
    option with a value), or None."""
    return next((word for word in argv if not word.startswith("-")), None)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(command_of(argv))
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError, OSError, MemoryError) as err:
        # User errors (typed ValueError / TypeError) and faults of the environment (unreadable, full or
        # read-only paths; out of memory) are reported in one line, without a traceback.
        print(f"gesco {args.command}: error: {error_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gesco {args.command}: interrupted", file=sys.stderr)
        return 130


def error_line(err: BaseException) -> str:
    """``err`` as one line: the path and the reason of an OSError, the lines of a multi-line message joined."""
    if isinstance(err, OSError) and err.filename is not None and err.strerror:
        target = f"{err.filename} -> {err.filename2}" if err.filename2 else err.filename
        return f"{err.strerror}: {target}"
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return "; ".join(lines) or f"{type(err).__name__} (no message)"


if __name__ == "__main__":
    sys.exit(main())
