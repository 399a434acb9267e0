"""``gesco waterfall``: the block error rate of the coded digital link against Es/N0, as a plot and JSON.

One curve per (modulation, channel) pair at the given LDPC rate and block length, each point from
``--blocks`` blocks of random bits (CRC failures counted). Needs the ``digital`` extra (Sionna).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "waterfall",
        help="BLER of the 5G LDPC + QAM link against Es/N0 (plot + JSON)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--modulation", nargs="+", choices=("qpsk", "16qam", "64qam"), default=["qpsk", "16qam"])
    parser.add_argument("--channel", nargs="+", choices=("awgn", "rayleigh"), default=["awgn", "rayleigh"])
    parser.add_argument("--code-rate", type=float, default=0.5)
    parser.add_argument("--block-bits", type=int, default=1024, help="LDPC information bits per block, CRC included")
    parser.add_argument(
        "--snr",
        type=float,
        nargs="+",
        default=[x / 2 for x in range(-8, 41)],
        help="Es/N0 points in dB (default -4 .. 20 in steps of 0.5)",
    )
    parser.add_argument("--blocks", type=int, default=200, help="blocks per point (default 200)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True, help="the PNG to write; the JSON goes beside it")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch
    from tqdm.auto import tqdm

    from gesco.channel.digital.config import DigitalConfig
    from gesco.channel.digital.phy import DigitalLink
    from gesco.channel.digital.waterfall import bler_waterfall, plot_bler_waterfall
    from gesco.io import atomic_write_text

    if args.out.suffix != ".png":
        raise ValueError(f"--out must name a .png file, got {args.out}")
    generator = torch.Generator().manual_seed(args.seed)
    curves = []
    pairs = [(m, c) for c in args.channel for m in args.modulation]
    for modulation, channel in tqdm(pairs, desc="waterfall", unit="curve"):
        config = DigitalConfig(
            modulation=modulation, code_rate=args.code_rate, block_bits=args.block_bits, fading=channel
        )
        curves.append(bler_waterfall(DigitalLink(config), args.snr, blocks=args.blocks, generator=generator))
    plot_bler_waterfall(args.out, curves, title=f"5G LDPC, {args.blocks} blocks per point")
    record = [
        {
            "label": c.label,
            "config": c.config.to_dict(),
            "esn0_db": c.esn0_db.tolist(),
            "bler": c.bler.tolist(),
            "blocks": c.blocks,
        }
        for c in curves
    ]
    atomic_write_text(args.out.with_suffix(".json"), json.dumps(record, indent=1) + "\n")
    print(f"wrote {args.out} and {args.out.with_suffix('.json').name}")
    return 0
