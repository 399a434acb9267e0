"""``gesco train``: train a receiver from a JSON config (a preset in configs/ or your own)."""

from __future__ import annotations

import argparse
from pathlib import Path

from gesco.training.config import TrainConfig


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a GESCO receiver (noise-aware diffusion model) with accelerate",
        description="Runs on this CPU as it is, and on GPUs / nodes under `accelerate launch` or `torchrun`.",
    )
    parser.add_argument("--config", required=True, type=Path, help="training config JSON (see configs/)")
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint of output_dir")
    parser.add_argument("--output-dir", help="override the config's output_dir")
    parser.add_argument("--max-steps", type=int, help="override the config's max_steps")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gesco.training.trainer import train

    config = TrainConfig.load(args.config)
    overrides = {}
    if args.output_dir:
        overrides["output_dir"] = args.output_dir
    if args.max_steps:
        overrides["max_steps"] = args.max_steps
    config = config.replace(**overrides) if overrides else config
    result = train(config, resume=args.resume, progress=not args.no_progress)
    last = f"{result.losses[-1]:.4f}" if result.losses else "n/a"
    print(f"trained to step {result.step} on {result.processes} process(es) in {result.seconds:.0f} s "
          f"(last loss {last}); output in {result.output_dir}")
    return 0
