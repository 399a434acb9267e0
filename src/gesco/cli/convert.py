"""``gesco convert-official``: turn an official GESCO/SDM checkpoint (``*.pt``) into a gesco model folder."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "convert-official",
        help="convert an official GESCO/SDM UNet checkpoint to a gesco model folder",
        description=(
            "Reads a guided-diffusion state dict (keys optionally prefixed 'model.'), renames it to gesco's "
            "layers, drops the encoder's unused spade_norm, and writes config.json + model.safetensors."
        ),
    )
    parser.add_argument("checkpoint", type=Path, help="official state dict, e.g. ema_0.9999_190000.pt")
    parser.add_argument("output_dir", type=Path, help="folder to write (created if needed)")
    parser.add_argument(
        "--config",
        help="UNet preset name (cityscapes, coco-stuff, ade20k, small64, official-tiny) or a UNetConfig JSON; "
        "default: read the architecture off the weights",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gesco.receiver.convert_official import convert_official_state_dict, read_official_state_dict
    from gesco.receiver.unet import GescoUNet, UNetConfig

    config = UNetConfig.from_preset_or_file(args.config) if args.config else None
    conversion = convert_official_state_dict(read_official_state_dict(args.checkpoint), config)
    model = GescoUNet.from_state_dict(conversion.state_dict, conversion.config, source=str(args.checkpoint))
    model.save_pretrained(args.output_dir)
    parameters = sum(p.numel() for p in model.parameters())
    print(
        f"wrote {args.output_dir} ({parameters:,} parameters); dropped {len(conversion.dropped_keys)} unused "
        f"encoder spade_norm tensors ({conversion.dropped_parameters:,} parameters)"
    )
    return 0
