"""Training Deep JSCC end to end through the differentiable AWGN channel (MSE on the image).

Each image of a step is sent at an SNR drawn uniformly from ``model.train_snrs_db``. Synthetic
training scenes must stay below the evaluation seeds, as for the other shipped models.
The steps, exact resume, checkpoints, EMA and learning-rate schedule are those of the shared loop
(:mod:`gesco.training.loop`), on the CPU; step ``s`` draws its flips, SNRs and channel noise from
``step_generator(seed, s, rank)``. The EMA weights are exported to ``output_dir/model``
(``DeepJSCC.from_pretrained``), with the validation PSNR per training SNR in ``history.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from gesco.baselines.deep_jscc import DeepJSCC, DeepJSCCConfig
from gesco.channel.digital.symbol_channel import SymbolChannel
from gesco.config import Config
from gesco.constants import VALIDATION_SEED_OFFSET
from gesco.datasets import collate
from gesco.semantics.classes import class_table, folder_table
from gesco.training.config import DataConfig, check_run_settings
from gesco.training.data import TABLE_OF_KIND, build_dataset
from gesco.training.ema import EMA
from gesco.training.loop import LoopSettings, StepInputs, TrainingLoop


@dataclass(frozen=True)
class DeepJSCCTrainConfig(Config):
    """One Deep JSCC training run; saved as ``config.json`` in ``output_dir``."""

    output_dir: str = "runs/deep-jscc"
    data: DataConfig = field(default_factory=lambda: DataConfig(kind="synthetic", num_scenes=100_000))
    validation: DataConfig = field(
        default_factory=lambda: DataConfig(kind="synthetic", num_scenes=64, seed_offset=VALIDATION_SEED_OFFSET)
    )
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
        check_run_settings(self)
        if tuple(self.data.size) != tuple(self.model.image_size):
            raise ValueError(f"data.size {self.data.size} differs from model.image_size {self.model.image_size}")


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
    return ema.copy_to(DeepJSCC(config)).eval()


def loop_settings(config: DeepJSCCTrainConfig) -> LoopSettings:
    """The shared loop's part of a Deep JSCC run (on the CPU: the symbol channel draws its noise there)."""
    return LoopSettings.from_config(config, name="train-deep-jscc", device="cpu")


def train_deep_jscc(config: DeepJSCCTrainConfig, *, resume: bool = False, progress: bool = True) -> DeepJSCCTrainResult:
    """Run (or continue, with ``resume``) the Deep JSCC training of ``config``; export ``output_dir/model``."""
    loop = TrainingLoop(
        loop_settings(config),
        lambda: DeepJSCC(config.model),
        lambda parameters: torch.optim.Adam(parameters, lr=config.learning_rate),
        config=config,
        resume=resume,
        progress=progress,
    )
    dataset, validation = _dataset(config.data), _dataset(config.validation)
    snrs = torch.tensor(config.model.train_snrs_db)
    channel = SymbolChannel()

    def step(inputs: StepInputs) -> torch.Tensor:
        images, generator = inputs.batch.image, inputs.generator
        if config.data.flip:
            flip = torch.rand(images.shape[0], generator=generator) < 0.5
            images = torch.where(flip[:, None, None, None], images.flip(-1), images)
        snr = snrs[torch.randint(len(snrs), (images.shape[0],), generator=generator)]
        images = images.to(inputs.device)
        return F.mse_loss(inputs.model(images, snr_db=snr, channel=channel, generator=generator), images)

    scores: dict[str, float] = {}

    def validate(done: int) -> dict[str, object]:
        nonlocal scores
        scores = validation_psnr(_ema_model(config.model, loop.ema), validation)
        return {"validation_psnr_db": scores}

    result = loop.run(
        dataset,
        step,
        collate_fn=collate,
        on_checkpoint=validate,
        export=lambda ema, directory: _ema_model(config.model, ema).save_pretrained(directory),
    )
    return DeepJSCCTrainResult(
        step=result.step,
        losses=result.losses,
        validation_psnr=scores,
        output_dir=result.output_dir,
        seconds=result.seconds,
    )
