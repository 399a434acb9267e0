r"""One-pass classifier-free guidance: distil a receiver's guided prediction into a student that takes the scale s.

Stage one of Meng et al. 2023, "On Distillation of Guided Diffusion Models". The teacher needs two passes per
sampler step, on the map y and on the all-zero map:

.. math::  \hat\epsilon_s(x_t) = \epsilon(x_t, 0) + s\,(\epsilon(x_t, y) - \epsilon(x_t, 0))

(:func:`gesco.receiver.guidance.combine_guidance`, the scale of ``gesco sample --guidance``). The student is the
teacher's UNet plus a zero-initialised embedding of s (``UNetConfig.guidance_conditioning``), so it starts as the
teacher's conditional network, and learns :math:`\epsilon_\theta(x_t, y, s) \approx \hat\epsilon_s(x_t)` for s
drawn uniformly from ``guidance_range``. With learned variance the guided output's variance channels are the
conditional pass's, so the student regresses those onto the teacher's conditional ones.

Each step, with every draw from ``step_generator(seed, s, r)`` in this order: the flips, the noisy map (sigma,
channel noise, as the teacher's ``training_noise``), the scales s, the timesteps t and the noise epsilon; then
:math:`x_t = \sqrt{\bar\alpha_t} x_0 + \sqrt{1 - \bar\alpha_t} \epsilon` from the real image, the teacher's
guided output (no gradient, one batch of 2B) and the MSE of the student's one pass against it. The steps, exact
resume, checkpoints, EMA and learning-rate schedule are :mod:`gesco.training.loop`'s; the EMA student is exported
to ``output_dir/model`` as a receiver folder with the teacher's ``receiver.json``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

from gesco.channel.quality import NOISE_AWARE_TRAINING_SIGMAS
from gesco.config import Config
from gesco.receiver.diffusion import GaussianDiffusion
from gesco.receiver.guidance import combine_guidance
from gesco.receiver.noise_level import NoiseConditioned
from gesco.receiver.pipeline import DiffusionReceiver, receiver_from_weights
from gesco.receiver.unet import GescoUNet
from gesco.training.conditioning import NOISE_MODES, flipped_noisy_condition
from gesco.training.config import MIXED_PRECISION, DataConfig, check_run_settings
from gesco.training.data import TABLE_OF_KIND, build_dataset, collate_samples
from gesco.training.loop import LoopResult, LoopSettings, StepInputs, StepOutput, TrainingLoop
from gesco.weights_folder import model_folder

#: The student's part of the output that only the guidance embedding adds to the teacher's weights.
GUIDANCE_EMBEDDING_PREFIX = "guidance_embedding."


@dataclass(frozen=True)
class GuidanceDistillConfig(Config):
    """One guidance distillation run; saved as ``config.json`` in ``output_dir``.

    Attributes:
        teacher: the receiver folder to distil, or a shipped receiver's name.
        guidance_range: (lo, hi) with 0 <= lo <= hi: the scales s drawn uniformly each step; the exported
            receiver is meant to sample within it (its default ``sampler.guidance`` is the teacher's).
        data: the training scenes (the teacher's size, class table and edge rule).
        noise: how the maps are made noisy ("paper", "channel", "none"); None takes the teacher's
            ``training_noise`` (the run's saved config records the one used).
        noise_sigmas: the noise levels drawn for the maps.
    """

    output_dir: str = "runs/guidance-distilled"
    teacher: str = "synthetic-streets-64x128"
    guidance_range: tuple[float, float] = (1.0, 8.0)
    data: DataConfig = field(default_factory=DataConfig)
    noise: str | None = None
    noise_sigmas: tuple[float, ...] = NOISE_AWARE_TRAINING_SIGMAS
    batch_size: int = 8
    max_steps: int = 2000
    learning_rate: float = 1e-4
    warmup_steps: int = 0
    lr_schedule: str = "constant"
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    ema_warmup: bool = True
    mixed_precision: str = "no"
    seed: int = 0
    log_every: int = 10
    checkpoint_every: int = 500
    keep_checkpoints: int = 2

    def __post_init__(self) -> None:
        check_distillation_settings(self)


def check_distillation_settings(config) -> None:
    """The checks every distillation config shares (``GuidanceDistillConfig``, ``ConsistencyDistillConfig``): the
    loop's settings (learning rate and EMA among them), a teacher, the scale range, the map noise and precision.

    Raises:
        ValueError: naming the config class and the field that is wrong.
    """
    check_run_settings(config)
    name = type(config).__name__
    if not config.teacher:
        raise ValueError(f"{name}.teacher must name a receiver folder or a shipped receiver")
    scales = tuple(config.guidance_range)
    if len(scales) != 2 or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in scales
    ):
        raise ValueError(f"{name}.guidance_range must be two finite numbers (lo, hi), got {config.guidance_range!r}")
    low, high = scales
    if low < 0 or low > high:
        raise ValueError(
            f"{name}.guidance_range must satisfy 0 <= lo <= hi (guidance scales; 1 = conditional model), got "
            f"({low:g}, {high:g}){'; swap them' if low > high >= 0 else ''}"
        )
    if config.noise is not None and config.noise not in NOISE_MODES:
        raise ValueError(f"{name}.noise must be one of {list(NOISE_MODES)} or None, got {config.noise!r}")
    if config.noise != "none" and not config.noise_sigmas:
        raise ValueError(f"{name}.noise_sigmas: noise-aware maps need at least one sigma")
    if config.mixed_precision not in MIXED_PRECISION:
        raise ValueError(
            f"{name}.mixed_precision must be one of {list(MIXED_PRECISION)}, got {config.mixed_precision!r}"
        )


def load_teacher(name_or_path: str) -> DiffusionReceiver:
    """The receiver to distil, from a folder or a shipped name.

    Raises:
        FileNotFoundError: neither a folder nor a shipped model, or a folder without ``receiver.json``.
        ValueError: the receiver is already a guidance-distilled student.
    """
    folder = model_folder(name_or_path)
    if folder is None:
        raise FileNotFoundError(f"teacher {name_or_path!r} is neither a receiver folder nor a shipped model's name")
    teacher = DiffusionReceiver.from_pretrained(folder)
    if teacher.unet.config.guidance_conditioning:
        raise ValueError(
            f"teacher {name_or_path!r} is already a guidance-distilled student (one pass per step); distil the "
            "two-pass receiver it was made from"
        )
    return teacher


def student_from_teacher(teacher: GescoUNet) -> GescoUNet:
    """The teacher's architecture and weights plus a guidance-scale embedding (zero output at first): for every
    scale s it gives exactly the teacher's conditional output until trained."""
    student = GescoUNet(teacher.config.replace(guidance_conditioning=True))
    missing, unexpected = student.load_state_dict(teacher.state_dict(), strict=False)
    if unexpected or any(not name.startswith(GUIDANCE_EMBEDDING_PREFIX) for name in missing):
        raise ValueError(f"the teacher's weights do not fit its student: missing {missing}, unexpected {unexpected}")
    return student


def _check_data_fits(config: GuidanceDistillConfig, teacher: DiffusionReceiver) -> None:
    expected = TABLE_OF_KIND.get(config.data.kind)
    if expected is not None and expected != teacher.config.class_table:
        raise ValueError(
            f"data kind {config.data.kind!r} has {expected!r} maps, but the teacher takes "
            f"{teacher.config.class_table!r} maps; distil on the teacher's kind of data"
        )
    if tuple(config.data.size) != tuple(teacher.config.image_size):
        raise ValueError(
            f"data.size {tuple(config.data.size)} differs from the teacher's image size "
            f"{tuple(teacher.config.image_size)}; distil at the size it was trained at"
        )
    if config.data.edge_rule != teacher.config.edge_rule:
        raise ValueError(
            f"data.edge_rule {config.data.edge_rule!r} differs from the teacher's {teacher.config.edge_rule!r}"
        )
    low, high = config.guidance_range
    default = teacher.config.sampler.guidance
    if not low <= default <= high:
        # the exported receiver keeps the teacher's sampler, so its default scale must be one the student learned
        raise ValueError(
            f"the teacher samples at guidance {default:g} by default, outside guidance_range ({low:g}, {high:g}); "
            "widen the range to include it"
        )


def distill_guidance(config: GuidanceDistillConfig, *, resume: bool = False, progress: bool = True) -> LoopResult:
    """Run (or continue, with ``resume``) the distillation of ``config``; export ``output_dir/model``."""
    teacher = load_teacher(config.teacher)
    _check_data_fits(config, teacher)
    if config.noise is None:
        config = config.replace(noise=teacher.config.training_noise)
    unet_config = teacher.unet.config.replace(guidance_conditioning=True)
    table = teacher.table
    diffusion = GaussianDiffusion(teacher.config.diffusion)
    channels = unet_config.in_channels

    loop = TrainingLoop(
        LoopSettings.from_config(config, name="distill-guidance"),
        lambda: student_from_teacher(teacher.unet),
        lambda parameters: torch.optim.AdamW(parameters, lr=config.learning_rate),
        config=config,
        resume=resume,
        progress=progress,
    )
    network = teacher.unet.to(loop.accelerator.device).requires_grad_(False)
    dataset = build_dataset(config.data, table)
    low, high = config.guidance_range

    def step(inputs: StepInputs) -> StepOutput:
        generator, device = inputs.generator, inputs.device
        images, condition, sigma = flipped_noisy_condition(
            inputs.batch,
            table,
            flip=config.data.flip,
            edge_rule=config.data.edge_rule,
            mode=config.noise,
            sigmas=config.noise_sigmas,
            generator=generator,
        )
        scale = low + (high - low) * torch.rand(images.shape[0], generator=generator)
        t = diffusion.sample_timesteps(images.shape[0], generator=generator)
        noise = torch.randn(images.shape, generator=generator)
        x0, condition, scale, t = images.to(device), condition.to(device), scale.to(device), t.to(device)
        x_t = diffusion.q_sample(x0, t, noise.to(device))
        model_t = diffusion.model_timesteps(t)
        teacher_model, student = network, inputs.model
        if unet_config.noise_conditioning:
            # both guidance passes of the teacher see the map's noise level, as when sampling
            teacher_model, student = NoiseConditioned(network, sigma), NoiseConditioned(student, sigma)
        with torch.no_grad():
            both = teacher_model(
                torch.cat([x_t, x_t]),
                torch.cat([model_t, model_t]),
                torch.cat([condition, torch.zeros_like(condition)]),
            ).float()
            target = combine_guidance(*both.chunk(2), scale, channels)
        output = student(x_t, model_t, condition, guidance=scale).float()
        eps_mse = (output[:, :channels] - target[:, :channels]).pow(2).mean()
        if output.shape[1] == channels:
            return StepOutput(eps_mse, {"eps_mse": eps_mse.detach()})
        variance_mse = (output[:, channels:] - target[:, channels:]).pow(2).mean()
        return StepOutput(eps_mse + variance_mse, {"eps_mse": eps_mse.detach(), "variance_mse": variance_mse.detach()})

    return loop.run(
        dataset,
        step,
        collate_fn=collate_samples,
        export=lambda ema, directory: receiver_from_weights(
            unet_config, ema.state_dict(), teacher.config
        ).save_pretrained(Path(directory)),
    )
