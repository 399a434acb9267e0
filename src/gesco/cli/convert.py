"""``gesco convert-official``: turn an official GESCO/SDM checkpoint (``*.pt``) into a gesco receiver folder.

The folder (``receiver.json`` + ``unet/``) works with ``gesco sample`` and ``gesco transmit``:
the class table follows from the label channels (36 Cityscapes, 184 COCO-Stuff, 151 ADE20K),
the edge rule is the official 8-bit one the released models were trained with, and the
default sampler is DDIM-50 with the paper's guidance scale.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "convert-official",
        help="convert an official GESCO/SDM UNet checkpoint to a gesco model folder",
        description=(
            "Reads a guided-diffusion state dict (keys optionally prefixed 'model.'), renames it to gesco's "
            "layers, drops the encoder's unused spade_norm, and writes a receiver folder (receiver.json + unet/)."
        ),
    )
    parser.add_argument("checkpoint", type=Path, help="official state dict, e.g. ema_0.9999_190000.pt")
    parser.add_argument("output_dir", type=Path, help="folder to write (created if needed)")
    parser.add_argument(
        "--config",
        help="UNet preset name (cityscapes, coco-stuff, ade20k, small64, official-tiny) or a UNetConfig JSON; "
        "default: read the architecture off the weights",
    )
    parser.add_argument("--image-size", default=None, help="HEIGHTxWIDTH the model was trained at "
                        "(default 256x512 for Cityscapes, 256x256 otherwise)")
    parser.set_defaults(func=run)


#: label channels -> (class table, default image size, guidance scale of the paper)
OFFICIAL_TABLES = {36: ("cityscapes", (256, 512), 2.0), 184: ("coco-stuff", (256, 256), 2.5),
                   151: ("ade20k", (256, 256), 2.5)}


def run(args: argparse.Namespace) -> int:
    from gesco.cli.data import parse_size
    from gesco.receiver.convert_official import convert_official_state_dict, read_official_state_dict
    from gesco.receiver.pipeline import DiffusionReceiver, ReceiverConfig
    from gesco.receiver.sampling import SamplerConfig
    from gesco.receiver.unet import GescoUNet, UNetConfig

    config = UNetConfig.from_preset_or_file(args.config) if args.config else None
    conversion = convert_official_state_dict(read_official_state_dict(args.checkpoint), config)
    model = GescoUNet.from_state_dict(conversion.state_dict, conversion.config, source=str(args.checkpoint))
    channels = conversion.config.label_channels
    if channels not in OFFICIAL_TABLES:
        raise ValueError(f"the checkpoint takes {channels} label channels; official models take one of "
                         f"{sorted(OFFICIAL_TABLES)} (Cityscapes, ADE20K, COCO-Stuff)")
    table, size, guidance = OFFICIAL_TABLES[channels]
    receiver_config = ReceiverConfig(
        class_table=table, edge_rule="official", image_size=parse_size(args.image_size) if args.image_size else size,
        sampler=SamplerConfig(sampler="ddim", steps=50, guidance=guidance), training_noise="paper")
    DiffusionReceiver(model, receiver_config).save_pretrained(args.output_dir)
    parameters = sum(p.numel() for p in model.parameters())
    print(
        f"wrote {args.output_dir} ({parameters:,} parameters); dropped {len(conversion.dropped_keys)} unused "
        f"encoder spade_norm tensors ({conversion.dropped_parameters:,} parameters)"
    )
    return 0
