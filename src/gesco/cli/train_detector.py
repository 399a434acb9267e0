"""``gesco train-detector``: train gesco's compact object detector, the network behind AP50 in ``gesco evaluate``.

Synthetic scenes are generated on the fly at ``--size`` (seeds ``--seed-offset`` .. ``--seed-offset + --scenes
- 1``, by default 600,000-699,999, below the evaluation seeds) and validated on held-out scenes (AP50 at every
checkpoint). ``--regenerated`` mixes in receivers' regenerations of training scenes, each with its scene's boxes.
The detector reads the images resized to ``--input-size`` (default 128x256: the 64x128 scenes
upsampled 2x, so 2 px poles keep a whole output cell). ``OUT/model`` is the trained detector (for
``gesco evaluate --detector OUT/model``), ``OUT/checkpoints`` the resumable state, ``OUT/history.json`` the
validation AP50 at every checkpoint.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gesco.cli.options import parse_size
from gesco.cli.train import positive_int
from gesco.constants import GEOMETRY_TRAINING_SEED_OFFSET


def add_geometry_training_options(parser: argparse.ArgumentParser, *, default_steps: int) -> None:
    """The options ``gesco train-detector`` and ``gesco train-depth`` share."""
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--steps", type=positive_int, default=None, help=f"training steps (default {default_steps})")
    parser.add_argument("--batch-size", type=positive_int, default=16)
    parser.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (cosine decay; default 2e-3)")
    parser.add_argument("--size", type=parse_size, default=(64, 128), help="scene HEIGHTxWIDTH (default 64x128)")
    parser.add_argument(
        "--scenes", type=positive_int, default=100_000, help="synthetic training scenes (default 100000)"
    )
    parser.add_argument(
        "--seed-offset",
        type=int,
        default=GEOMETRY_TRAINING_SEED_OFFSET,
        help=f"first synthetic training seed (default {GEOMETRY_TRAINING_SEED_OFFSET})",
    )
    parser.add_argument("--val-scenes", type=positive_int, default=200, help="held-out validation scenes (default 200)")
    parser.add_argument(
        "--riders", action="store_true", help="train and validate on scenes with cyclists (rider, bicycle) too"
    )
    parser.add_argument(
        "--regenerated",
        type=Path,
        nargs="+",
        default=(),
        metavar="DIR",
        help="folders of receivers' regenerations of training scenes (gesco evaluate --data synthetic --data-seed S, "
        "S below 1000000, --out D writes D/images), trained on with each scene's own boxes and depth",
    )
    parser.add_argument(
        "--regenerated-share",
        type=float,
        default=None,
        help="share of training items taken from --regenerated (default 0.5)",
    )
    parser.add_argument(
        "--texture-swap",
        action="store_true",
        help="give regions of some training images another image's texture on top of their own mean colour, so that "
        "the network reads the layout rather than the renderer's textures (needs --batch-size 2 or more)",
    )
    parser.add_argument(
        "--init-weights",
        metavar="MODEL",
        help="start from this trained network (its folder, or a shipped model's name) instead of random weights, "
        "with its settings: fine-tune it, e.g. on --regenerated images with a lower --lr",
    )
    parser.add_argument(
        "--widths", type=int, nargs="+", help="channels per level (default 16 32 64 96, or those of --init-weights)"
    )
    parser.add_argument("--checkpoint-every", type=positive_int, default=500)
    parser.add_argument("--workers", type=int, default=0, help="data loader worker processes (scene generation)")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (about 2x faster on a bf16-capable CPU)")
    parser.add_argument(
        "--device", choices=("cpu", "cuda"), default="cpu", help="cpu (default), or cuda: the GPU of each process"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true", help="continue from OUT's newest checkpoint and config")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run_changes(args: argparse.Namespace) -> dict:
    """The run settings of :func:`add_geometry_training_options`, as train-config fields."""
    from gesco.constants import VALIDATION_SEED_OFFSET
    from gesco.training.config import DataConfig

    if args.regenerated_share is not None and not args.regenerated:
        raise ValueError("--regenerated-share needs --regenerated: the folders of regenerations to take the share from")
    data = DataConfig(
        kind="synthetic",
        size=args.size,
        num_scenes=args.scenes,
        seed_offset=args.seed_offset,
        num_workers=args.workers,
        riders=args.riders,
    )
    validation = DataConfig(
        kind="synthetic",
        size=args.size,
        num_scenes=args.val_scenes,
        seed_offset=VALIDATION_SEED_OFFSET,
        riders=args.riders,
    )
    return {
        "output_dir": str(args.out),
        "data": data,
        "validation": validation,
        "batch_size": args.batch_size,
        "learning_rate": args.lr,
        "checkpoint_every": args.checkpoint_every,
        "mixed_precision": "bf16" if args.bf16 else "no",
        "device": args.device,
        "seed": args.seed,
        "regenerated": tuple(map(str, args.regenerated)),
        "texture_swap": args.texture_swap,
        "init_weights": args.init_weights,
        **({"regenerated_share": args.regenerated_share} if args.regenerated_share is not None else {}),
        **({"max_steps": args.steps} if args.steps else {}),
    }


def initial_model_config(args: argparse.Namespace, config_class: type):
    """The model settings a run starts from: those of ``--init-weights`` (its folder, or a shipped model's
    name), else ``config_class``'s defaults."""
    if not args.init_weights:
        return config_class()
    from gesco.pretrained import resolve

    return config_class.load(resolve(args.init_weights))


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train-detector",
        help="train the compact object detector used for AP50",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_geometry_training_options(parser, default_steps=8000)
    parser.add_argument(
        "--input-size",
        type=parse_size,
        help="HEIGHTxWIDTH the detector reads the images at (default 128x256, or that of --init-weights)",
    )
    parser.add_argument(
        "--classes",
        type=int,
        nargs="+",
        help="Cityscapes label ids to detect (default 17 19 20 24 26, with --riders also 25 33; with "
        "--init-weights, its classes)",
    )
    parser.add_argument(
        "--min-area",
        type=float,
        default=0.0,
        help="validation AP50 leaves out ground-truth boxes smaller than this (px^2; default 0)",
    )
    parser.set_defaults(func=run)


def build_config(args: argparse.Namespace):
    """The training config of the command line (or, with --resume, the saved one with --steps applied)."""
    from gesco.datasets.synthetic_canvas import CYCLIST_CLASSES
    from gesco.evaluation.detector import SYNTHETIC_BOX_CLASS_IDS, DetectorConfig
    from gesco.evaluation.detector_training import DetectorTrainConfig

    if args.resume and (args.out / "config.json").is_file():
        config = DetectorTrainConfig.load(args.out)
        return config.replace(max_steps=args.steps) if args.steps else config
    model = {}
    if args.input_size:
        model["input_size"] = args.input_size
    if args.classes:
        model["class_ids"] = tuple(args.classes)
    elif args.riders and not args.init_weights:
        model["class_ids"] = tuple(sorted(SYNTHETIC_BOX_CLASS_IDS + CYCLIST_CLASSES))
    if args.widths:
        model["widths"] = tuple(args.widths)
    base = initial_model_config(args, DetectorConfig)
    return DetectorTrainConfig(model=base.replace(**model), min_area=args.min_area, **run_changes(args))


def run(args: argparse.Namespace) -> int:
    from gesco.evaluation.detector_training import train_detector

    result = train_detector(build_config(args), resume=args.resume, progress=not args.no_progress)
    summary = f"trained the detector to step {result.step} in {result.seconds:.0f} s"
    if result.validation is not None and result.validation.map50 is not None:
        aps = {c: s.ap50 for c, s in result.validation.per_class.items() if s.ap50 is not None}
        worst = min(aps, key=aps.get)
        summary += f"; validation AP50 {result.validation.map50:.3f}, lowest class {worst} {aps[worst]:.3f}"
    print(f"{summary}; detector in {result.output_dir / 'model'}")
    return 0
