"""``gesco convert-official``: turn an official GESCO/SDM checkpoint (``*.pt``) into a gesco receiver folder.

The folder (``receiver.json`` + ``unet/``) works with ``gesco sample`` and ``gesco transmit``:
the class table follows from the label channels (36 Cityscapes, 184 COCO-Stuff, 151 ADE20K),
the edge rule is the official 8-bit one the released models were trained with, and the
default sampler is DDIM-50 with the paper's guidance scale.

A checkpoint does not store its image size: it comes from ``--config`` when that names one of the paper's
presets (cityscapes 256x512, coco-stuff and ade20k 256x256) or from ``--image-size``, which wins.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gesco.cli.options import parse_size


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "convert-official",
        help="convert an official GESCO/SDM UNet checkpoint to a gesco model folder",
        description=(
            "Reads a guided-diffusion state dict (keys optionally prefixed 'model.'), renames it to gesco's "
            "layers, drops the encoder's unused spade_norm, and writes a receiver folder (receiver.json + unet/). "
            "The image size comes from a paper preset given as --config (cityscapes 256x512, coco-stuff and "
            "ade20k 256x256) or from --image-size; without either the conversion stops and asks for it."
        ),
    )
    parser.add_argument("checkpoint", type=Path, help="official state dict, e.g. ema_0.9999_190000.pt")
    parser.add_argument("output_dir", type=Path, help="folder to write (created if needed)")
    parser.add_argument(
        "--config",
        help="UNet preset name (cityscapes, coco-stuff, ade20k, small64, official-tiny) or a UNetConfig JSON; "
        "default: read the architecture off the weights",
    )
    parser.add_argument(
        "--image-size",
        type=parse_size,
        default=None,
        help="HEIGHTxWIDTH the model was trained at; required unless --config names a paper preset "
        "(each side a multiple of the UNet's downsampling, 32 for the paper's models)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gesco.receiver.convert_official import convert_official_checkpoint

    converted = convert_official_checkpoint(
        args.checkpoint, args.output_dir, config=args.config, image_size=args.image_size
    )
    height, width = converted.receiver.config.image_size
    print(
        f"wrote {converted.path} ({converted.parameters:,} parameters, {height}x{width} images); dropped "
        f"{len(converted.dropped_keys)} unused encoder spade_norm tensors ({converted.dropped_parameters:,} parameters)"
    )
    return 0
