"""``gesco waterfall``: the block error rate of the coded digital link against Es/N0, as a plot and JSON.

One curve per (modulation, channel) pair at the given LDPC rate and block length, each point from
``--blocks`` blocks of random bits (CRC failures counted). Channels: ``awgn`` and ``rayleigh`` (block fading,
perfect CSI), and OFDM over ``ofdm-awgn`` (flat) or a 3GPP TR 38.901 profile (``tdl-a`` .. ``cdl-e``), where
every ``--csi`` and ``--speed`` value gives its own curve (a flat channel ignores the speed). The JSON gives each
curve's Es/N0 at BLER 10 %. Needs the ``digital`` extra (Sionna).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gesco.cli.common import add_ofdm_options, ofdm_options
from gesco.constants import OFDM_MODEL_NAMES

#: ``--channel`` names of the OFDM link -> its channel model (the flat OFDM channel is ``ofdm-awgn``).
OFDM_CHANNELS = {("ofdm-awgn" if m == "awgn" else m): m for m in OFDM_MODEL_NAMES}
#: The BLER at which the JSON reports each curve's Es/N0.
TARGET_BLER = 0.1


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "waterfall",
        help="BLER of the 5G LDPC + QAM link against Es/N0 (plot + JSON)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--modulation", nargs="+", choices=("qpsk", "16qam", "64qam"), default=["qpsk", "16qam"])
    parser.add_argument(
        "--channel", nargs="+", choices=("awgn", "rayleigh", *OFDM_CHANNELS), default=["awgn", "rayleigh"]
    )
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
    add_ofdm_options(parser, several=True)
    parser.add_argument("--out", type=Path, required=True, help="the PNG to write; the JSON goes beside it")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch
    from tqdm.auto import tqdm

    from gesco.channel.digital.config import DigitalConfig
    from gesco.channel.digital.phy import DigitalLink
    from gesco.channel.digital.waterfall import bler_waterfall, plot_bler_waterfall
    from gesco.channel.ofdm.config import OfdmConfig
    from gesco.channel.ofdm.link import OfdmChannel
    from gesco.io import atomic_write_text

    if args.out.suffix != ".png":
        raise ValueError(f"--out must name a .png file, got {args.out}")
    generator = torch.Generator().manual_seed(args.seed)
    curves, links = [], []
    for channel in args.channel:
        for modulation in args.modulation:
            config = DigitalConfig(modulation=modulation, code_rate=args.code_rate, block_bits=args.block_bits)
            if channel not in OFDM_CHANNELS:
                links.append((DigitalLink(config.replace(fading=channel)), None))
                continue
            speeds = [None] if channel == "ofdm-awgn" else args.speed or [None]
            for csi in args.csi or [None]:
                for speed in speeds:
                    options = {**ofdm_options(args), "model": OFDM_CHANNELS[channel], "csi": csi, "speed_kmh": speed}
                    ofdm = OfdmConfig(**{k: v for k, v in options.items() if v is not None})
                    links.append((DigitalLink(config, channel=OfdmChannel(ofdm)), ofdm))
    for link, ofdm in tqdm(links, desc="waterfall", unit="curve"):
        medium = "" if ofdm is None else ofdm.describe()
        curves.append(bler_waterfall(link, args.snr, blocks=args.blocks, generator=generator, medium=medium))
    plot_bler_waterfall(args.out, curves, title=f"5G LDPC, {args.blocks} blocks per point")
    record = [
        {
            "label": c.label,
            "config": c.config.to_dict(),
            "ofdm": None if ofdm is None else ofdm.to_dict(),
            "esn0_db": c.esn0_db.tolist(),
            "bler": c.bler.tolist(),
            "blocks": c.blocks,
            "esn0_db_at_bler_10pct": c.esn0_db_at(TARGET_BLER),
        }
        for c, (_, ofdm) in zip(curves, links, strict=True)
    ]
    atomic_write_text(args.out.with_suffix(".json"), json.dumps(record, indent=1) + "\n")
    print(f"wrote {args.out} and {args.out.with_suffix('.json').name}")
    return 0
