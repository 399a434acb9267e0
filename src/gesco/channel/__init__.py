"""Channels: the paper's analog AWGN on the map, Rayleigh block fading, SNR/PSNR conversions."""

from gesco.channel.awgn import AWGNChannel, Received
from gesco.channel.fading import RayleighBlockFading
from gesco.channel.snr import (
    NOISE_AWARE_TRAINING_SIGMAS,
    PAPER_PSNR_SIGMA,
    paper_sigma,
    resolve_sigma,
    sigma_to_snr_db,
    snr_db_to_sigma,
)

__all__ = [
    "NOISE_AWARE_TRAINING_SIGMAS",
    "PAPER_PSNR_SIGMA",
    "AWGNChannel",
    "RayleighBlockFading",
    "Received",
    "paper_sigma",
    "resolve_sigma",
    "sigma_to_snr_db",
    "snr_db_to_sigma",
]
