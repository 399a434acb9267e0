"""The training configuration: data, model, diffusion and optimisation in one JSON file."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Self

from gesco.channel.quality import NOISE_AWARE_TRAINING_SIGMAS
from gesco.config import Config, ConfigError
from gesco.constants import EVALUATION_SEED_OFFSET
from gesco.receiver.diffusion import DiffusionConfig
from gesco.receiver.sampling import SamplerConfig
from gesco.receiver.unet import UNetConfig
from gesco.training.conditioning import NOISE_MODES

DATA_KINDS = ("synthetic", "cityscapes", "coco-stuff", "ade20k", "folder")
MIXED_PRECISION = ("no", "bf16", "fp16")
LR_SCHEDULES = ("constant", "cosine")
#: Trainer config fields that must hold a usable optimiser setting -> (the rule in words, its test; NaN fails
#: every test). A zero or infinite learning rate trains nothing or diverges at the first step, an EMA decay of 1
#: or more never follows the weights, and a NaN clip norm or weight decay silently turns them off.
OPTIMISER_RULES = {
    "learning_rate": ("a finite number > 0", lambda v: math.isfinite(v) and v > 0),
    "weight_decay": ("a finite number >= 0", lambda v: math.isfinite(v) and v >= 0),
    "grad_clip": ("a finite gradient norm >= 0 (0: no clipping)", lambda v: math.isfinite(v) and v >= 0),
    "ema_decay": ("in [0, 1)", lambda v: 0 <= v < 1),
    "warmup_steps": (">= 0", lambda v: v >= 0),
    "keep_checkpoints": (">= 0", lambda v: v >= 0),
}
#: The fields that became ``TrainConfig.sampler`` (a nested SamplerConfig).
_FORMER_SAMPLER_FIELDS = {"sample_sampler": "sampler", "sample_steps": "steps", "sample_guidance": "guidance"}


@dataclass(frozen=True)
class DataConfig(Config):
    """Where training pairs come from.

    ``kind="synthetic"`` generates scenes ``seed_offset .. seed_offset + num_scenes - 1`` on the
    fly (keep evaluation seeds outside that range); the other kinds read ``root`` in the
    dataset's own layout at ``size`` (H, W).
    """

    kind: str = "synthetic"
    root: str | None = None
    split: str = "train"
    size: tuple[int, int] = (64, 128)
    num_scenes: int = 20000
    seed_offset: int = 0
    #: Classes of a generic folder dataset (its class table is then "folder").
    num_classes: int | None = None
    #: Instance edges: "instance" (true edges) or "official" (the official 8-bit quirk).
    edge_rule: str = "instance"
    flip: bool = True
    num_workers: int = 0
    #: Synthetic only: scenes with cyclists (riders and bicycles) too.
    riders: bool = False

    def __post_init__(self) -> None:
        if self.kind not in DATA_KINDS:
            raise ValueError(f"unknown data kind {self.kind!r}; choose one of {list(DATA_KINDS)}")
        if not isinstance(self.riders, bool):
            raise TypeError(f"data.riders must be true or false, got {self.riders!r}")
        if self.riders and self.kind != "synthetic":
            raise ValueError(f"data.riders adds cyclists to synthetic scenes; data kind {self.kind!r} has its own")
        if self.kind not in ("synthetic",) and not self.root:
            raise ValueError(f"data kind {self.kind!r} needs a root folder (data.root)")
        if self.kind == "synthetic" and self.num_scenes < 1:
            raise ValueError(f"data.num_scenes must be >= 1 synthetic scene, got {self.num_scenes}")


def check_run_settings(config: Config) -> None:
    """The checks every trainer's config shares: positive step counts, optimiser settings that train (those
    of :data:`OPTIMISER_RULES` the config has), a known learning-rate schedule, and synthetic training scenes
    that stay below the evaluation seeds."""
    for name in ("batch_size", "max_steps", "checkpoint_every"):
        if getattr(config, name) < 1:
            raise ValueError(f"{type(config).__name__}.{name} must be positive, got {getattr(config, name)}")
    for name, (rule, holds) in OPTIMISER_RULES.items():
        if hasattr(config, name) and not holds(getattr(config, name)):
            raise ValueError(f"{type(config).__name__}.{name} must be {rule}, got {getattr(config, name)}")
    if config.lr_schedule not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {list(LR_SCHEDULES)}, got {config.lr_schedule!r}")
    data = config.data
    if data.kind == "synthetic" and data.seed_offset + data.num_scenes > EVALUATION_SEED_OFFSET:
        raise ValueError(
            f"training scenes reach the evaluation seeds (from {EVALUATION_SEED_OFFSET} on); "
            f"keep data.seed_offset + data.num_scenes <= {EVALUATION_SEED_OFFSET}"
        )


@dataclass(frozen=True)
class TrainConfig(Config):
    """Everything one training run needs; saved as ``config.json`` in its output folder."""

    output_dir: str = "runs/gesco"
    class_table: str = "cityscapes"
    data: DataConfig = field(default_factory=DataConfig)
    model: UNetConfig = field(default_factory=UNetConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    #: Per process; the effective batch is batch_size x processes.
    batch_size: int = 4
    max_steps: int = 200_000
    learning_rate: float = 1e-4
    weight_decay: float = 0.0
    warmup_steps: int = 0
    lr_schedule: str = "constant"
    grad_clip: float = 1.0
    ema_decay: float = 0.9999
    ema_warmup: bool = True
    #: "paper" (released code), "channel" (AWGN on sent channels + FDS) or "none" (SDM ablation).
    noise: str = "paper"
    noise_sigmas: tuple[float, ...] = NOISE_AWARE_TRAINING_SIGMAS
    #: Probability of zeroing the whole map, so that guidance has an unconditional model.
    condition_dropout: float = 0.2
    mixed_precision: str = "no"
    channels_last: bool = False
    seed: int = 0
    log_every: int = 10
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    #: Write a grid of samples every N steps (0: never).
    sample_every: int = 0
    #: The sampler of the preview grid and the default of the exported receiver (see gesco.receiver.sampling).
    sampler: SamplerConfig = field(default_factory=lambda: SamplerConfig(sampler="dpmpp", steps=20, guidance=1.5))
    #: Start from these weights (a receiver folder, or a UNet folder) instead of a random init: fine-tuning. Only
    #: layers the source lacks may be new, e.g. the noise embedding a paper receiver gains with noise conditioning.
    init_weights: str | None = None

    def __post_init__(self) -> None:
        for name, value, allowed in (
            ("noise", self.noise, NOISE_MODES),
            ("mixed_precision", self.mixed_precision, MIXED_PRECISION),
            ("lr_schedule", self.lr_schedule, LR_SCHEDULES),
        ):
            if value not in allowed:
                raise ValueError(f"TrainConfig.{name} must be one of {list(allowed)}, got {value!r}")
        if not 0.0 <= self.condition_dropout < 1.0:
            raise ValueError(f"condition_dropout must be in [0, 1), got {self.condition_dropout}")
        for name in ("batch_size", "max_steps", "checkpoint_every", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.sample_every < 0:
            raise ValueError(f"TrainConfig.sample_every must be >= 0, got {self.sample_every}")
        if self.noise != "none" and not self.noise_sigmas:
            raise ValueError("noise-aware training needs at least one sigma in noise_sigmas")
        bad = [sigma for sigma in self.noise_sigmas if not (math.isfinite(sigma) and sigma >= 0)]
        if bad:
            raise ValueError(f"TrainConfig.noise_sigmas must be finite noise levels >= 0, got {bad}")
        check_run_settings(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str | None = None) -> Self:
        """As :meth:`Config.from_dict`; a config with the former ``sample_*`` fields is refused with its fix."""
        former = [key for key in _FORMER_SAMPLER_FIELDS if isinstance(data, dict) and key in data]
        if former:
            nested = ", ".join(f'"{_FORMER_SAMPLER_FIELDS[key]}": {json.dumps(data[key])}' for key in former)
            raise ConfigError(
                f"{source + ': ' if source else ''}TrainConfig fields {former} are now one nested SamplerConfig; "
                f'replace them with "sampler": {{{nested}}}'
            )
        return super().from_dict(data, source=source)
