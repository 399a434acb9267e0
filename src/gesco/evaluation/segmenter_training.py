"""Training gesco's compact segmenter (``gesco train-segmenter``), resumable exactly.

Recipe: class-weighted cross entropy (weights ~ frequency^-1/2 from a sample of the training data, so thin
classes such as poles, traffic lights and signs count), target pixels of classes the segmenter does not
predict ignored; AdamW with linear warm-up and cosine decay; flips, colour jitter and pixel noise, because the
segmenter must read regenerated images, which are noisier and paler than the real ones; an EMA of the weights
is exported. Synthetic training scenes must not overlap the evaluation seeds
(``EVALUATION_SEED_OFFSET`` onwards); a held-out validation set is scored at every checkpoint.

Exact resume: the scenes and augmentations of step ``s`` come from a generator seeded by (seed, s); the
checkpoint (``gesco.training.checkpoint`` layout) holds weights, EMA, optimizer, LR schedule and RNG state.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from gesco.config import Config
from gesco.datasets import collate
from gesco.evaluation.metrics import EvaluationClasses, SegmentationConfusion, SegmentationScores
from gesco.evaluation.segmenter import GescoSegmenter, SegmenterConfig
from gesco.io import atomic_write_text
from gesco.semantics.classes import ClassTable, class_table
from gesco.training.checkpoint import TrainingState, list_checkpoints, restore_latest, save_checkpoint
from gesco.training.config import DataConfig
from gesco.training.data import build_dataset
from gesco.training.ema import EMA

#: First synthetic scene seed of evaluation sets (``gesco evaluate``); training scenes must stay below it.
EVALUATION_SEED_OFFSET = 1_000_000
#: Synthetic seeds from here on are the segmenter's validation scenes.
VALIDATION_SEED_OFFSET = 2_000_000
IGNORED = -100


@dataclass(frozen=True)
class SegmenterTrainConfig(Config):
    """One segmenter training run; saved as ``config.json`` in ``output_dir``."""

    output_dir: str = "runs/segmenter"
    data: DataConfig = field(default_factory=lambda: DataConfig(kind="synthetic", num_scenes=20000))
    validation: DataConfig = field(
        default_factory=lambda: DataConfig(kind="synthetic", num_scenes=200, seed_offset=VALIDATION_SEED_OFFSET))
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
        if self.batch_size < 1 or self.max_steps < 1 or self.checkpoint_every < 1:
            raise ValueError("batch_size, max_steps and checkpoint_every must be positive")
        if self.lr_schedule not in ("cosine", "constant"):
            raise ValueError(f"lr_schedule must be 'cosine' or 'constant', got {self.lr_schedule!r}")
        if self.data.kind == "synthetic":
            first, last = self.data.seed_offset, self.data.seed_offset + self.data.num_scenes - 1
            if last >= EVALUATION_SEED_OFFSET:
                raise ValueError(
                    f"training scenes {first}..{last} reach the evaluation and validation seeds (from "
                    f"{EVALUATION_SEED_OFFSET} on); keep data.seed_offset + data.num_scenes <= {EVALUATION_SEED_OFFSET}"
                )


@dataclass(frozen=True)
class SegmenterTrainResult:
    step: int
    losses: list[float]
    validation: SegmentationScores | None
    output_dir: Path
    seconds: float


def step_generator(seed: int, step: int, stream: int) -> torch.Generator:
    """The generator of step ``step``'s draws of one kind (0: which scenes, 1: augmentation)."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step) * 2 + stream)


class StepIndices:
    """Batch indices of steps ``start .. end - 1``: step s draws its items from ``step_generator(seed, s, 0)``."""

    def __init__(self, size: int, batch_size: int, *, seed: int, start: int, end: int):
        self.size, self.batch_size, self.seed, self.start, self.end = size, batch_size, seed, start, end

    def __len__(self) -> int:
        return max(0, self.end - self.start)

    def __iter__(self):
        for step in range(self.start, self.end):
            yield torch.randint(self.size, (self.batch_size,), generator=step_generator(self.seed, step, 0)).tolist()


def target_lookup(table: ClassTable, class_ids: tuple[int, ...]) -> torch.Tensor:
    """int64 (num_classes,): channel -> logit index, ``IGNORED`` for channels the segmenter does not predict."""
    lookup = torch.full((table.num_classes,), IGNORED, dtype=torch.long)
    lookup[list(class_ids)] = torch.arange(len(class_ids))
    return lookup


def class_weights(dataset: Dataset, lookup: torch.Tensor, num_logits: int, *, scenes: int, power: float,
                  max_weight: float) -> torch.Tensor:
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


def augment(images: torch.Tensor, labels: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
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


def learning_rate_factor(config: SegmenterTrainConfig, step: int) -> float:
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    if config.lr_schedule == "constant":
        return 1.0
    progress = (step - config.warmup_steps) / max(1, config.max_steps - config.warmup_steps)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def evaluate_segmenter(segmenter, dataset: Dataset, *, batch_size: int = 32) -> SegmentationScores:
    """mIoU, pixel accuracy and per-class IoU of ``segmenter`` on the images of ``dataset``."""
    confusion = SegmentationConfusion(EvaluationClasses.from_table(segmenter.table))
    for batch in DataLoader(dataset, batch_size=batch_size, collate_fn=collate):
        confusion.update(segmenter.predict(batch.image), batch.labels)
    return confusion.compute()


def _table_of(data: DataConfig, model: SegmenterConfig) -> ClassTable:
    expected = {"synthetic": "cityscapes", "cityscapes": "cityscapes"}.get(data.kind, data.kind)
    if data.kind != "folder" and expected != model.class_table:
        raise ValueError(f"data kind {data.kind!r} has {expected!r} labels but model.class_table is "
                         f"{model.class_table!r}; set model.class_table={expected!r}")
    return class_table(model.class_table)


def train_segmenter(config: SegmenterTrainConfig, *, resume: bool = False, progress: bool = True) -> SegmenterTrainResult:
    """Run (or continue, with ``resume``) the segmenter training of ``config``; export ``output_dir/model``."""
    output = Path(config.output_dir)
    checkpoints = output / "checkpoints"
    table = _table_of(config.data, config.model)
    device = torch.device(config.device)
    torch.manual_seed(config.seed)
    model = GescoSegmenter(config.model).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: learning_rate_factor(config, s))
    ema = EMA(model, decay=config.ema_decay)
    start = 0
    if resume:
        start = restore_latest(checkpoints, model, ema, optimizer, scheduler)
    elif list_checkpoints(checkpoints):
        raise ValueError(f"{output} already holds checkpoints: pass --resume to continue, or choose a new output dir")
    config.save(output)

    dataset = build_dataset(config.data, table)
    validation = build_dataset(config.validation, table)
    lookup = target_lookup(table, config.model.class_ids)
    weights = class_weights(dataset, lookup, len(config.model.class_ids), scenes=config.weight_scenes,
                            power=config.class_weight_power, max_weight=config.max_class_weight)
    atomic_write_text(output / "class_weights.json", json.dumps(
        {table.names[c]: round(float(w), 4) for c, w in zip(config.model.class_ids, weights)}, indent=2) + "\n")
    loader = DataLoader(dataset, collate_fn=collate, num_workers=config.data.num_workers,
                        batch_sampler=StepIndices(len(dataset), config.batch_size, seed=config.seed, start=start,
                                                   end=config.max_steps))
    history_path = output / "history.json"
    history = json.loads(history_path.read_text()) if resume and history_path.is_file() else []
    losses: list[float] = []
    scores = None
    started = time.perf_counter()
    bar = tqdm(total=config.max_steps, initial=start, disable=not progress, desc="train-segmenter", unit="step")
    model.train()
    for step, batch in enumerate(loader, start=start):
        generator = step_generator(config.seed, step, 1)
        images, labels = batch.image, batch.labels
        if config.augment:
            images, labels = augment(images, labels, generator)
        logits = model(images.to(device))
        loss = F.cross_entropy(logits, lookup[labels].to(device), weight=weights.to(device), ignore_index=IGNORED)
        if not torch.isfinite(loss):
            raise RuntimeError(f"the loss became {loss.item()} at step {step}; lower learning_rate")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        ema.update(model)
        losses.append(loss.item())
        done = step + 1
        bar.update(1)
        bar.set_postfix(loss=f"{losses[-1]:.4f}")
        if done % config.checkpoint_every == 0 or done == config.max_steps:
            save_checkpoint(checkpoints, TrainingState(done, model.state_dict(), ema.state_dict(), ema.updates,
                                                       optimizer.state_dict(), scheduler.state_dict(),
                                                       torch.get_rng_state()), keep=config.keep_checkpoints)
            scores = evaluate_segmenter(_ema_model(config.model, ema), validation)
            history.append({"step": done, "loss": losses[-1], "validation_miou": scores.miou,
                            "validation_per_class_iou": scores.per_class_iou})
            atomic_write_text(history_path, json.dumps(history, indent=2) + "\n")
            bar.set_postfix(loss=f"{losses[-1]:.4f}", val_miou=f"{scores.miou:.3f}")
    bar.close()
    _ema_model(config.model, ema).save_pretrained(output / "model")
    return SegmenterTrainResult(step=config.max_steps, losses=losses, validation=scores, output_dir=output,
                                seconds=time.perf_counter() - started)


def _ema_model(config: SegmenterConfig, ema: EMA) -> GescoSegmenter:
    model = GescoSegmenter(config)
    model.load_state_dict({k: v.to(model.state_dict()[k].dtype) for k, v in ema.state_dict().items()})
    return model.eval()
