"""Training Deep JSCC end to end through the differentiable AWGN channel (MSE on the image).

Each image of a step is sent at an SNR drawn uniformly from ``model.train_snrs_db``. Synthetic
training scenes must stay below the evaluation seeds, as for the other shipped models.
Checkpoints are atomic and ``resume`` continues exactly; the EMA weights are exported to
``output_dir/model`` (``DeepJSCC.from_pretrained``), with the validation PSNR per training SNR
in ``history.json``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from gesco.baselines.deep_jscc import DeepJSCC, DeepJSCCConfig
from gesco.channel.digital.symbol_channel import SymbolChannel
from gesco.config import Config
from gesco.datasets import collate
from gesco.evaluation.segmenter_training import (
    EVALUATION_SEED_OFFSET,
    VALIDATION_SEED_OFFSET,
    StepIndices,
    learning_rate_factor,
    step_generator,
)
from gesco.io import atomic_write_text
from gesco.semantics.classes import class_table, folder_table
from gesco.training.checkpoint import TrainingState, list_checkpoints, restore_latest, save_checkpoint
from gesco.training.config import DataConfig
from gesco.training.data import TABLE_OF_KIND, build_dataset
from gesco.training.ema import EMA


@dataclass(frozen=True)
class DeepJSCCTrainConfig(Config):
    """One Deep JSCC training run; saved as ``config.json`` in ``output_dir``."""

    output_dir: str = "runs/deep-jscc"
    data: DataConfig = field(default_factory=lambda: DataConfig(kind="synthetic", num_scenes=100_000))
    validation: DataConfig = field(
        default_factory=lambda: DataConfig(kind="synthetic", num_scenes=64, seed_offset=VALIDATION_SEED_OFFSET))
    model: DeepJSCCConfig = field(default_factory=DeepJSCCConfig)
    batch_size: int = 16
    max_steps: int = 3000
    learning_rate: float = 1e-3
    warmup_steps: int = 100
    #: "cosine" decays to 0 at max_steps; "constant" keeps the peak rate after the warm-up.
    lr_schedule: str = "cosine"
    ema_decay: float = 0.999
    seed: int = 0
    checkpoint_every: int = 500
    keep_checkpoints: int = 2

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.max_steps < 1 or self.checkpoint_every < 1:
            raise ValueError("batch_size, max_steps and checkpoint_every must be positive")
        if self.lr_schedule not in ("cosine", "constant"):
            raise ValueError(f"lr_schedule must be 'cosine' or 'constant', got {self.lr_schedule!r}")
        if tuple(self.data.size) != tuple(self.model.image_size):
            raise ValueError(f"data.size {self.data.size} differs from model.image_size {self.model.image_size}")
        if self.data.kind == "synthetic" and self.data.seed_offset + self.data.num_scenes > EVALUATION_SEED_OFFSET:
            raise ValueError(f"training scenes reach the evaluation seeds (from {EVALUATION_SEED_OFFSET} on); "
                             f"keep data.seed_offset + data.num_scenes <= {EVALUATION_SEED_OFFSET}")


@dataclass(frozen=True)
class DeepJSCCTrainResult:
    step: int
    losses: list[float]
    validation_psnr: dict[str, float]
    output_dir: Path
    seconds: float


def _dataset(data: DataConfig) -> Dataset:
    # Deep JSCC needs the images only; the class table just lets the loader read the label files.
    table = folder_table(data.num_classes or 1) if data.kind == "folder" else class_table(TABLE_OF_KIND[data.kind])
    return build_dataset(data, table)


@torch.no_grad()
def validation_psnr(model: DeepJSCC, dataset: Dataset, *, seed: int = 0, batch_size: int = 32) -> dict[str, float]:
    """Mean image PSNR (dB, images in [0, 1]) over ``dataset`` at each training SNR, AWGN, seeded noise."""
    out = {}
    for snr in model.config.train_snrs_db:
        generator = torch.Generator().manual_seed(seed)
        errors = []
        for batch in DataLoader(dataset, batch_size=batch_size, collate_fn=collate):
            decoded = model(batch.image, snr_db=snr, generator=generator)
            errors.append(((decoded - batch.image) / 2).square().flatten(1).mean(1))
        out[f"{snr:g}"] = float((-10 * torch.log10(torch.cat(errors).clamp_min(1e-10))).mean())
    return out


def _ema_model(config: DeepJSCCConfig, ema: EMA) -> DeepJSCC:
    model = DeepJSCC(config)
    model.load_state_dict(ema.state_dict())
    return model.eval()


def train_deep_jscc(config: DeepJSCCTrainConfig, *, resume: bool = False, progress: bool = True) -> DeepJSCCTrainResult:
    """Run (or continue, with ``resume``) the Deep JSCC training of ``config``; export ``output_dir/model``."""
    output = Path(config.output_dir)
    checkpoints = output / "checkpoints"
    torch.manual_seed(config.seed)
    model = DeepJSCC(config.model)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: learning_rate_factor(config, s))
    ema = EMA(model, decay=config.ema_decay)
    start = 0
    if resume:
        start = restore_latest(checkpoints, model, ema, optimizer, scheduler)
    elif list_checkpoints(checkpoints):
        raise ValueError(f"{output} already holds checkpoints: pass --resume to continue, or choose a new output dir")
    config.save(output)
    dataset, validation = _dataset(config.data), _dataset(config.validation)
    loader = DataLoader(dataset, collate_fn=collate, num_workers=config.data.num_workers,
                        batch_sampler=StepIndices(len(dataset), config.batch_size, seed=config.seed, start=start,
                                                  end=config.max_steps))
    history_path = output / "history.json"
    history = json.loads(history_path.read_text()) if resume and history_path.is_file() else []
    snrs = torch.tensor(config.model.train_snrs_db)
    channel = SymbolChannel()
    losses: list[float] = []
    scores: dict[str, float] = {}
    started = time.perf_counter()
    bar = tqdm(total=config.max_steps, initial=start, disable=not progress, desc="train-deep-jscc", unit="step")
    model.train()
    for step, batch in enumerate(loader, start=start):
        generator = step_generator(config.seed, step, 1)
        images = batch.image
        if config.data.flip:
            flip = torch.rand(images.shape[0], generator=generator) < 0.5
            images = torch.where(flip[:, None, None, None], images.flip(-1), images)
        snr = snrs[torch.randint(len(snrs), (images.shape[0],), generator=generator)]
        loss = F.mse_loss(model(images, snr_db=snr, channel=channel, generator=generator), images)
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
            scores = validation_psnr(_ema_model(config.model, ema), validation)
            history.append({"step": done, "loss": losses[-1], "validation_psnr_db": scores,
                            "seconds": round(time.perf_counter() - started, 1)})
            atomic_write_text(history_path, json.dumps(history, indent=2) + "\n")
    bar.close()
    _ema_model(config.model, ema).save_pretrained(output / "model")
    return DeepJSCCTrainResult(step=config.max_steps, losses=losses, validation_psnr=scores, output_dir=output,
                               seconds=time.perf_counter() - started)
