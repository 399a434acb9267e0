"""Options shared by the commands that run the link (sample, transmit): parsed here, built by the library."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from gesco.cli.options import add_sampler_options, sampler_of
from gesco.constants import CHANNEL_NAMES, DEFAULT_COHERENCE_SYMBOLS, MAP_DENOISER_NAMES

if TYPE_CHECKING:
    import numpy as np

    from gesco.channel.base import Channel
    from gesco.channel.quality import ChannelQuality
    from gesco.receiver.pipeline import DiffusionReceiver
    from gesco.receiver.sampling import SamplerConfig


def add_link_options(parser: argparse.ArgumentParser) -> None:
    """Channel, quality, map denoiser, sampler, precision and seed options of every command that runs the link."""
    quality = parser.add_mutually_exclusive_group(required=True)
    quality.add_argument("--psnr", type=float, help="the paper's PSNR label: 100 30 25 20 15 10 5 1 (analog channels)")
    quality.add_argument(
        "--peak-snr-db",
        type=float,
        help="SNR in dB referred to the map's peak value 1 (analog channels: awgn, rayleigh)",
    )
    quality.add_argument(
        "--esn0-db", type=float, help="Es/N0 in dB of unit-power channel symbols (unit-power, digital)"
    )
    parser.add_argument(
        "--channel",
        choices=CHANNEL_NAMES,
        default="awgn",
        help="awgn: the paper's noise on the map values; rayleigh: those values under block fading "
        "(perfect-CSI zero forcing); unit-power: the map as unit-power symbols at an Es/N0; "
        "digital: the map coded losslessly over 5G LDPC + QPSK (needs gesco[digital])",
    )
    parser.add_argument(
        "--fading",
        choices=("awgn", "rayleigh"),
        default=None,
        help="medium of the unit-power and digital channels (default awgn)",
    )
    parser.add_argument(
        "--coherence-symbols",
        type=int,
        default=None,
        help=f"complex symbols per fading coefficient (default {DEFAULT_COHERENCE_SYMBOLS})",
    )
    parser.add_argument(
        "--map-denoiser",
        choices=MAP_DENOISER_NAMES,
        default=None,
        help="fds (the paper's fast denoising) or none; default: the model's own (receiver.json)",
    )
    add_sampler_options(parser)
    parser.add_argument("--seed", type=int, default=0, help="seed of the channel noise and the sampler")


def channel_quality(args: argparse.Namespace) -> ChannelQuality:
    """The quality given on the command line."""
    from gesco.channel.quality import ChannelQuality

    for kind, value in (("psnr_label", args.psnr), ("peak_snr_db", args.peak_snr_db), ("esn0_db", args.esn0_db)):
        if value is not None:
            return ChannelQuality(kind, value)
    raise ValueError("give the channel quality: --psnr, --peak-snr-db or --esn0-db")


def build_link_channel(args: argparse.Namespace) -> Channel:
    """The channel of ``--channel`` with its options."""
    from gesco.channel.registry import build_channel

    if args.coherence_symbols is not None and args.coherence_symbols < 1:
        raise ValueError(f"--coherence-symbols must be a positive number of symbols, got {args.coherence_symbols}")
    if args.channel == "digital":
        from gesco.channel.digital.config import DigitalConfig

        digital = DigitalConfig(
            fading=args.fading or "awgn", coherence_symbols=args.coherence_symbols or DEFAULT_COHERENCE_SYMBOLS
        )
        return build_channel("digital", link=digital)
    return build_channel(args.channel, fading=args.fading, coherence_symbols=args.coherence_symbols)


def sampler_config(args: argparse.Namespace, receiver: DiffusionReceiver) -> SamplerConfig:
    """The model's default sampler with the command line's overrides."""
    return sampler_of(args, receiver.config.sampler)


def write_png(path: Path, picture: np.ndarray) -> Path:
    """uint8 (H, W, 3) or (H, W) -> PNG, atomically."""
    from PIL import Image

    from gesco.io import atomic_save

    atomic_save(path, lambda tmp: Image.fromarray(picture).save(tmp, format="PNG"))
    return path
