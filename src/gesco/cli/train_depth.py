"""``gesco train-depth``: train gesco's compact monocular depth network, behind AbsRel and delta1 in ``gesco evaluate``.

Synthetic scenes are generated on the fly at ``--size`` (seeds ``--seed-offset`` .. ``--seed-offset + --scenes
- 1``, by default 600,000-699,999, below the evaluation seeds) and validated on held-out scenes (AbsRel and
delta1 up to 80 m at every checkpoint). ``--regenerated`` mixes in receivers' regenerations of training scenes
(images written by ``gesco evaluate --data synthetic --data-seed S``), each with its scene's depth, so that the
network learns to read the images it will score. ``OUT/model`` is the trained network (for ``gesco evaluate --depth
OUT/model``), ``OUT/checkpoints`` the resumable state, ``OUT/history.json`` the validation scores.
"""

from __future__ import annotations

import argparse

from gesco.cli.train_detector import add_geometry_training_options, initial_model_config, run_changes


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train-depth",
        help="train the compact monocular depth network used for AbsRel / delta1",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_geometry_training_options(parser, default_steps=6000)
    parser.add_argument(
        "--appearance-augment",
        action="store_true",
        help="also blur, swap colour channels and flatten objects' textures, so that depth is read from the layout",
    )
    parser.set_defaults(func=run)


def build_config(args: argparse.Namespace):
    """The training config of the command line (or, with --resume, the saved one with --steps applied)."""
    from gesco.evaluation.depth_network import DepthNetConfig
    from gesco.evaluation.depth_training import DepthTrainConfig

    if args.resume and (args.out / "config.json").is_file():
        config = DepthTrainConfig.load(args.out)
        return config.replace(max_steps=args.steps) if args.steps else config
    base = initial_model_config(args, DepthNetConfig)
    model = base.replace(**({"widths": tuple(args.widths)} if args.widths else {}))
    return DepthTrainConfig(model=model, appearance_augment=args.appearance_augment, **run_changes(args))


def run(args: argparse.Namespace) -> int:
    from gesco.evaluation.depth_training import train_depth

    result = train_depth(build_config(args), resume=args.resume, progress=not args.no_progress)
    summary = f"trained the depth network to step {result.step} in {result.seconds:.0f} s"
    if result.validation is not None and result.validation.abs_rel is not None:
        summary += f"; validation AbsRel {result.validation.abs_rel:.3f}, delta1 {result.validation.delta1:.3f}"
    print(f"{summary}; depth network in {result.output_dir / 'model'}")
    return 0
