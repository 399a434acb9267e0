"""Training the learned map denoiser through the link: transmitter -> AWGN at a sigma drawn per map -> network.

The steps, exact resume, checkpoints, EMA and learning-rate schedule are the shared loop's
(:mod:`gesco.training.loop`); step ``s`` draws flips, sigmas and channel noise from its step generator. The
EMA weights are exported to ``output_dir/model`` (``LearnedMapDenoiser.from_pretrained``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from gesco.channel.quality import ChannelQuality
from gesco.config import Config
from gesco.datasets import collate
from gesco.link import Link
from gesco.receiver.learned_denoiser import LearnedMapDenoiser, MapDenoiserConfig, map_denoiser_loss
from gesco.receiver.receiver import Receiver
from gesco.semantics.classes import class_table
from gesco.semantics.maps import SemanticMap
from gesco.training.config import DataConfig, check_run_settings
from gesco.training.data import build_dataset
from gesco.training.loop import LoopResult, LoopSettings, StepInputs, TrainingLoop

#: sigma of each training map, drawn uniformly: clean through well beyond PSNR label 1 (0.9).
DEFAULT_TRAINING_SIGMAS = tuple(round(0.05 * i, 2) for i in range(0, 25))


@dataclass(frozen=True)
class MapDenoiserTrainConfig(Config):
    """One learned map denoiser training run; saved as ``config.json`` in ``output_dir``."""

    output_dir: str = "runs/map-denoiser"
    data: DataConfig = field(
        default_factory=lambda: DataConfig(kind="synthetic", num_scenes=100_000, seed_offset=300_000)
    )
    model: MapDenoiserConfig = field(default_factory=MapDenoiserConfig)
    sigmas: tuple[float, ...] = DEFAULT_TRAINING_SIGMAS
    dice_weight: float = 0.0
    batch_size: int = 16
    max_steps: int = 1000
    learning_rate: float = 2e-3
    warmup_steps: int = 50
    lr_schedule: str = "cosine"
    ema_decay: float = 0.99
    grad_clip: float = 0.0
    #: "no" or "bf16" (autocast; about 1.8x faster for this network on an AVX-512 bf16 CPU)
    mixed_precision: str = "no"
    seed: int = 0
    checkpoint_every: int = 250
    keep_checkpoints: int = 2

    def __post_init__(self) -> None:
        check_run_settings(self)
        if not self.sigmas or min(self.sigmas) < 0:
            raise ValueError("sigmas must be a non-empty tuple of noise levels >= 0")
        if self.dice_weight < 0:
            raise ValueError(f"dice_weight must be >= 0, got {self.dice_weight}")


def train_map_denoiser(config: MapDenoiserTrainConfig, *, resume: bool = False, progress: bool = True) -> LoopResult:
    """Run (or continue, with ``resume``) the training of ``config``; export ``output_dir/model``."""
    loop = TrainingLoop(
        LoopSettings.from_config(config, name="train-map-denoiser", device="cpu"),
        lambda: LearnedMapDenoiser(config.model),
        lambda parameters: torch.optim.AdamW(parameters, lr=config.learning_rate),
        config=config,
        resume=resume,
        progress=progress,
    )
    table = class_table(config.model.class_table)
    dataset = build_dataset(config.data, table)
    link = Link(receiver=Receiver(None, map_denoiser="none"))
    sigmas = torch.tensor(config.sigmas)

    def step(inputs: StepInputs) -> torch.Tensor:
        batch, generator = inputs.batch, inputs.generator
        labels, instances = batch.labels, batch.instances
        if config.data.flip:
            flip = torch.rand(labels.shape[0], generator=generator) < 0.5
            labels = torch.where(flip[:, None, None], labels.flip(-1), labels)
            if instances is not None:
                instances = torch.where(flip[:, None, None], instances.flip(-1), instances)
        semantic_map = SemanticMap(labels, table, instances, config.data.edge_rule)
        sigma = sigmas[torch.randint(len(sigmas), (labels.shape[0],), generator=generator)]
        out = link(semantic_map, ChannelQuality.noise_std(sigma.tolist()), generator=generator)
        payload = out.received.payload
        edges = semantic_map.edges()[:, 0] if table.has_edge else None
        return map_denoiser_loss(
            inputs.model,
            payload.values,
            payload.transmitted,
            sigma,
            semantic_map.labels,
            edges,
            dice_weight=config.dice_weight,
        )

    return loop.run(
        dataset,
        step,
        collate_fn=collate,
        export=lambda ema, directory: ema.copy_to(LearnedMapDenoiser(config.model)).save_pretrained(directory),
    )
