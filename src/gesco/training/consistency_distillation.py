r"""Few-step sampling: distil a receiver into a consistency model (guided consistency distillation, LCM-style).

Song et al. 2023, "Consistency Models" (consistency distillation, CD) and Luo et al. 2023, "Latent Consistency
Models" (LCM: guided CD with a skipping step), here in pixel space. The student learns the consistency function

.. math::  f_\theta(x_t, t, y, s) = c_\text{skip}(t) x_t + c_\text{out}(t) \hat x_0(x_t, \epsilon_\theta(x_t, t, y, s))

with :math:`\hat x_0 = (x_t - \sqrt{1 - \bar\alpha_t}\,\epsilon) / \sqrt{\bar\alpha_t}` clipped to [-1, 1] and
c_skip, c_out those of diffusers' ``LCMScheduler`` (:func:`consistency_scalings`), so the ``"lcm"`` sampler of
:mod:`gesco.receiver.sampling` follows what the student learned; it maps any point of a guided teacher's
probability-flow path to that path's image, in 2-8 steps of one forward each.

The discretisation is LCM's: on the teacher's T-step process, the N = ``num_ddim_timesteps`` timesteps
:math:`\tau_n = (n + 1) k - 1` with the skipping step k = T // N (:func:`skip_step_timesteps`, the schedule
``LCMScheduler`` samples from). A training step draws a scale s from ``guidance_range`` and an index n, and with
:math:`t = \tau_n`, :math:`t' = \max(t - k, 0)`:

1. :math:`x_t = \sqrt{\bar\alpha_t} x_0 + \sqrt{1 - \bar\alpha_t} \epsilon` from the real image;
2. the teacher's guided epsilon at (x_t, t, y, s), without gradient (:func:`teacher_epsilon`);
3. one DDIM step (eta 0, x_0 clipped) from t to t' gives :math:`\hat x_{t'}` (:func:`ddim_step`);
4. the target :math:`f_{\theta^-}(\hat x_{t'}, t', y, s)` of the target network :math:`\theta^-`; at t' = 0
   c_skip = 1 and c_out = 0, so there it is :math:`\hat x_0` itself (the boundary condition);
5. the loss :math:`d(f_\theta(x_t, t, y, s), f_{\theta^-}(\hat x_{t'}, t', y, s))`: the pseudo-Huber metric of
   Song & Dhariwal 2023 ("Improved Techniques for Training Consistency Models") or the mean squared error.

The target network is LCM's: an EMA of the student with ``target_decay`` (0.95), separate from the loop's export
EMA. It lives inside the trained module (:class:`StudentAndTarget`, with no gradient), so the loop's checkpoints
hold it and resume stays exact; the step updates it first, towards the student the previous step left, which is
LCM's update after each optimizer step. ``target_decay = 0`` is CD with :math:`\theta^- = \mathrm{stopgrad}\,\theta`.

Every draw of a step comes from ``step_generator(seed, s, r)`` in this order: the flips, the noisy map (sigma,
channel noise, as the teacher's ``training_noise``), the scales s, the indices n and the noise epsilon. The steps,
exact resume, checkpoints, export EMA and learning-rate schedule are :mod:`gesco.training.loop`'s; the export EMA of
the student is written to ``output_dir/model`` as a receiver folder whose default sampler is ``"lcm"``.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from gesco.channel.quality import NOISE_AWARE_TRAINING_SIGMAS
from gesco.config import Config
from gesco.receiver.diffusion import Denoiser, GaussianDiffusion
from gesco.receiver.guidance import call_denoiser, combine_guidance, is_guidance_distilled
from gesco.receiver.noise_level import NoiseConditioned
from gesco.receiver.pipeline import DiffusionReceiver, ReceiverConfig, receiver_from_weights
from gesco.receiver.unet import GescoUNet
from gesco.training.conditioning import flipped_noisy_condition
from gesco.training.config import DataConfig
from gesco.training.data import build_dataset, collate_samples
from gesco.training.guidance_distillation import _check_data_fits, check_distillation_settings, student_from_teacher
from gesco.training.loop import LoopResult, LoopSettings, StepInputs, StepOutput, TrainingLoop
from gesco.weights_folder import model_folder

#: diffusers ``LCMScheduler``'s boundary-condition constants: sigma_data, and the factor of the timestep.
SIGMA_DATA = 0.5
TIMESTEP_SCALING = 10.0
#: The consistency losses: Song & Dhariwal 2023's pseudo-Huber metric, or the mean squared error.
LOSSES = ("pseudo-huber", "l2")
#: Song & Dhariwal 2023's pseudo-Huber constant per sqrt(dimension): c = 0.00054 sqrt(3 H W).
PSEUDO_HUBER_FACTOR = 0.00054
STUDENT_PREFIX = "student."


@dataclass(frozen=True)
class ConsistencyDistillConfig(Config):
    """One consistency distillation run; saved as ``config.json`` in ``output_dir``.

    Attributes:
        teacher: the receiver folder to distil, or a shipped receiver's name; a ``distill-guidance`` student
            (one pass per guided epsilon) or a two-pass receiver.
        guidance_range: (lo, hi) with 0 <= lo <= hi: the scales s drawn uniformly each step; it must hold the
            teacher's default guidance, which the exported receiver keeps.
        data: the training scenes (the teacher's size, class table and edge rule).
        noise: how the maps are made noisy ("paper", "channel", "none"); None takes the teacher's
            ``training_noise``.
        noise_sigmas: the noise levels drawn for the maps.
        learning_rate: AdamW's. LCM fine-tunes Stable Diffusion's LoRA at 1e-6 .. 8e-6; the whole of a small
            pixel UNet starts from a converged teacher too, so 2e-5 keeps it close to it.
        ema_decay: the export EMA (the loop's), whose weights become ``output_dir/model``.
        target_decay: the target network's EMA of the student (LCM: 0.95); 0 makes it the student itself.
        num_ddim_timesteps: N, the points of the skip-step schedule (skipping step k = T // N); the exported
            sampler's ``lcm_original_steps``.
        default_steps: the exported receiver's number of lcm sampler steps (1 .. num_ddim_timesteps).
        loss: "pseudo-huber" (per image, c = 0.00054 sqrt(3 H W)) or "l2" (mean squared error).
        student_init: None (the student starts from the teacher) or a ``distill-guidance`` student of the same
            teacher (folder or shipped name) to start from: its guidance embedding is trained already, so a short
            run spends its steps on the few-step map, while the teacher's targets stay the exact two-pass ones.
    """

    output_dir: str = "runs/consistency-distilled"
    teacher: str = "synthetic-streets-64x128"
    guidance_range: tuple[float, float] = (1.0, 8.0)
    data: DataConfig = field(default_factory=DataConfig)
    noise: str | None = None
    noise_sigmas: tuple[float, ...] = NOISE_AWARE_TRAINING_SIGMAS
    batch_size: int = 8
    max_steps: int = 1000
    learning_rate: float = 2e-5
    warmup_steps: int = 0
    lr_schedule: str = "constant"
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    ema_warmup: bool = True
    target_decay: float = 0.95
    num_ddim_timesteps: int = 50
    default_steps: int = 4
    loss: str = "pseudo-huber"
    mixed_precision: str = "no"
    seed: int = 0
    log_every: int = 10
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    student_init: str | None = None

    def __post_init__(self) -> None:
        check_distillation_settings(self)
        name = type(self).__name__
        if not 0.0 <= self.target_decay < 1.0:
            raise ValueError(f"{name}.target_decay must be in [0, 1), got {self.target_decay}")
        for count in ("num_ddim_timesteps", "default_steps"):
            value = getattr(self, count)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}.{count} must be a positive int, got {value!r}")
        if self.default_steps > self.num_ddim_timesteps:
            raise ValueError(
                f"{name}.default_steps={self.default_steps} exceeds num_ddim_timesteps={self.num_ddim_timesteps}: "
                "the lcm sampler's steps are a subset of the distillation's schedule (2-8 are typical)"
            )
        if self.loss not in LOSSES:
            raise ValueError(f"{name}.loss must be one of {list(LOSSES)}, got {self.loss!r}")
        if self.student_init is not None and not (isinstance(self.student_init, str) and self.student_init):
            raise ValueError(
                f"{name}.student_init must be None or a receiver folder / shipped name, got {self.student_init!r}"
            )


def consistency_scalings(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""c_skip(t), c_out(t) of diffusers' ``LCMScheduler.get_scalings_for_boundary_condition_discrete``.

    .. math::  c_\text{skip} = \frac{\sigma_d^2}{(10 t)^2 + \sigma_d^2}, \quad
               c_\text{out} = \frac{10 t}{\sqrt{(10 t)^2 + \sigma_d^2}}, \quad \sigma_d = 0.5

    so f(x, 0) = x (the boundary condition), and from t = 19 on c_skip < 1e-5.

    Args:
        t: (B,) timesteps 0..T-1 of the full process.

    Returns:
        float32 (B,) c_skip and c_out.
    """
    scaled = t.float() * TIMESTEP_SCALING
    c_skip = SIGMA_DATA**2 / (scaled**2 + SIGMA_DATA**2)
    c_out = scaled / (scaled**2 + SIGMA_DATA**2).sqrt()
    return c_skip, c_out


def _at(values: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``values[t]`` as float32 (B, 1, ..., 1), to broadcast against ``like``."""
    return values.to(like.device)[t].float().view(-1, *([1] * (like.dim() - 1)))


def clipped_start(diffusion: GaussianDiffusion, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """x_0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t), clipped to [-1, 1] as the samplers clip it."""
    return diffusion.predict_start_from_noise(x_t, t, eps).clamp(-1.0, 1.0)


def consistency_function(
    diffusion: GaussianDiffusion, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor
) -> torch.Tensor:
    """f(x_t, t) = c_skip(t) x_t + c_out(t) x_0(eps), x_0 clipped: ``LCMScheduler.step``'s ``denoised``.

    Args:
        diffusion: the full T-step process; x_t, eps: float (B, 3, H, W); t: (B,) long timesteps.
    """
    c_skip, c_out = (c.view(-1, *([1] * (x_t.dim() - 1))) for c in consistency_scalings(t))
    return c_skip * x_t + c_out * clipped_start(diffusion, x_t, t, eps)


def skip_step_timesteps(num_timesteps: int, num_ddim_timesteps: int) -> torch.Tensor:
    """(N,) long: the timesteps (n + 1) k - 1 for n = 0..N-1, k = T // N (LCM's schedule, ``LCMScheduler``'s
    ``lcm_origin_timesteps``), ascending; the last is T - 1 when N divides T.

    >>> skip_step_timesteps(1000, 4).tolist()
    [249, 499, 749, 999]
    """
    if not 1 <= num_ddim_timesteps <= num_timesteps:
        raise ValueError(
            f"num_ddim_timesteps={num_ddim_timesteps} must be in 1..{num_timesteps} (the teacher's timesteps)"
        )
    skip = num_timesteps // num_ddim_timesteps
    return torch.arange(1, num_ddim_timesteps + 1) * skip - 1


def ddim_step(
    diffusion: GaussianDiffusion, x_t: torch.Tensor, t: torch.Tensor, t_prev: torch.Tensor, eps: torch.Tensor
) -> torch.Tensor:
    r"""One deterministic DDIM step (eta 0) from t to t_prev < t, as the ``"ddim"`` sampler steps: x_0 clipped,
    then epsilon re-derived from the clipped x_0 (diffusers' ``use_clipped_model_output``).

    .. math::  x_{t'} = \sqrt{\bar\alpha_{t'}}\,\hat x_0 + \sqrt{1 - \bar\alpha_{t'}}\,
               \frac{x_t - \sqrt{\bar\alpha_t}\,\hat x_0}{\sqrt{1 - \bar\alpha_t}}
    """
    signal, noise = diffusion.sqrt_alphas_cumprod, diffusion.sqrt_one_minus_alphas_cumprod
    x0 = clipped_start(diffusion, x_t, t, eps)
    eps = (x_t - _at(signal, t, x_t) * x0) / _at(noise, t, x_t)
    return _at(signal, t_prev, x_t) * x0 + _at(noise, t_prev, x_t) * eps


def teacher_epsilon(
    teacher: Denoiser, x_t: torch.Tensor, t: torch.Tensor, y: torch.Tensor, scale: torch.Tensor
) -> torch.Tensor:
    """The teacher's guided epsilon (B, 3, H, W) at one scale per sample, float32.

    A guidance-distilled teacher gives it in one forward with s as input; any other runs the conditional and the
    all-zero map as one batch of 2B and :func:`~gesco.receiver.guidance.combine_guidance` mixes them, as
    ``guided_output`` does (which takes one scale for the whole batch, so it is not called here).
    """
    channels = x_t.shape[1]
    if is_guidance_distilled(teacher):
        return call_denoiser(teacher, x_t, t, y, guidance=scale)[:, :channels]
    both = call_denoiser(teacher, torch.cat([x_t, x_t]), torch.cat([t, t]), torch.cat([y, torch.zeros_like(y)]))
    return combine_guidance(*both.chunk(2), scale, channels)[:, :channels]


def pseudo_huber(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    r"""Song & Dhariwal 2023's metric, per image and averaged: :math:`\sqrt{\lVert a - b\rVert^2 + c^2} - c` with
    c = 0.00054 sqrt(d), d = 3 H W; quadratic for tiny errors, linear (robust to outlier pixels) beyond c."""
    c = PSEUDO_HUBER_FACTOR * math.sqrt(prediction[0].numel())
    squared = (prediction - target).pow(2).flatten(1).sum(dim=1)
    return ((squared + c**2).sqrt() - c).mean()


class StudentAndTarget(nn.Module):
    """The student f_theta and its target network f_theta^- (an EMA of it, no gradient) as one module, so that
    the loop's checkpoints hold both; calling it calls the student. The loop's export EMA averages the target
    too (the export keeps the student's part), at the cost of a second copy of the weights in memory.

    Args:
        student: the student UNet (guidance-conditioned); the target starts as its copy.
    """

    def __init__(self, student: GescoUNet):
        super().__init__()
        self.student = student
        self.target = copy.deepcopy(student).requires_grad_(False)

    @property
    def guidance_distilled(self) -> bool:
        return True

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor, **options: torch.Tensor) -> torch.Tensor:
        return self.student(x, t, y, **options)

    @torch.no_grad()
    def update_target(self, decay: float) -> None:
        """theta^- <- decay theta^- + (1 - decay) theta (LCM's update; buffers are copied)."""
        for target, own in zip(self.target.parameters(), self.student.parameters(), strict=True):
            target.lerp_(own.detach(), 1.0 - decay)
        for target, own in zip(self.target.buffers(), self.student.buffers(), strict=True):
            target.copy_(own)


def load_teacher(name_or_path: str) -> DiffusionReceiver:
    """The receiver to distil, from a folder or a shipped name.

    Raises:
        FileNotFoundError: neither a folder nor a shipped model, or a folder without ``receiver.json``.
        ValueError: the receiver is already consistency-distilled (its sampler is "lcm").
    """
    folder = model_folder(name_or_path)
    if folder is None:
        raise FileNotFoundError(f"teacher {name_or_path!r} is neither a receiver folder nor a shipped model's name")
    teacher = DiffusionReceiver.from_pretrained(folder)
    if teacher.config.sampler.sampler == "lcm":
        raise ValueError(
            f"teacher {name_or_path!r} is already consistency-distilled (its sampler is lcm); its epsilon is not a "
            "diffusion model's, so distil the receiver it was made from"
        )
    return teacher


def consistency_student(teacher: GescoUNet) -> GescoUNet:
    """The teacher's weights in a UNet that takes s: a copy of a guidance-distilled teacher, or the teacher plus
    the zero-initialised guidance embedding of :func:`~gesco.training.guidance_distillation.student_from_teacher`."""
    if not teacher.config.guidance_conditioning:
        return student_from_teacher(teacher)
    student = GescoUNet(teacher.config)
    student.load_state_dict(teacher.state_dict())
    return student


def initial_student(config: ConsistencyDistillConfig, teacher: GescoUNet) -> GescoUNet:
    """The student's starting weights: ``config.student_init``'s UNet when given, else :func:`consistency_student`.

    Raises:
        FileNotFoundError: ``student_init`` is neither a receiver folder nor a shipped model's name.
        ValueError: it is not a guidance-distilled student of the teacher's architecture.
    """
    if config.student_init is None:
        return consistency_student(teacher)
    folder = model_folder(config.student_init)
    if folder is None:
        raise FileNotFoundError(
            f"student_init {config.student_init!r} is neither a receiver folder nor a shipped model's name"
        )
    start = DiffusionReceiver.from_pretrained(folder).unet
    if start.config != teacher.config.replace(guidance_conditioning=True):
        raise ValueError(
            f"student_init {config.student_init!r} is not a guidance-distilled student of the teacher's UNet "
            "(its config differs from the teacher's with guidance_conditioning=True); start from a "
            "gesco distill-guidance output of the same teacher"
        )
    return start


def exported_receiver_config(config: ConsistencyDistillConfig, teacher: ReceiverConfig) -> ReceiverConfig:
    """The teacher's receiver settings with the lcm sampler: ``default_steps`` steps at the teacher's guidance."""
    sampler = teacher.sampler.replace(
        sampler="lcm",
        steps=config.default_steps,
        respacing=None,
        eta=0.0,
        lcm_original_steps=config.num_ddim_timesteps,
    )
    return teacher.replace(sampler=sampler)


def distill_consistency(config: ConsistencyDistillConfig, *, resume: bool = False, progress: bool = True) -> LoopResult:
    """Run (or continue, with ``resume``) the consistency distillation of ``config``; export ``output_dir/model``."""
    teacher = load_teacher(config.teacher)
    _check_data_fits(config, teacher)
    if config.noise is None:
        config = config.replace(noise=teacher.config.training_noise)
    unet_config = teacher.unet.config.replace(guidance_conditioning=True)
    table = teacher.table
    diffusion = GaussianDiffusion(teacher.config.diffusion)
    timesteps = skip_step_timesteps(len(diffusion), config.num_ddim_timesteps)
    skip = len(diffusion) // config.num_ddim_timesteps
    receiver_config = exported_receiver_config(config, teacher.config)

    loop = TrainingLoop(
        LoopSettings.from_config(config, name="distill-consistency"),
        lambda: StudentAndTarget(initial_student(config, teacher.unet)),
        lambda parameters: torch.optim.AdamW([p for p in parameters if p.requires_grad], lr=config.learning_rate),
        config=config,
        resume=resume,
        progress=progress,
    )
    device = loop.accelerator.device
    network = teacher.unet.to(device).requires_grad_(False)
    diffusion = diffusion.to(device)
    dataset = build_dataset(config.data, table)
    low, high = config.guidance_range

    def step(inputs: StepInputs) -> StepOutput:
        generator = inputs.generator
        pair = loop.unwrapped_model
        pair.update_target(config.target_decay)
        images, condition, sigma = flipped_noisy_condition(
            inputs.batch,
            table,
            flip=config.data.flip,
            edge_rule=config.data.edge_rule,
            mode=config.noise,
            sigmas=config.noise_sigmas,
            generator=generator,
        )
        batch = images.shape[0]
        scale = low + (high - low) * torch.rand(batch, generator=generator)
        index = torch.randint(0, len(timesteps), (batch,), generator=generator)
        noise = torch.randn(images.shape, generator=generator)
        t = timesteps[index].to(device)
        # LCM's convention: from the smallest timestep k - 1 the step goes to 0, where c_skip = 1 and c_out = 0
        t_prev = (t - skip).clamp(min=0)
        x0, condition, scale = images.to(device), condition.to(device), scale.to(device)
        x_t = diffusion.q_sample(x0, t, noise.to(device))
        teacher_model, student, target = network, inputs.model, pair.target
        if unet_config.noise_conditioning:
            # every network sees the map's noise level, as when sampling
            teacher_model, student, target = (NoiseConditioned(m, sigma) for m in (network, student, target))
        with torch.no_grad():
            eps = teacher_epsilon(teacher_model, x_t, t, condition, scale)
            x_prev = ddim_step(diffusion, x_t, t, t_prev, eps)
            eps_target = target(x_prev, t_prev, condition, guidance=scale).float()[:, : x_t.shape[1]]
            wanted = consistency_function(diffusion, x_prev, t_prev, eps_target)
        eps_student = student(x_t, t, condition, guidance=scale).float()[:, : x_t.shape[1]]
        predicted = consistency_function(diffusion, x_t, t, eps_student)
        mse = (predicted - wanted).pow(2).mean()
        loss = pseudo_huber(predicted, wanted) if config.loss == "pseudo-huber" else mse
        return StepOutput(loss, {"mse": mse.detach()})

    def export(ema, directory: Path) -> None:
        weights = {k[len(STUDENT_PREFIX) :]: v for k, v in ema.state_dict().items() if k.startswith(STUDENT_PREFIX)}
        receiver_from_weights(unet_config, weights, receiver_config).save_pretrained(Path(directory))

    return loop.run(dataset, step, collate_fn=collate_samples, export=export)
