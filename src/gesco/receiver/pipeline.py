"""A trained receiver as one folder: the UNet, its diffusion, its class table and default sampler.

Layout (in the spirit of diffusers' ``save_pretrained``)::

    DIR/receiver.json   ReceiverConfig: class table, edge rule, image size, diffusion, sampler, map denoiser,
                        training noise
    DIR/unet/           GescoUNet.save_pretrained: config.json + model.safetensors
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from gesco.config import Config
from gesco.io import output_folder
from gesco.receiver.diffusion import DiffusionConfig
from gesco.receiver.map_denoisers import MAP_DENOISERS, learned_denoiser_folder
from gesco.receiver.noise_level import NoiseConditioned
from gesco.receiver.sampling import SamplerConfig, sample
from gesco.receiver.unet import GescoUNet, UNetConfig
from gesco.receiver.unet.config import check_image_size
from gesco.semantics.classes import ClassTable, class_table


@dataclass(frozen=True)
class ReceiverConfig(Config):
    """How a receiver model was trained and how it samples by default."""

    config_name = "receiver.json"

    class_table: str = "cityscapes"
    edge_rule: str = "instance"
    image_size: tuple[int, int] = (64, 128)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    sampler: SamplerConfig = field(default_factory=lambda: SamplerConfig(sampler="dpmpp", steps=20, guidance=2.0))
    #: The map denoiser this model is meant to be fed through (``gesco.receiver.map_denoisers.MAP_DENOISERS``, or
    #: a learned map denoiser's shipped name): "fds" for the noise-aware GESCO receiver, "none" for the SDM-style
    #: one trained on clean maps.
    map_denoiser: str = "fds"
    #: How the conditioning maps were made noisy in training ("paper", "channel" or "none").
    training_noise: str = "paper"

    def __post_init__(self) -> None:
        if self.map_denoiser not in MAP_DENOISERS:
            learned_denoiser_folder(self.map_denoiser)


class DiffusionReceiver:
    """The image generator of a receiver: conditioning map -> images, with the default sampler.

    Use it as the ``image_generator`` of :class:`gesco.receiver.receiver.Receiver`.
    """

    def __init__(self, unet: GescoUNet, config: ReceiverConfig):
        if unet.config.label_channels != class_table(config.class_table).num_channels:
            raise ValueError(
                f"the UNet takes {unet.config.label_channels} label channels but the {config.class_table} "
                f"table has {class_table(config.class_table).num_channels}"
            )
        self.unet = unet.eval()
        self.config = config

    @property
    def table(self) -> ClassTable:
        return class_table(self.config.class_table)

    @property
    def device(self) -> torch.device:
        """Where the UNet's inputs go: its parameters' device; the CPU for an exported backend
        (``gesco.receiver.backends``), which has no torch parameters."""
        first = next(self.unet.parameters(), None) if isinstance(self.unet, torch.nn.Module) else None
        return torch.device("cpu") if first is None else first.device

    def __call__(
        self,
        condition: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
        x_T: torch.Tensor | None = None,
        sampler: SamplerConfig | None = None,
        sigma: torch.Tensor | None = None,
        progress: bool = False,
    ) -> torch.Tensor:
        """float (B, C, H, W) conditioning maps -> float (B, 3, H, W) images in [-1, 1], on ``condition``'s device
        (the UNet runs on its own, :attr:`device`).

        ``sampler`` overrides the model's default sampler for this call; ``x_T`` (B, 3, H, W) is the starting
        noise (drawn from ``generator`` when None). ``sigma`` (B,), the channel's noise level, is read by a
        noise-conditioned network (``UNetConfig.noise_conditioning``) and ignored by the paper's.

        Raises:
            ValueError: ``sampler`` is "lcm" for a receiver that is not consistency-distilled (its default sampler
                is not "lcm"), or another sampler for one that is.
        """
        if condition.dim() != 4 or condition.shape[1] != self.unet.config.label_channels:
            raise ValueError(
                f"conditioning maps must have shape (B, {self.unet.config.label_channels}, H, W) for this model, "
                f"got {tuple(condition.shape)}"
            )
        check_image_size(tuple(condition.shape[-2:]), self.unet.config)
        sampler = sampler or self.config.sampler
        consistency = self.config.sampler.sampler == "lcm"
        if (sampler.sampler == "lcm") != consistency:
            # a consistency model's output is not a diffusion model's epsilon, and the other way round: the
            # mismatched sampler would run and return meaningless images
            raise ValueError(
                f"sampler {sampler.sampler!r} does not fit this receiver: "
                + (
                    "it is consistency-distilled (gesco distill-consistency) and samples with 'lcm' only"
                    if consistency
                    else "'lcm' samples only a consistency-distilled receiver (gesco distill-consistency)"
                )
            )
        model = self.unet
        if self.unet.config.noise_conditioning:
            if sigma is None:
                raise ValueError(
                    "this receiver is conditioned on the channel's noise level: give sigma (the Receiver passes "
                    "Received.sigma, or its blind estimate)"
                )
            model = NoiseConditioned(self.unet, torch.as_tensor(sigma, dtype=torch.float32))
        # the network runs where its weights are; the images go back where the maps came from
        with torch.no_grad():
            images = sample(
                model,
                condition.to(self.device),
                sampler,
                diffusion=self.config.diffusion,
                generator=generator,
                x_T=None if x_T is None else x_T.to(self.device),
                progress=progress,
            ).sample
        return images.to(condition.device)

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``receiver.json`` and ``unet/`` as one set, built aside and moved in with ``receiver.json`` last:
        a failed write leaves no folder that loads as a receiver."""
        if not isinstance(self.unet, GescoUNet):
            raise TypeError(
                f"this receiver runs an exported backend ({type(self.unet).__name__}), which has no torch weights "
                "to save: save the receiver it was made from"
            )
        directory = Path(directory)
        with output_folder(directory, last=[ReceiverConfig.config_name]) as staging:
            self.unet.save_pretrained(staging / "unet")
            self.config.save(staging)
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> DiffusionReceiver:
        directory = Path(directory)
        if not (directory / ReceiverConfig.config_name).is_file():
            raise FileNotFoundError(f"{directory} is not a gesco receiver folder (no {ReceiverConfig.config_name})")
        return cls(GescoUNet.from_pretrained(directory / "unet"), ReceiverConfig.load(directory))


def receiver_from_weights(
    unet_config: UNetConfig, weights: dict[str, torch.Tensor], config: ReceiverConfig
) -> DiffusionReceiver:
    """A receiver from a UNet config and a state dict (e.g. the EMA weights of a training run)."""
    return DiffusionReceiver(GescoUNet.from_state_dict(weights, unet_config), config)
