"""``gesco train-segmenter``: train gesco's compact segmenter, the network behind the mIoU of ``gesco evaluate``.

Synthetic scenes are generated on the fly (seeds ``--seed-offset`` .. ``--seed-offset + --scenes - 1``, kept
below the evaluation seeds) and validated on held-out scenes; the other data sets read ``--root`` (training
split "train", validation split "val"). ``OUT/model`` is the trained segmenter (for ``--segmenter``),
``OUT/checkpoints`` the resumable state, ``OUT/history.json`` the validation mIoU at every checkpoint.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gesco.cli.train import positive_int

DATA_KINDS = ("synthetic", "cityscapes", "coco-stuff", "ade20k")


def _size(text: str) -> tuple[int, int]:
    from gesco.cli.data import parse_size  # imported when parsing: gesco.cli.data loads the data sets (torch)

    return parse_size(text)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train-segmenter",
        help="train the compact segmenter used for mIoU",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", choices=DATA_KINDS, default="synthetic", help="training data (default synthetic)")
    parser.add_argument("--root", type=Path, help="data set root (all but synthetic)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--steps", type=positive_int, default=None, help="training steps (default 6000)")
    parser.add_argument("--batch-size", type=positive_int, default=16)
    parser.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (cosine decay)")
    parser.add_argument("--size", type=_size, default=(64, 128), help="HEIGHTxWIDTH (default 64x128)")
    parser.add_argument("--scenes", type=positive_int, default=20000, help="synthetic training scenes (default 20000)")
    parser.add_argument("--seed-offset", type=int, default=0, help="first synthetic training seed (default 0)")
    parser.add_argument(
        "--val-scenes", type=positive_int, default=200, help="synthetic validation scenes (default 200)"
    )
    parser.add_argument(
        "--classes",
        type=int,
        nargs="+",
        help="class-table channels to predict "
        "(default: the synthetic scenes' 11 classes, or the table's evaluation classes)",
    )
    parser.add_argument("--widths", type=int, nargs="+", help="UNet channels per level (default 16 32 64 96)")
    parser.add_argument("--checkpoint-every", type=positive_int, default=500)
    parser.add_argument("--workers", type=int, default=0, help="data loader worker processes")
    parser.add_argument(
        "--device", choices=("cpu", "cuda"), default="cpu", help="cpu (default), or cuda: the GPU of each process"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true", help="continue from OUT's newest checkpoint and config")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=run)


def build_config(args: argparse.Namespace):
    """The training config of the command line (or, with --resume, the saved one with --steps applied)."""
    from gesco.evaluation.segmenter import SYNTHETIC_CLASS_IDS, SegmenterConfig, default_class_ids
    from gesco.evaluation.segmenter_training import VALIDATION_SEED_OFFSET, SegmenterTrainConfig
    from gesco.semantics.classes import class_table
    from gesco.training.config import DataConfig

    if args.resume and (args.out / "config.json").is_file():
        config = SegmenterTrainConfig.load(args.out)
        return config.replace(max_steps=args.steps) if args.steps else config
    if args.data != "synthetic" and args.root is None:
        raise ValueError(f"--data {args.data} reads a data set from disk: give its folder with --root")
    table_name = "cityscapes" if args.data == "synthetic" else args.data
    if args.classes:
        class_ids = tuple(args.classes)
    else:
        class_ids = SYNTHETIC_CLASS_IDS if args.data == "synthetic" else default_class_ids(class_table(table_name))
    model = SegmenterConfig(
        class_table=table_name, class_ids=class_ids, **({"widths": tuple(args.widths)} if args.widths else {})
    )
    root = None if args.root is None else str(args.root)
    data = DataConfig(
        kind=args.data,
        root=root,
        split="train",
        size=args.size,
        num_scenes=args.scenes,
        seed_offset=args.seed_offset,
        num_workers=args.workers,
    )
    validation = DataConfig(
        kind=args.data,
        root=root,
        split="val",
        size=args.size,
        num_scenes=args.val_scenes,
        seed_offset=VALIDATION_SEED_OFFSET,
    )
    changes = {"max_steps": args.steps} if args.steps else {}
    return SegmenterTrainConfig(
        output_dir=str(args.out),
        data=data,
        validation=validation,
        model=model,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        checkpoint_every=args.checkpoint_every,
        device=args.device,
        seed=args.seed,
        **changes,
    )


def run(args: argparse.Namespace) -> int:
    from gesco.evaluation.segmenter_training import train_segmenter

    config = build_config(args)
    result = train_segmenter(config, resume=args.resume, progress=not args.no_progress)
    summary = f"trained the segmenter to step {result.step} in {result.seconds:.0f} s"
    if result.validation is not None:
        worst = min(result.validation.per_class_iou.items(), key=lambda item: item[1])
        summary += (
            f"; validation mIoU {result.validation.miou:.3f}, pixel accuracy "
            f"{result.validation.pixel_accuracy:.3f}, lowest class IoU {worst[0]} {worst[1]:.3f}"
        )
    print(f"{summary}; segmenter in {result.output_dir / 'model'}")
    return 0
