"""The receiver's map-denoiser slot: received map -> the map that conditions the image generator.

A map denoiser is any ``nn.Module`` called as ``denoiser(received) -> condition``: it gets the whole
:class:`~gesco.channel.base.Received` (values, transmitted mask, sigma, known pixels) and returns float
(B, C, H, W) with the untransmitted channels at 0. Two are built in and registered by name in
``MAP_DENOISERS``: ``"fds"`` (the paper's fast denoising, the default) and ``"none"``. A learned map denoiser
(:class:`gesco.receiver.learned_denoiser.LearnedMapDenoiser`) is named by its folder or its shipped name, so
configs and command lines name it like the built-in ones.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import MappingProxyType

import torch
import torch.nn.functional as F
from torch import nn

from gesco.channel.base import Received, check_finite
from gesco.weights_folder import model_folder


def fast_denoise(values: torch.Tensor, transmitted: torch.Tensor) -> torch.Tensor:
    """The paper's FDS: 3x3 mean filter (zero padding counted), then 3x3 max filter, on transmitted channels.

    Args:
        values: float (B, C, H, W) received map.
        transmitted: bool (B, C): channels that crossed the link; the others come out 0.

    Returns:
        float (B, C, H, W), same dtype; no clipping or thresholding.
    """
    if values.dim() != 4:
        raise ValueError(f"FDS takes a (B, C, H, W) map, got shape {tuple(values.shape)}")
    if transmitted.shape != values.shape[:2]:
        raise ValueError(
            f"transmitted mask shape {tuple(transmitted.shape)} does not match map {tuple(values.shape[:2])}"
        )
    check_finite("received map", values)
    mean = F.avg_pool2d(values, 3, stride=1, padding=1, count_include_pad=True)
    peak = F.max_pool2d(mean, 3, stride=1, padding=1)
    return peak * transmitted[:, :, None, None].to(peak.dtype)


def transmitted_values(received: Received) -> torch.Tensor:
    """The received values with every untransmitted channel at 0."""
    payload = received.payload
    return payload.values * payload.transmitted[:, :, None, None].to(payload.values.dtype)


class FastDenoiser(nn.Module):
    """The paper's FDS (3x3 mean, then 3x3 max) as the receiver's map denoiser."""

    def forward(self, received: Received) -> torch.Tensor:
        return fast_denoise(received.payload.values, received.payload.transmitted)


class NoDenoiser(nn.Module):
    """The received map as it is (untransmitted channels 0): the SDM comparison and the digital link."""

    def forward(self, received: Received) -> torch.Tensor:
        check_finite("received map", received.payload.values)
        return transmitted_values(received)


#: name -> map denoiser class, for configs and the CLI.
MAP_DENOISERS = MappingProxyType({"fds": FastDenoiser, "none": NoDenoiser})


def learned_denoiser_folder(name: str) -> Path:
    """The folder of the learned map denoiser ``name`` (a path or a shipped model's name).

    Raises:
        ValueError: ``name`` is neither, or its folder holds no learned map denoiser.
    """
    folder = model_folder(name)
    if folder is None:
        raise ValueError(
            f"unknown map denoiser {name!r}; choose one of {list(MAP_DENOISERS)}, a learned map denoiser's "
            "folder or shipped name"
        )
    config = folder / "config.json"
    if not config.is_file() or json.loads(config.read_text()).get("_class_name") != "MapDenoiserConfig":
        raise ValueError(f"{name!r} is not a learned map denoiser's folder (no config.json of a MapDenoiserConfig)")
    return folder


def build_map_denoiser(choice: str | nn.Module) -> nn.Module:
    """A registered map denoiser by name, a learned one by folder or shipped name, or the module given."""
    if isinstance(choice, nn.Module):
        return choice
    if choice in MAP_DENOISERS:
        return MAP_DENOISERS[choice]()
    from gesco.receiver.learned_denoiser import LearnedMapDenoiser

    return LearnedMapDenoiser.from_pretrained(learned_denoiser_folder(choice))
