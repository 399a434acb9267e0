"""Calibration inputs for int8 quantisation: what the UNet really sees while a receiver samples.

Q-GESCO calibrates on noisy maps at the sampler's timesteps; so does this, with every input made by gesco's own
blocks (in link order, without importing the link, which sits to the right of the receiver):

1. synthetic training-range scenes (seeds below the held-out ``EVALUATION_SEED_OFFSET``);
2. Transmitter -> AWGN channel at each paper PSNR label -> the receiver's map denoiser (FDS by default): the
   conditioning map y and the channel's sigma;
3. the scene's image noised by ``q_sample`` to the timesteps of the receiver's own sampler: x_t and t;
4. with guidance, the same x_t and t beside the all-zero map, the sampler's unconditional pass; a
   guidance-distilled student runs no such pass, and takes the sampler's scale s as an input instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from gesco.channel.awgn import AWGNChannel
from gesco.channel.quality import ChannelQuality
from gesco.config import Config
from gesco.constants import EVALUATION_SEED_OFFSET
from gesco.datasets.base import collate
from gesco.datasets.synthetic import SyntheticStreetsDataset
from gesco.receiver.diffusion import GaussianDiffusion
from gesco.receiver.noise_level import received_sigma
from gesco.receiver.receiver import Receiver
from gesco.receiver.sampling import build_scheduler
from gesco.semantics.maps import SemanticMap
from gesco.semantics.transmitter import Transmitter

if TYPE_CHECKING:
    from gesco.receiver.pipeline import DiffusionReceiver

#: First synthetic scene seed of the default calibration set: inside the training range, far from the
#: held-out evaluation seeds (1,000,000 and up), so no evaluated scene tunes the quantiser.
CALIBRATION_SEED = 900_000


@dataclass(frozen=True)
class UNetInputs:
    """One batch of UNet inputs: x (B, C, H, W) float32, t (B,) long, y (B, K, H, W) float32, sigma (B,) float32
    or None (read only by a noise-conditioned network), guidance (B,) float32 scales or None (read only by a
    guidance-distilled student)."""

    x: torch.Tensor
    t: torch.Tensor
    y: torch.Tensor
    sigma: torch.Tensor | None = None
    guidance: torch.Tensor | None = None


@dataclass(frozen=True)
class CalibrationConfig(Config):
    """Which scenes, channel qualities and seeds make the calibration set.

    Attributes:
        scenes: synthetic scenes, from ``first_seed`` on.
        first_seed: seed of the first scene; the scenes must end below the held-out seeds (1,000,000).
        psnrs: paper PSNR labels each scene is sent at.
        seed: seed of the channel noise, the timestep choice and the diffusion noise.
    """

    scenes: int = 8
    first_seed: int = CALIBRATION_SEED
    psnrs: tuple[float, ...] = (100.0, 10.0, 5.0, 1.0)
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.scenes, bool) or not isinstance(self.scenes, int) or self.scenes < 1:
            raise ValueError(f"CalibrationConfig.scenes must be a positive int, got {self.scenes!r}")
        if self.first_seed < 0 or self.first_seed + self.scenes > EVALUATION_SEED_OFFSET:
            raise ValueError(
                f"calibration scenes {self.first_seed}..{self.first_seed + self.scenes - 1} must lie in 0.."
                f"{EVALUATION_SEED_OFFSET - 1}: seeds from {EVALUATION_SEED_OFFSET} on are the held-out evaluation "
                "scenes, and calibrating on them would leak them into the quantiser"
            )
        if not self.psnrs:
            raise ValueError("CalibrationConfig.psnrs must name at least one PSNR label, e.g. (100, 10, 5, 1)")


@torch.no_grad()
def calibration_inputs(receiver: DiffusionReceiver, config: CalibrationConfig | None = None) -> list[UNetInputs]:
    """Batches of one input each (``scenes x len(psnrs)`` conditional ones, as many unconditional ones with
    guidance; a guidance-distilled student's carry the sampler's scale instead), at the receiver's image size,
    for :func:`gesco.receiver.backends.compile_unet`."""
    config = config or CalibrationConfig()
    height, width = receiver.config.image_size
    dataset = SyntheticStreetsDataset(config.scenes, config.first_seed, height=height, width=width)
    batch = collate([dataset[i] for i in range(config.scenes)])
    semantic_map = SemanticMap(batch.labels, receiver.table, batch.instances, receiver.config.edge_rule)
    payload = Transmitter()(semantic_map)
    map_stage = Receiver(None, map_denoiser=receiver.config.map_denoiser)
    generator = torch.Generator().manual_seed(config.seed)

    process = GaussianDiffusion(receiver.config.diffusion)
    scheduler, timestep_map = build_scheduler(receiver.config.sampler, process)
    timesteps = timestep_map[torch.as_tensor(scheduler.timesteps, dtype=torch.long)]
    scale = receiver.config.sampler.guidance
    student = receiver.unet.config.guidance_conditioning
    guidance = torch.full((1,), float(scale)) if student else None
    unconditional_pass = scale != 1.0 and not student

    inputs = []
    for psnr in config.psnrs:
        received = AWGNChannel()(payload, ChannelQuality.psnr_label(psnr), generator=generator)
        condition = map_stage(received).condition
        sigma = received_sigma(received, "channel").float()
        # a random step per (scene, PSNR) spreads the few inputs over the whole trajectory
        steps = timesteps[torch.randint(len(timesteps), (config.scenes,), generator=generator)]
        noise = torch.randn(batch.image.shape, generator=generator)
        x_t = process.q_sample(batch.image, steps, noise)
        for i in range(config.scenes):
            one = slice(i, i + 1)
            sigma_i = sigma[one] if receiver.unet.config.noise_conditioning else None
            inputs.append(UNetInputs(x_t[one], steps[one], condition[one], sigma_i, guidance))
            if unconditional_pass:
                inputs.append(UNetInputs(x_t[one], steps[one], torch.zeros_like(condition[one]), sigma_i))
    return inputs
