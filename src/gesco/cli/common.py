"""Options and helpers shared by the commands that run the link (sample, transmit)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gesco.channel.awgn import AWGNChannel
from gesco.channel.fading import RayleighBlockFading
from gesco.channel.snr import resolve_sigma
from gesco.io import atomic_save
from gesco.receiver.pipeline import DiffusionReceiver
from gesco.receiver.sampling import SAMPLERS, SamplerConfig


def add_link_options(parser: argparse.ArgumentParser) -> None:
    """Channel, sampler and seed options of every command that runs the link."""
    quality = parser.add_mutually_exclusive_group()
    quality.add_argument("--psnr", type=float, default=None, help="paper PSNR label: 100 30 25 20 15 10 5 1 (default 10)")
    quality.add_argument("--snr-db", type=float, default=None, help="any peak SNR in dB instead of a paper label")
    parser.add_argument("--channel", choices=("awgn", "rayleigh"), default="awgn",
                        help="analog channel: AWGN (the paper) or Rayleigh block fading with perfect-CSI equalisation")
    parser.add_argument("--no-fds", action="store_true", help="skip the fast denoising of the received map")
    parser.add_argument("--sampler", choices=SAMPLERS, default=None, help="default: the model's own (receiver.json)")
    parser.add_argument("--steps", type=int, default=None, help="sampling steps (default: the model's)")
    parser.add_argument("--guidance", type=float, default=None, help="classifier-free guidance scale")
    parser.add_argument("--bf16", action="store_true", help="run the network under bfloat16 autocast (faster on CPU)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the channel noise and the sampler")


def channel_quality(args: argparse.Namespace) -> dict[str, float]:
    """The channel keyword (psnr or snr_db) chosen on the command line; PSNR label 10 by default."""
    if args.snr_db is not None:
        return {"snr_db": args.snr_db}
    quality = {"psnr": 10.0 if args.psnr is None else args.psnr}
    resolve_sigma(**quality)  # fail early on an unknown label
    return quality


def build_channel(args: argparse.Namespace) -> torch.nn.Module:
    return AWGNChannel() if args.channel == "awgn" else RayleighBlockFading(equalize=True)


def sampler_config(args: argparse.Namespace, receiver: DiffusionReceiver) -> SamplerConfig:
    """The model's default sampler with the command line's overrides."""
    from gesco.evaluation.sweep import sampler_variant

    config = sampler_variant(receiver.config.sampler, sampler=args.sampler, steps=args.steps, guidance=args.guidance)
    return config.replace(autocast_dtype="bfloat16") if args.bf16 else config


def write_png(path: Path, picture: np.ndarray) -> Path:
    """uint8 (H, W, 3) or (H, W) -> PNG, atomically."""
    atomic_save(path, lambda tmp: Image.fromarray(picture).save(tmp, format="PNG"))
    return path
