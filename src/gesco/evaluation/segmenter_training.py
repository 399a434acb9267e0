"""Training gesco's compact segmenter (``gesco train-segmenter``), resumable exactly.

Recipe: class-weighted cross entropy (weights ~ frequency^-1/2 from a sample of the training data, so thin
classes such as poles, traffic lights and signs count), target pixels of classes the segmenter does not
predict ignored; AdamW with linear warm-up and cosine decay; flips, colour jitter and pixel noise, because the
segmenter must read regenerated images, which are noisier and paler than the real ones; an EMA of the weights
is exported. Synthetic training scenes must not overlap the evaluation seeds
(``EVALUATION_SEED_OFFSET`` onwards); a held-out validation set is scored at every checkpoint.

The steps, exact resume, checkpoints, EMA and learning-rate schedule are those of the shared loop
(:mod:`gesco.training.loop`); the augmentation of step ``s`` draws from its ``step_generator(seed, s, rank)``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from gesco.config import Config
from gesco.constants import VALIDATION_SEED_OFFSET  # also read from here by others
from gesco.datasets import collate
from gesco.evaluation.metrics import EvaluationClasses, SegmentationConfusion, SegmentationScores
from gesco.evaluation.segmenter import GescoSegmenter, SegmenterConfig
from gesco.io import atomic_write_text
from gesco.semantics.classes import ClassTable, class_table
from gesco.training.config import DataConfig, check_run_settings
from gesco.training.data import build_dataset
from gesco.training.ema import EMA
from gesco.training.loop import LoopSettings, StepInputs, TrainingLoop

#: Target value of the pixels whose class the segmenter does not predict.
IGNORED = -100
#: Where the segmenter trains: "cpu", or "cuda" (the GPU of each process).
SEGMENTER_DEVICES = ("cpu", "cuda")


@dataclass(frozen=True)
class SegmenterTrainConfig(Config):
    """One segmenter training run; saved as ``config.json`` in ``output_dir``."""

    output_dir: str = "runs/segmenter"
    data: DataConfig = field(default_factory=lambda: DataConfig(kind="synthetic", num_scenes=20000))
    validation: DataConfig = field(
        default_factory=lambda: DataConfig(kind="synthetic", num_scenes=200, seed_offset=VALIDATION_SEED_OFFSET)
    )
    model: SegmenterConfig = field(default_factory=SegmenterConfig)
    batch_size: int = 16
    max_steps: int = 6000
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 200
    #: "cosine" decays to 0 at max_steps; "constant" keeps the peak rate after the warm-up.
    lr_schedule: str = "cosine"
    #: Class weights ~ (pixel frequency) ** -power, mean 1, capped; counted on the first ``weight_scenes`` items.
    class_weight_power: float = 0.5
    max_class_weight: float = 10.0
    weight_scenes: int = 256
    augment: bool = True
    ema_decay: float = 0.999
    seed: int = 0
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    device: str = "cpu"

    def __post_init__(self) -> None:
        check_run_settings(self)
        if self.device not in SEGMENTER_DEVICES:
            raise ValueError(f"device must be one of {list(SEGMENTER_DEVICES)}, got {self.device!r}")


@dataclass(frozen=True)
class SegmenterTrainResult:
    step: int
    losses: list[float]
    validation: SegmentationScores | None
    output_dir: Path
    seconds: float


def target_lookup(table: ClassTable, class_ids: tuple[int, ...]) -> torch.Tensor:
    """int64 (num_classes,): channel -> logit index, ``IGNORED`` for channels the segmenter does not predict."""
    lookup = torch.full((table.num_classes,), IGNORED, dtype=torch.long)
    lookup[list(class_ids)] = torch.arange(len(class_ids))
    return lookup


def class_weights(
    dataset: Dataset, lookup: torch.Tensor, num_logits: int, *, scenes: int, power: float, max_weight: float
) -> torch.Tensor:
    """float32 (K,): frequency ** -power over the first ``scenes`` items, mean 1 over seen classes, capped;
    classes never seen get weight 0."""
    counts = torch.zeros(num_logits, dtype=torch.float64)
    for index in range(min(scenes, len(dataset))):
        targets = lookup[dataset[index].labels]
        counts += torch.bincount(targets[targets != IGNORED], minlength=num_logits).double()
    seen = counts > 0
    if not seen.any():
        raise ValueError("none of the segmenter's classes occurs in the training data; check model.class_ids")
    weights = torch.zeros_like(counts)
    weights[seen] = (counts[seen] / counts.sum()) ** (-power)
    weights[seen] /= weights[seen].mean()
    return weights.clamp(max=max_weight).float()


def augment(
    images: torch.Tensor, labels: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random flips, brightness / contrast / saturation jitter and Gaussian pixel noise, per image.

    images: float (B, 3, H, W) in [-1, 1]; labels: int64 (B, H, W). Returns both, images clamped to [-1, 1].
    """
    batch = images.shape[0]

    def uniform(low: float, high: float) -> torch.Tensor:
        return (low + (high - low) * torch.rand(batch, generator=generator)).view(batch, 1, 1, 1)

    flip = torch.rand(batch, generator=generator) < 0.5
    images = torch.where(flip.view(batch, 1, 1, 1), images.flip(-1), images)
    labels = torch.where(flip.view(batch, 1, 1), labels.flip(-1), labels)
    grey = images.mean(dim=1, keepdim=True)
    images = grey + (images - grey) * uniform(0.4, 1.3)  # saturation
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    images = mean + (images - mean) * uniform(0.6, 1.3) + uniform(-0.25, 0.25)  # contrast, brightness
    images = images + uniform(0.0, 0.12) * torch.randn(images.shape, generator=generator)
    return images.clamp(-1, 1), labels


def evaluate_segmenter(segmenter, dataset: Dataset, *, batch_size: int = 32) -> SegmentationScores:
    """mIoU, pixel accuracy and per-class IoU of ``segmenter`` on the images of ``dataset``."""
    confusion = SegmentationConfusion(EvaluationClasses.from_table(segmenter.table))
    for batch in DataLoader(dataset, batch_size=batch_size, collate_fn=collate):
        confusion.update(segmenter.predict(batch.image), batch.labels)
    return confusion.compute()


def _table_of(data: DataConfig, model: SegmenterConfig) -> ClassTable:
    expected = {"synthetic": "cityscapes", "cityscapes": "cityscapes"}.get(data.kind, data.kind)
    if data.kind != "folder" and expected != model.class_table:
        raise ValueError(
            f"data kind {data.kind!r} has {expected!r} labels but model.class_table is "
            f"{model.class_table!r}; set model.class_table={expected!r}"
        )
    return class_table(model.class_table)


def loop_settings(config: SegmenterTrainConfig) -> LoopSettings:
    """The shared loop's part of a segmenter run."""
    return LoopSettings.from_config(config, name="train-segmenter", device="cpu" if config.device == "cpu" else "auto")


def train_segmenter(
    config: SegmenterTrainConfig, *, resume: bool = False, progress: bool = True
) -> SegmenterTrainResult:
    """Run (or continue, with ``resume``) the segmenter training of ``config``; export ``output_dir/model``."""
    table = _table_of(config.data, config.model)
    loop = TrainingLoop(
        loop_settings(config),
        lambda: GescoSegmenter(config.model),
        lambda parameters: torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=config.weight_decay),
        config=config,
        resume=resume,
        progress=progress,
    )
    dataset = build_dataset(config.data, table)
    validation = build_dataset(config.validation, table)
    lookup = target_lookup(table, config.model.class_ids)
    weights = class_weights(
        dataset,
        lookup,
        len(config.model.class_ids),
        scenes=config.weight_scenes,
        power=config.class_weight_power,
        max_weight=config.max_class_weight,
    )
    if loop.is_main_process:
        named = {table.names[c]: round(float(w), 4) for c, w in zip(config.model.class_ids, weights, strict=True)}
        atomic_write_text(Path(config.output_dir) / "class_weights.json", json.dumps(named, indent=2) + "\n")

    def step(inputs: StepInputs) -> torch.Tensor:
        images, labels = inputs.batch.image, inputs.batch.labels
        if config.augment:
            images, labels = augment(images, labels, inputs.generator)
        logits = inputs.model(images.to(inputs.device))
        return F.cross_entropy(
            logits, lookup[labels].to(inputs.device), weight=weights.to(inputs.device), ignore_index=IGNORED
        )

    scores: SegmentationScores | None = None

    def validate(done: int) -> dict[str, object]:
        nonlocal scores
        scores = evaluate_segmenter(_ema_model(config.model, loop.ema), validation)
        return {"validation_miou": scores.miou, "validation_per_class_iou": scores.per_class_iou}

    result = loop.run(
        dataset,
        step,
        collate_fn=collate,
        on_checkpoint=validate,
        export=lambda ema, directory: _ema_model(config.model, ema).save_pretrained(directory),
    )
    return SegmenterTrainResult(
        step=result.step, losses=result.losses, validation=scores, output_dir=result.output_dir, seconds=result.seconds
    )


def _ema_model(config: SegmenterConfig, ema: EMA) -> GescoSegmenter:
    return ema.copy_to(GescoSegmenter(config)).eval()
