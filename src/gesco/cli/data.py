"""``gesco data``: make and inspect data sets.

Sub-commands:

- ``gesco data synth --layout {cityscapes,coco-stuff,ade20k,folder} --out DIR --n N [--size 64x128]
  [--seed S] [--split train]``: write N synthetic street scenes (seeds S .. S+N-1) in a data set
  layout, ready for the matching loader. Use disjoint seed ranges for train and val.
- ``gesco data preview --out preview.png [--scenes 3] [--psnr 100 10 5 1] [--seed S] [--size 64x128]``:
  a figure of synthetic scenes, their maps, the maps received at each PSNR label, and the FDS outputs.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from pathlib import Path

from gesco.cli.options import parse_size  # also imported from here by gesco.cli.train_segmenter
from gesco.constants import DATA_LAYOUTS, EVALUATION_SEED_OFFSET


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "data",
        help="make and inspect data sets",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="data_command", metavar="DATA_COMMAND", required=True)

    synth = commands.add_parser("synth", help="write synthetic street scenes in a data set layout")
    synth.add_argument("--layout", choices=DATA_LAYOUTS, required=True, help="on-disk layout to write")
    synth.add_argument("--out", type=Path, required=True, help="data set root folder")
    synth.add_argument("--n", type=int, required=True, help="number of scenes")
    synth.add_argument("--size", type=parse_size, default=(64, 128), help="HEIGHTxWIDTH (default 64x128)")
    synth.add_argument("--seed", type=int, default=0, help="seed of the first scene (default 0)")
    synth.add_argument("--riders", action="store_true", help="scenes with cyclists (rider and bicycle classes) too")
    synth.add_argument(
        "--split",
        choices=("train", "val"),
        default=None,
        help="split to write (default train; the folder layout has no splits)",
    )
    synth.add_argument(
        "--ade20k-layout",
        choices=("challenge", "beside"),
        default="challenge",
        help="ADE20K variant: ADEChallengeData2016 folders, or *_seg.png beside each .jpg",
    )

    preview = commands.add_parser("preview", help="figure: scenes, maps, received maps and FDS at several PSNRs")
    preview.add_argument("--out", type=Path, default=Path("preview.png"), help="PNG to write (default preview.png)")
    preview.add_argument("--scenes", type=int, default=3, help="rows of the figure (default 3)")
    preview.add_argument("--psnr", type=float, nargs="+", default=[100, 10, 5, 1], help="paper PSNR labels")
    preview.add_argument(
        "--seed",
        type=int,
        default=EVALUATION_SEED_OFFSET,
        help=f"seed of the first scene and of the noise (default {EVALUATION_SEED_OFFSET})",
    )
    preview.add_argument("--size", type=parse_size, default=(64, 128), help="HEIGHTxWIDTH (default 64x128)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return SUBCOMMANDS[args.data_command](args)


def _run_synth(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from gesco.datasets import (
        SyntheticScene,
        SyntheticStreets,
        write_ade20k,
        write_cityscapes,
        write_coco_stuff,
        write_folder,
    )
    from gesco.io import output_folder

    if args.n < 1:
        raise ValueError(f"--n must be at least 1, got {args.n}")
    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {args.seed}")
    if args.layout == "folder" and args.split is not None:
        raise ValueError("the folder layout has no splits: drop --split and give each split its own --out")
    split = args.split or "train"
    streets = SyntheticStreets(*args.size, riders=args.riders)

    def scenes() -> Iterator[SyntheticScene]:
        for seed in tqdm(range(args.seed, args.seed + args.n), desc=f"synth {args.layout}", unit="scene"):
            yield streets.scene(seed)

    writers: dict[str, Callable[[Path], list[Path]]] = {
        "cityscapes": lambda out: write_cityscapes(out, split, scenes()),
        "coco-stuff": lambda out: write_coco_stuff(out, split, scenes()),
        "ade20k": lambda out: write_ade20k(out, split, scenes(), layout=args.ade20k_layout),
        "folder": lambda out: write_folder(out, scenes()),
    }
    # the scenes are written aside and merged into --out at the end (its other splits stay), so an interrupted
    # run leaves no half-written split behind
    with output_folder(args.out) as staging:
        written = writers[args.layout](staging)
    where = args.out if args.layout == "folder" else f"{args.out} (split {split})"
    print(
        f"wrote {len(written)} scenes (seeds {args.seed}..{args.seed + args.n - 1}, "
        f"{args.size[0]}x{args.size[1]}) in the {args.layout} layout to {where}"
    )
    return 0


def _run_preview(args: argparse.Namespace) -> int:
    from gesco.evaluation.link_preview import write_link_preview

    if args.scenes < 1:
        raise ValueError(f"--scenes must be at least 1, got {args.scenes}")
    path = write_link_preview(args.out, scenes=args.scenes, psnrs=args.psnr, seed=args.seed, size=args.size)
    print(f"wrote {path}")
    return 0


SUBCOMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {"synth": _run_synth, "preview": _run_preview}
