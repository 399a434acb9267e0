"""Options shared by the commands that run the link (sample, transmit): parsed here, built by the library."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from gesco.cli.options import add_map_denoiser_option, add_sampler_options, finite_float, parse_seed, sampler_of
from gesco.constants import CHANNEL_NAMES, DEFAULT_COHERENCE_SYMBOLS, OFDM_MODEL_NAMES

if TYPE_CHECKING:
    import numpy as np

    from gesco.channel.base import Channel
    from gesco.channel.quality import ChannelQuality
    from gesco.receiver.pipeline import DiffusionReceiver
    from gesco.receiver.sampling import SamplerConfig


def add_link_options(parser: argparse.ArgumentParser) -> None:
    """Channel, quality, map denoiser, sampler, precision and seed options of every command that runs the link."""
    add_channel_options(parser)
    add_map_denoiser_option(parser)
    add_sampler_options(parser)
    parser.add_argument("--seed", type=parse_seed, default=0, help="seed of the channel noise and the sampler")


def add_channel_options(parser: argparse.ArgumentParser) -> None:
    """The channel and its quality: what :func:`build_link_channel` and :func:`channel_quality` read."""
    quality = parser.add_mutually_exclusive_group(required=True)
    quality.add_argument(
        "--psnr", type=finite_float, help="the paper's PSNR label: 100 30 25 20 15 10 5 1 (analog channels)"
    )
    quality.add_argument(
        "--peak-snr-db",
        type=finite_float,
        help="SNR in dB referred to the map's peak value 1 (analog channels: awgn, rayleigh)",
    )
    quality.add_argument(
        "--esn0-db", type=finite_float, help="Es/N0 in dB of unit-power channel symbols (unit-power, digital)"
    )
    parser.add_argument(
        "--channel",
        choices=CHANNEL_NAMES,
        default="awgn",
        help="awgn: the paper's noise on the map values; rayleigh: those values under block fading "
        "(perfect-CSI zero forcing); unit-power: the map as unit-power symbols at an Es/N0; "
        "digital: the map coded losslessly over 5G LDPC + QPSK (needs gesco[digital]); ofdm, ofdm-digital: the "
        "unit-power map or the coded map over OFDM through a 3GPP channel (--ofdm-model, needs gesco[digital]); "
        "ofdm-official: the official one-hot bits as QPSK over OFDM (N_FFT 256, CP 32) through a frequency "
        "response (--frequency-response), zero forcing, hard decisions",
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
    add_ofdm_options(parser)
    parser.add_argument(
        "--frequency-response",
        type=Path,
        default=None,
        help="ofdm-official: .npy/.npz of complex responses (N_FFT,) or (R, N_FFT), one row drawn per map "
        "(format: gesco.channel.ofdm.official); default a synthetic frequency-selective response per map",
    )


def add_ofdm_options(parser: argparse.ArgumentParser, *, several: bool = False) -> None:
    """The OFDM link's channel model, delay spread, carrier, speed, CSI, equaliser and antennas (default: those of
    ``gesco.channel.ofdm.OfdmConfig``); with ``several``, ``--csi`` and ``--speed`` take lists (one curve each)
    and the channel models come from the command's own channel list."""
    many = {"nargs": "+"} if several else {}
    if not several:
        parser.add_argument(
            "--ofdm-model", choices=OFDM_MODEL_NAMES, default=None, help="OFDM channel model (default tdl-a)"
        )
    parser.add_argument("--speed", type=float, default=None, **many, help="OFDM: UE speed in km/h (default 3)")
    parser.add_argument(
        "--delay-spread", type=float, default=None, help="OFDM: RMS delay spread in ns (default 100, 'nominal')"
    )
    parser.add_argument(
        "--carrier-frequency", type=float, default=None, help="OFDM: carrier frequency in GHz (default 3.5)"
    )
    parser.add_argument(
        "--csi",
        choices=("ls", "perfect"),
        default=None,
        **many,
        help="OFDM: LS channel estimates from pilots, interpolated (default), or perfect channel knowledge",
    )
    parser.add_argument("--equalizer", choices=("lmmse", "zf"), default=None, help="OFDM equaliser (default lmmse)")
    parser.add_argument("--antennas", type=int, choices=(1, 2), default=None, help="OFDM: 1 (SISO) or 2 (2x2 MIMO)")


def ofdm_options(args: argparse.Namespace) -> dict:
    """The options of :func:`add_ofdm_options` as ``OfdmConfig`` fields (None where not given)."""
    return {
        "model": getattr(args, "ofdm_model", None),
        "speed_kmh": args.speed,
        "delay_spread_ns": args.delay_spread,
        "carrier_frequency_ghz": args.carrier_frequency,
        "csi": args.csi,
        "equalizer": args.equalizer,
        "antennas": args.antennas,
    }


def channel_label(name: str, channel: Channel) -> str:
    """``name`` with what the channel says about itself, e.g. "ofdm (analog map, TDL-A 100 ns 3 km/h, ...)"."""
    describe = getattr(channel, "describe", None)
    return f"{name} ({describe()})" if describe else name


def channel_settings(channel: Channel) -> dict | None:
    """The OFDM link's settings of an OFDM channel (for records), else None."""
    from gesco.channel.ofdm.config import OfdmConfig

    config = getattr(channel, "config", None)
    return config.to_dict() if isinstance(config, OfdmConfig) else None


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

        ofdm_given = sorted(k for k, v in ofdm_options(args).items() if v is not None)
        if ofdm_given:
            raise ValueError(f"--channel digital takes no OFDM option {ofdm_given}; use --channel ofdm-digital")

        digital = DigitalConfig(
            fading=args.fading or "awgn", coherence_symbols=args.coherence_symbols or DEFAULT_COHERENCE_SYMBOLS
        )
        return build_channel("digital", link=digital)
    # Options a channel does not take (e.g. --speed on awgn) are refused by name by the registry.
    return build_channel(
        args.channel,
        fading=args.fading,
        coherence_symbols=args.coherence_symbols,
        frequency_response=args.frequency_response,
        **ofdm_options(args),
    )


def sampler_config(args: argparse.Namespace, receiver: DiffusionReceiver) -> SamplerConfig:
    """The model's default sampler with the command line's overrides."""
    return sampler_of(args, receiver.config.sampler)


def write_png(path: Path, picture: np.ndarray) -> Path:
    """uint8 (H, W, 3) or (H, W) -> PNG, atomically."""
    from PIL import Image

    from gesco.io import atomic_save

    atomic_save(path, lambda tmp: Image.fromarray(picture).save(tmp, format="PNG"))
    return path
