"""Training gesco's compact depth network (``gesco train-depth``), resumable exactly.

Recipe: :func:`~gesco.evaluation.depth_network.depth_loss` (scale-invariant log loss plus L1 on log depth)
against the synthetic scenes' depth, clipped to the network's range (the sky is at its far end); flips, colour
jitter and pixel noise as the segmenter's (the depth map flips with the image), because the network must read
regenerated images; AdamW with warm-up and cosine decay; the EMA weights are exported. Training scenes are
seeds 600,000-699,999 by default, below the evaluation seeds; held-out scenes from ``VALIDATION_SEED_OFFSET``
are scored (AbsRel, delta_1 up to 80 m, as ``gesco evaluate``) at every checkpoint. The steps, exact resume,
checkpoints, EMA, bf16 autocast and learning-rate schedule are those of the shared loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from gesco.config import Config
from gesco.constants import GEOMETRY_TRAINING_SEED_OFFSET, VALIDATION_SEED_OFFSET
from gesco.datasets import collate
from gesco.evaluation.depth_network import DepthNetConfig, GescoDepthNet, depth_loss
from gesco.evaluation.detector_training import check_geometry_run, geometry_loop_settings
from gesco.evaluation.geometry_scoring import DEFAULT_MAX_DEPTH_M
from gesco.evaluation.objects_depth import DepthMeter, DepthScores
from gesco.evaluation.segmenter_training import augment
from gesco.semantics.classes import class_table
from gesco.training.config import DataConfig
from gesco.training.data import build_dataset
from gesco.training.ema import EMA
from gesco.training.loop import StepInputs, TrainingLoop


@dataclass(frozen=True)
class DepthTrainConfig(Config):
    """One depth network training run; saved as ``config.json`` in ``output_dir``.

    Attributes (beyond the shared loop's):
        variance_focus, l1_weight: the loss's lambda and L1 weight (see ``depth_loss``).
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
    ema_decay: float = 0.999
    grad_clip: float = 10.0
    mixed_precision: str = "no"
    seed: int = 0
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    device: str = "cpu"

    def __post_init__(self) -> None:
        check_geometry_run(self)
        if not 0 <= self.variance_focus <= 1 or self.l1_weight < 0:
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


def evaluate_depth(network: GescoDepthNet, dataset: Dataset, *, batch_size: int = 32) -> DepthScores:
    """AbsRel and delta_1 of ``network`` on ``dataset``, ground truth up to ``DEFAULT_MAX_DEPTH_M`` as
    ``gesco evaluate`` scores it."""
    meter = DepthMeter(max_depth=DEFAULT_MAX_DEPTH_M)
    for batch in DataLoader(dataset, batch_size=batch_size, collate_fn=collate):
        meter.update(network.estimate(batch.image), batch.depth)
    return meter.result()


def train_depth(config: DepthTrainConfig, *, resume: bool = False, progress: bool = True) -> DepthTrainResult:
    """Run (or continue, with ``resume``) the depth network training of ``config``; export ``output_dir/model``."""
    loop = TrainingLoop(
        geometry_loop_settings(config, "train-depth"),
        lambda: GescoDepthNet(config.model),
        lambda parameters: torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=config.weight_decay),
        config=config,
        resume=resume,
        progress=progress,
    )
    table = class_table("cityscapes")
    dataset, validation = build_dataset(config.data, table), build_dataset(config.validation, table)

    def step(inputs: StepInputs) -> torch.Tensor:
        images, depth = inputs.batch.image, inputs.batch.depth
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
