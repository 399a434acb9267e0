"""``gesco train-map-denoiser``: train the learned map denoiser through the link (AWGN, sigma drawn per map)."""

from __future__ import annotations

import argparse
from pathlib import Path

from gesco.cli.options import require_positive


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train-map-denoiser", help="train the learned map denoiser through the link", description=__doc__
    )
    parser.add_argument("--config", type=Path, help="MapDenoiserTrainConfig JSON (default: the built-in settings)")
    parser.add_argument("--out", type=Path, help="output folder (overrides the config's output_dir)")
    parser.add_argument("--max-steps", type=int, help="override the config's max_steps")
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gesco.training.map_denoiser_training import MapDenoiserTrainConfig, train_map_denoiser

    require_positive(args, "max_steps")
    config = MapDenoiserTrainConfig.load(args.config) if args.config else MapDenoiserTrainConfig()
    overrides = {"output_dir": str(args.out) if args.out else None, "max_steps": args.max_steps}
    config = config.replace(**{k: v for k, v in overrides.items() if v is not None})
    result = train_map_denoiser(config, resume=args.resume, progress=not args.no_progress)
    print(
        f"trained the map denoiser to step {result.step} in {result.seconds:.0f} s; model in {result.output_dir}/model"
    )
    return 0
