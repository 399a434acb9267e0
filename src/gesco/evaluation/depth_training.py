"""Training gesco's compact depth network (``gesco train-depth``), resumable exactly.

Recipe: :func:`~gesco.evaluation.depth_network.depth_loss` (scale-invariant log loss plus L1 on log depth)
against the synthetic scenes' depth, clipped to the network's range (the sky is at its far end); flips, colour
jitter and pixel noise as the segmenter's (the depth map flips with the image), because the network must read
regenerated images; with ``appearance_augment``, also :func:`appearance_augment` (blur, swapped colour channels,
objects flattened towards one colour), and with ``texture_swap``,
:func:`~gesco.evaluation.geometry_augment.texture_swap` (regions given another image's texture), so that it reads
depth from the layout rather than from the renderer's textures, which a regenerated image does not keep; AdamW
with warm-up and cosine decay; the EMA weights are exported. With ``regenerated``, a share of the training items
are receivers' regenerations of training scenes, scored against those scenes' depth (domain adaptation to the
images the network will be asked to read). Training scenes are seeds 600,000-699,999 by default, below the
evaluation seeds; held-out scenes from ``VALIDATION_SEED_OFFSET`` are scored (AbsRel, delta_1 up to 80 m, as
``gesco evaluate``) at every checkpoint. The steps, exact resume, checkpoints, EMA, bf16 autocast and
learning-rate schedule are those of the shared loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from gesco.config import Config
from gesco.constants import GEOMETRY_TRAINING_SEED_OFFSET, VALIDATION_SEED_OFFSET
from gesco.datasets import collate
from gesco.evaluation.depth_network import DepthNetConfig, GescoDepthNet, depth_loss
from gesco.evaluation.detector_training import (
    check_geometry_run,
    geometry_datasets,
    geometry_loop_settings,
    initial_network,
)
from gesco.evaluation.geometry_augment import region_index, region_means, texture_swap
from gesco.evaluation.geometry_scoring import DEFAULT_MAX_DEPTH_M
from gesco.evaluation.objects_depth import DepthMeter, DepthScores
from gesco.evaluation.segmenter_training import augment
from gesco.training.config import DataConfig
from gesco.training.ema import EMA
from gesco.training.loop import StepInputs, TrainingLoop


@dataclass(frozen=True)
class DepthTrainConfig(Config):
    """One depth network training run; saved as ``config.json`` in ``output_dir``.

    Attributes (beyond the shared loop's):
        variance_focus, l1_weight: the loss's lambda and L1 weight (see ``depth_loss``).
        appearance_augment: also :func:`appearance_augment` the training images (before ``augment``, whose
            flips would not flip the instance map it reads).
        regenerated, regenerated_share, texture_swap, init_weights: see
            :class:`~gesco.evaluation.detector_training.DetectorTrainConfig` (texture_swap acts first;
            init_weights names a depth network).
    """

    output_dir: str = "runs/depth"
    data: DataConfig = field(
        default_factory=lambda: DataConfig(
            kind="synthetic", num_scenes=100_000, seed_offset=GEOMETRY_TRAINING_SEED_OFFSET
        )
    )
    validation: DataConfig = field(
        default_factory=lambda: DataConfig(kind="synthetic", num_scenes=200, seed_offset=VALIDATION_SEED_OFFSET)
    )
    model: DepthNetConfig = field(default_factory=DepthNetConfig)
    batch_size: int = 16
    max_steps: int = 6000
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 200
    lr_schedule: str = "cosine"
    variance_focus: float = 0.85
    l1_weight: float = 1.0
    augment: bool = True
    appearance_augment: bool = False
    texture_swap: bool = False
    regenerated: tuple[str, ...] = ()
    regenerated_share: float = 0.5
    init_weights: str | None = None
    ema_decay: float = 0.999
    grad_clip: float = 10.0
    mixed_precision: str = "no"
    seed: int = 0
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    device: str = "cpu"

    def __post_init__(self) -> None:
        check_geometry_run(self)
        if not (0 <= self.variance_focus <= 1 and math.isfinite(self.l1_weight) and self.l1_weight >= 0):
            raise ValueError(
                f"need variance_focus in [0, 1] and l1_weight >= 0, got {self.variance_focus}, {self.l1_weight}"
            )


@dataclass(frozen=True)
class DepthTrainResult:
    step: int
    losses: list[float]
    validation: DepthScores | None
    output_dir: Path
    seconds: float


#: Per image, the chance of each change of :func:`appearance_augment`.
BLUR_CHANCE, CHANNEL_SWAP_CHANCE, FLATTEN_CHANCE = 0.5, 0.5, 0.3
#: Largest blur (Gaussian standard deviation, px at 128 px image width).
MAX_BLUR_PX = 1.5


def appearance_augment(images: torch.Tensor, instances: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Change how a scene looks and keep where everything is: per image, at random, a Gaussian blur (sigma up to
    1.5 px at 128 px width), a permutation of the colour channels, and each region pulled towards its mean colour
    by a random share, which removes its texture. A region is one instance of a thing class (each car, person,
    rider, bicycle) and all pixels of one stuff class (Cityscapes gives stuff no instances: all the image's poles,
    or all its buildings, are one region).

    images: float (B, 3, H, W) in [-1, 1]; instances: int64 (B, H, W) Cityscapes instance ids. Returns the images.
    A depth network trained on the renderer's images alone loses delta1 0.94 -> 0.81 to a 1.5 px blur, 0.78 to
    swapped channels and 0.71 to flat objects: it reads texture, and regenerated images have other textures.
    """
    batch, _, height, width = images.shape

    def chosen(chance: float) -> torch.Tensor:
        return (torch.rand(batch, generator=generator) < chance).view(batch, 1, 1, 1)

    flat = region_means(images, region_index(instances))
    share = torch.rand(batch, generator=generator).view(batch, 1, 1, 1) * chosen(FLATTEN_CHANCE)
    images = images + share * (flat - images)
    # Blur: a separable Gaussian of its own width per image, cut at 3 of the largest sigma, as one grouped
    # convolution.
    largest = MAX_BLUR_PX * width / 128
    sigma = (largest * torch.rand(batch, generator=generator)).clamp(min=1e-3)
    radius = math.ceil(3 * largest)
    taps = torch.arange(-radius, radius + 1, dtype=images.dtype)
    kernel = torch.exp(-(taps**2) / (2 * sigma[:, None] ** 2))
    kernel = (kernel / kernel.sum(dim=1, keepdim=True)).repeat_interleave(3, dim=0)  # (B * 3, taps)
    stacked = images.reshape(1, batch * 3, height, width)
    rows, cols = kernel.view(batch * 3, 1, 1, -1), kernel.view(batch * 3, 1, -1, 1)
    stacked = F.conv2d(F.pad(stacked, (radius, radius, 0, 0), mode="replicate"), rows, groups=batch * 3)
    stacked = F.conv2d(F.pad(stacked, (0, 0, radius, radius), mode="replicate"), cols, groups=batch * 3)
    images = torch.where(chosen(BLUR_CHANCE), stacked.view(batch, 3, height, width), images)
    # Swap: one of the five other orders of the colour channels.
    orders = torch.tensor([[0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]])
    order = orders[torch.randint(len(orders), (batch,), generator=generator)]
    swapped = torch.gather(images, 1, order.view(batch, 3, 1, 1).expand(-1, -1, height, width))
    return torch.where(chosen(CHANNEL_SWAP_CHANCE), swapped, images)


def evaluate_depth(network: GescoDepthNet, dataset: Dataset, *, batch_size: int = 32) -> DepthScores:
    """AbsRel and delta_1 of ``network`` on ``dataset``, ground truth up to ``DEFAULT_MAX_DEPTH_M`` as
    ``gesco evaluate`` scores it."""
    meter = DepthMeter(max_depth=DEFAULT_MAX_DEPTH_M)
    for batch in DataLoader(dataset, batch_size=batch_size, collate_fn=collate):
        meter.update(network.estimate(batch.image), batch.depth)
    return meter.result()


def train_depth(config: DepthTrainConfig, *, resume: bool = False, progress: bool = True) -> DepthTrainResult:
    """Run (or continue, with ``resume``) the depth network training of ``config``; export ``output_dir/model``."""
    # built first: a bad folder of regenerations fails before the run writes anything
    dataset, validation = geometry_datasets(config)
    loop = TrainingLoop(
        geometry_loop_settings(config, "train-depth"),
        lambda: initial_network(GescoDepthNet, config, resume=resume),
        lambda parameters: torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=config.weight_decay),
        config=config,
        resume=resume,
        progress=progress,
    )

    def step(inputs: StepInputs) -> torch.Tensor:
        images, depth, instances = inputs.batch.image, inputs.batch.depth, inputs.batch.instances
        # before the flips of augment, which would flip the images and depth but not the instances
        if config.texture_swap:
            images = texture_swap(images, instances, inputs.generator)
        if config.appearance_augment:
            images = appearance_augment(images, instances, inputs.generator)
        if config.augment:
            images, depth = augment(images, depth, inputs.generator)
        # Unknown depth (0) stays unknown; known depth is brought inside the range the network can output.
        target = torch.where(depth > 0, depth.clamp(config.model.min_depth, config.model.max_depth), depth)
        log_depth = inputs.model(images.to(inputs.device))
        return depth_loss(
            log_depth, target.to(inputs.device), variance_focus=config.variance_focus, l1_weight=config.l1_weight
        )

    scores: DepthScores | None = None

    def validate(done: int) -> dict[str, object]:
        nonlocal scores
        scores = evaluate_depth(_ema_network(config.model, loop.ema), validation)
        return {"validation_abs_rel": scores.abs_rel, "validation_delta1": scores.delta1}

    result = loop.run(
        dataset,
        step,
        collate_fn=collate,
        on_checkpoint=validate,
        export=lambda ema, directory: _ema_network(config.model, ema).save_pretrained(directory),
    )
    return DepthTrainResult(
        step=result.step, losses=result.losses, validation=scores, output_dir=result.output_dir, seconds=result.seconds
    )


def _ema_network(config: DepthNetConfig, ema: EMA) -> GescoDepthNet:
    return ema.copy_to(GescoDepthNet(config)).eval()
