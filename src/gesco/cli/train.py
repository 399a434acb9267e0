"""``gesco train``: train a receiver from a JSON config (a preset in configs/ or your own).

The options after ``--config`` override the config's fields for this run; the run folder's ``config.json``
records the result.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1, else a usage error naming the value."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {value}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a GESCO receiver (noise-aware diffusion model) with accelerate",
        description="Runs on this CPU as it is, and on GPUs / nodes under `accelerate launch` or `torchrun`. "
        "The options after --config override the config's fields.",
    )
    parser.add_argument("--config", required=True, type=Path, help="training config JSON (see configs/)")
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint of output_dir")
    parser.add_argument("--output-dir", help="override output_dir")
    parser.add_argument("--data-root", help="override data.root (the data set folder)")
    parser.add_argument("--batch-size", type=positive_int, help="override batch_size (per process)")
    parser.add_argument("--max-steps", type=positive_int, help="override max_steps")
    parser.add_argument("--checkpoint-every", type=positive_int, help="override checkpoint_every")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=run)


def overridden_config(args: argparse.Namespace):
    """The config of ``--config`` with the command line's overrides applied."""
    from gesco.training.config import TrainConfig

    config = TrainConfig.load(args.config)
    if args.data_root is not None:
        if config.data.kind == "synthetic":
            raise ValueError(
                "--data-root names a data set folder, but the config's data.kind is 'synthetic' "
                "(generated scenes); drop --data-root or use a config that reads a data set"
            )
        config = config.replace(data=config.data.replace(root=args.data_root))
    overrides = {
        "output_dir": args.output_dir,
        "batch_size": args.batch_size,
        "max_steps": args.max_steps,
        "checkpoint_every": args.checkpoint_every,
    }
    return config.replace(**{name: value for name, value in overrides.items() if value is not None})


def run(args: argparse.Namespace) -> int:
    from gesco.training.trainer import train

    result = train(overridden_config(args), resume=args.resume, progress=not args.no_progress)
    last = f"{result.losses[-1]:.4f}" if result.losses else "n/a"
    print(
        f"trained to step {result.step} on {result.processes} process(es) in {result.seconds:.0f} s "
        f"(last loss {last}); output in {result.output_dir}"
    )
    return 0
