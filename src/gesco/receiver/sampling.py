"""Image generation from a semantic map: diffusers schedulers driven by the GESCO denoiser.

Six samplers, all with the same visible loop (set timesteps, guided prediction, ``scheduler.step``):

- ``"ddpm"``: the official ancestral sampler (1000 steps, learned-range variance, x_0 clipped);
  ``DDPMScheduler(variance_type="learned_range")``.
- ``"ddim"``: the official DDIM (eta 0 by default), epsilon re-derived from the clipped x_0;
  ``DDIMScheduler(use_clipped_model_output=True)``.
- ``"dpmpp"``: DPM-Solver++(2M), ``DPMSolverMultistepScheduler(algorithm_type="dpmsolver++", solver_order=2)``.
- ``"dpmpp-sde"``: SDE-DPM-Solver++(2M), the same solver with fresh noise at every step
  (``algorithm_type="sde-dpmsolver++"``). Like ancestral DDPM, the injected noise washes out the epsilon
  errors of a briefly trained model, which the deterministic solvers (DDIM, DPM-Solver++, UniPC) leave in
  the image as grain.
- ``"unipc"``: UniPC (bh2, order 2), ``UniPCMultistepScheduler``.
- ``"lcm"``: multistep consistency sampling (Song et al. 2023, "Consistency Models", Algorithm 1; Luo et al.
  2023, "Latent Consistency Models"), ``LCMScheduler``: each step maps x_t to the consistency function
  f(x_t, t) = c_skip(t) x_t + c_out(t) x_0 and re-noises it to the next timestep. Only for a receiver made by
  ``gesco distill-consistency`` (2-8 steps); its timesteps are a subset of the ``lcm_original_steps``-point
  skip-step schedule it was distilled on.

DDPM and DDIM reproduce the official respacing: the scheduler runs on the respaced process
(guided-diffusion ``space_timesteps``: "ddimN", "N", "a,b,c"), whose step index k maps to the original
timestep the network receives. DPM-Solver++ and UniPC run on the full process with diffusers' own
"linspace" timesteps (the first at T-1, the last jump straight to x_0).

Clipping x_0: DDIM, DDPM and LCM have ``clip_sample``. DPM-Solver++ and UniPC have no such option; their
``thresholding=True`` with ``sample_max_value=1.0`` clamps the dynamic threshold to exactly 1, which is
plain clipping to [-1, 1].
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Literal

import torch
from diffusers import (
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    LCMScheduler,
    UniPCMultistepScheduler,
)
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from tqdm.auto import tqdm

from gesco.config import Config
from gesco.constants import SAMPLERS  # defined there so that the command line reads the names without torch
from gesco.receiver.diffusion import Denoiser, DiffusionConfig, GaussianDiffusion
from gesco.receiver.guidance import AUTOCAST_NAMES, autocast_dtype_from_name, guided_output

RESPACED_SAMPLERS = ("ddpm", "ddim")
IMAGE_CHANNELS = 3
#: Largest |value| of a conditioning map the sampler takes. Maps are 0/1 plus channel noise: sigma 1e5 at the
#: channels' lowest quality (-100 dB), times 1e3 under a deep zero-forced fade, stays below it; values near 1e20
#: overflow the network's float32 normalisations into NaN images.
MAX_CONDITION_MAGNITUDE = 1e9


class NonFiniteSampleError(ValueError):
    """Sampling produced NaN or infinite pixels; the message names the likely cause."""


@dataclasses.dataclass(frozen=True)
class SamplerConfig(Config):
    """How to generate: switching DDIM <-> DPM-Solver++ is ``config.replace(sampler="dpmpp", steps=20)``.

    Attributes:
        sampler: "ddpm", "ddim", "dpmpp", "dpmpp-sde", "unipc" or "lcm" (see the module docstring).
        steps: number of network evaluations per image per guidance pass (official DDPM: 1000).
        guidance: classifier-free guidance scale s (1 = conditional model only, one forward per step).
        respacing: ddpm/ddim only: guided-diffusion spacing string keeping exactly ``steps`` timesteps (e.g.
            "10,20,20"); None means "ddim{steps}" for DDIM and "{steps}" for DDPM (1000 keeps every timestep).
        eta: DDIM noise scale (0 = deterministic, the official setting); ddim only.
        clip_denoised: clamp each predicted x_0 to [-1, 1] (official; without it a young model gives noise).
        two_pass_guidance: conditional and unconditional passes as two forwards instead of one batched one.
        autocast_dtype: precision of the network only (the sampler's own math stays float32): "auto" (the
            default) runs bfloat16 autocast on CUDA and on CPUs with AVX512 / AMX kernels and float32 elsewhere,
            decided when sampling by :func:`gesco.receiver.guidance.default_autocast_name`; "float32" (no
            autocast, for comparisons against official tensors), "bfloat16" or "float16" force one.
        lcm_original_steps: lcm only (the others ignore it): the number N of points of the skip-step schedule
            (timesteps k-1, 2k-1, ..., T-1 with k = T // N) the receiver was consistency-distilled on, its
            ``num_ddim_timesteps``; ``steps`` must not exceed it. 50 is LCM's and ``distill-consistency``'s default.
    """

    sampler: Literal["ddpm", "ddim", "dpmpp", "dpmpp-sde", "unipc", "lcm"] = "ddim"
    steps: int = 50
    guidance: float = 2.0
    respacing: str | None = None
    eta: float = 0.0
    clip_denoised: bool = True
    two_pass_guidance: bool = False
    autocast_dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    lcm_original_steps: int = 50

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler={self.sampler!r} is not supported; choose one of {list(SAMPLERS)}")
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"steps={self.steps!r} must be a positive int")
        for name in ("guidance", "eta"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{name}={value!r} must be a finite number (guidance: 1 = conditional only, ~1-3)")
        if self.respacing is not None and self.sampler not in RESPACED_SAMPLERS:
            raise ValueError(
                f"respacing={self.respacing!r} applies to {list(RESPACED_SAMPLERS)} only; "
                f"sampler {self.sampler!r} spaces its {self.steps} steps itself, leave respacing=None"
            )
        if self.eta != 0.0 and self.sampler != "ddim":
            raise ValueError(f"eta={self.eta} applies to the 'ddim' sampler only; set eta=0.0 for {self.sampler!r}")
        if self.eta < 0:
            raise ValueError(f"eta={self.eta} must be >= 0 (0 = deterministic DDIM, 1 = DDPM-like noise)")
        if self.autocast_dtype not in AUTOCAST_NAMES:
            raise ValueError(f"autocast_dtype={self.autocast_dtype!r}; choose one of {list(AUTOCAST_NAMES)}")
        original = self.lcm_original_steps
        if isinstance(original, bool) or not isinstance(original, int) or original < 1:
            raise ValueError(f"lcm_original_steps={original!r} must be a positive int (the distillation's schedule)")
        if self.sampler == "lcm" and self.steps > original:
            raise ValueError(
                f"the lcm sampler takes at most lcm_original_steps={original} steps (its timesteps are a subset of "
                f"the distillation's schedule), got steps={self.steps}; 2-8 steps are typical"
            )

    @property
    def spacing(self) -> str:
        """The guided-diffusion spacing of the respaced process (ddpm/ddim)."""
        if self.respacing is not None:
            return self.respacing
        return f"ddim{self.steps}" if self.sampler == "ddim" else str(self.steps)


@dataclasses.dataclass(frozen=True)
class SampleOutput:
    """Generated images and the path that made them.

    Attributes:
        sample: float32 (B, 3, H, W) images, in [-1, 1] when ``clip_denoised``.
        model_timesteps: (N,) long, the timesteps (0..T-1) the network received, in sampling order.
    """

    sample: torch.Tensor
    model_timesteps: torch.Tensor


def build_scheduler(config: SamplerConfig, diffusion: GaussianDiffusion) -> tuple[SchedulerMixin, torch.Tensor]:
    """The diffusers scheduler of ``config`` with its timesteps set, and its step-index -> model-timestep map.

    DDPM and DDIM get a scheduler whose "training" process is the respaced one (betas from the kept cumulative
    alphas, one scheduler step per kept timestep), so that ``scheduler.timesteps`` are step indices and
    ``timestep_map[index]`` is the timestep the network receives, as guided-diffusion's ``SpacedDiffusion``.
    """
    clip = config.clip_denoised
    if config.sampler in RESPACED_SAMPLERS:
        process = diffusion.respaced(config.spacing)
        if len(process) != config.steps:
            raise ValueError(
                f"respacing {config.spacing!r} keeps {len(process)} steps, but steps={config.steps}; "
                "make them agree (or leave respacing=None)"
            )
        common: dict[str, Any] = dict(
            num_train_timesteps=len(process),
            # diffusers re-multiplies these betas in float32 instead of casting the float64 cumulative product;
            # on the official DDIM-50 reference that moves the sample by < 1e-5.
            trained_betas=process.betas.cpu().numpy(),
            prediction_type="epsilon",
            clip_sample=clip,
            clip_sample_range=1.0,
            timestep_spacing="leading",
            steps_offset=0,
        )
        if config.sampler == "ddpm":
            # gesco's variance names are diffusers' variance_type names.
            scheduler = DDPMScheduler(**common, variance_type=diffusion.config.variance)
        else:
            scheduler = DDIMScheduler(**common, set_alpha_to_one=True)
        scheduler.set_timesteps(len(process))
        return scheduler, process.timestep_map.cpu()
    if config.sampler == "lcm":
        if config.lcm_original_steps > len(diffusion):
            raise ValueError(
                f"lcm_original_steps={config.lcm_original_steps} exceeds the {len(diffusion)} timesteps of the process"
            )
        # c_skip, c_out are diffusers' (sigma_data 0.5, timestep_scaling 10), the ones gesco distill-consistency
        # trains the student's consistency function with (gesco.training.consistency_distillation).
        scheduler = LCMScheduler(
            num_train_timesteps=len(diffusion),
            trained_betas=diffusion.betas.cpu().numpy(),
            original_inference_steps=config.lcm_original_steps,
            prediction_type="epsilon",
            clip_sample=clip,
            clip_sample_range=1.0,
            set_alpha_to_one=True,
            timestep_scaling=10.0,
        )
        scheduler.set_timesteps(config.steps)
        return scheduler, diffusion.timestep_map.cpu()
    if config.steps >= len(diffusion):
        # the solvers' "linspace" timesteps repeat a timestep from T steps on, and the repeated step divides by 0
        raise ValueError(
            f"sampler {config.sampler!r} takes at most {len(diffusion) - 1} steps on a {len(diffusion)}-step "
            f"process, got steps={config.steps}; use fewer steps (20-50 are typical) or the 'ddpm' sampler"
        )
    common = dict(
        num_train_timesteps=len(diffusion),
        trained_betas=diffusion.betas.cpu().numpy(),
        prediction_type="epsilon",
        solver_order=2,
        thresholding=clip,
        sample_max_value=1.0,
        lower_order_final=True,
        final_sigmas_type="zero",
        timestep_spacing="linspace",
    )
    if config.sampler in ("dpmpp", "dpmpp-sde"):
        algorithm = "dpmsolver++" if config.sampler == "dpmpp" else "sde-dpmsolver++"
        scheduler = DPMSolverMultistepScheduler(**common, algorithm_type=algorithm, solver_type="midpoint")
    else:
        scheduler = UniPCMultistepScheduler(**common, predict_x0=True, solver_type="bh2")
    scheduler.set_timesteps(config.steps)
    return scheduler, diffusion.timestep_map.cpu()


@torch.no_grad()
def sample(
    model: Denoiser,
    y: torch.Tensor,
    config: SamplerConfig | None = None,
    *,
    diffusion: DiffusionConfig | None = None,
    generator: torch.Generator | None = None,
    x_T: torch.Tensor | None = None,
    progress: bool = True,
) -> SampleOutput:
    """Generate images from semantic maps.

    Args:
        model: the denoiser ``model(x, t, y)`` (put it in eval mode first).
        y: float (B, K, H, W) conditioning maps (e.g. the FDS output).
        config: the sampler; default DDIM-50 with guidance 2.
        diffusion: the process the model was trained with; default :class:`DiffusionConfig` ().
        generator: draws x_T (when not given) and the DDPM / DDIM-eta noise.
        x_T: float (B, 3, H, W) starting noise; drawn from ``generator`` when None.
        progress: show a tqdm bar.

    Returns:
        :class:`SampleOutput` (images in [-1, 1] when ``config.clip_denoised``).

    Example:
        >>> out = sample(model, y, SamplerConfig(sampler="dpmpp", steps=20, guidance=2.0), progress=False)
    """
    config = config or SamplerConfig()
    process = GaussianDiffusion(diffusion).to(y.device)
    if y.dim() != 4 or 0 in y.shape:
        raise ValueError(f"y must be a non-empty (B, K, H, W) map, got shape {tuple(y.shape)}")
    _check_condition(y)
    shape = (y.shape[0], IMAGE_CHANNELS, *y.shape[2:])
    if x_T is None:
        # drawn where the generator lives: a CPU generator gives the same x_T whatever device samples
        origin = y.device if generator is None else generator.device
        x_T = torch.randn(shape, generator=generator, device=origin, dtype=torch.float32).to(y.device)
    elif tuple(x_T.shape) != shape:
        raise ValueError(f"x_T shape {tuple(x_T.shape)} does not match the map: expected {shape}")
    scheduler, timestep_map = build_scheduler(config, process)
    autocast_dtype = autocast_dtype_from_name(config.autocast_dtype, y.device)
    step_options = _step_options(config, generator)
    # DDPM reads the learned variance from the output; the others use epsilon only.
    keep_variance = config.sampler == "ddpm"

    x = x_T.float()
    visited = []
    for index in tqdm(scheduler.timesteps, desc=f"{config.sampler} sampling", disable=not progress):
        t_model = timestep_map[index].to(y.device).expand(x.shape[0])
        output = guided_output(
            model,
            x,
            t_model,
            y,
            scale=config.guidance,
            two_pass=config.two_pass_guidance,
            autocast_dtype=autocast_dtype,
        )
        _check_output_channels(output, x, process.config)
        model_output = output if keep_variance else output[:, : x.shape[1]]
        x = scheduler.step(model_output, index, x, **step_options).prev_sample
        visited.append(int(t_model[0]))
    if config.sampler == "lcm" and config.clip_denoised:
        # LCM's last step is c_skip(t) x_t + c_out(t) x_0: the clipped x_0 plus c_skip(t) x_t (c_skip < 1e-5 from
        # t = 19 on), which would leave pixels just outside [-1, 1].
        x = x.clamp(-1.0, 1.0)
    # Every other sampler's last step lands on its (clipped) x_0 prediction, so x is already in [-1, 1].
    if not torch.isfinite(x).all():
        raise NonFiniteSampleError(
            f"the {config.sampler} sampler ({config.steps} steps, guidance {config.guidance:g}) produced NaN or "
            "infinite pixels although the conditioning map was finite; likely causes: a model whose weights hold "
            "NaN (a diverged training run), or float16 overflow (run in float32: --fp32)"
        )
    return SampleOutput(sample=x, model_timesteps=torch.tensor(visited, dtype=torch.long))


def _check_condition(y: torch.Tensor) -> None:
    """Refuse a conditioning map that would turn into NaN images, naming what is wrong with it."""
    if not torch.isfinite(y).all():
        bad = int((~torch.isfinite(y)).sum())
        raise ValueError(
            f"the conditioning map holds {bad} NaN or infinite values; check the received map (channel quality, "
            "noise sigma) that produced it"
        )
    largest = float(y.abs().max())
    if largest > MAX_CONDITION_MAGNITUDE:
        raise ValueError(
            f"the conditioning map holds values up to {largest:.3g}, above {MAX_CONDITION_MAGNITUDE:g}; maps are "
            "0/1 plus channel noise, so check the received map, or clean it with the fds map denoiser"
        )


def _step_options(config: SamplerConfig, generator: torch.Generator | None) -> dict[str, Any]:
    if config.sampler == "ddim":
        # The official DDIM re-derives epsilon from the clipped x_0 before stepping.
        return {"eta": config.eta, "use_clipped_model_output": True, "generator": generator}
    if config.sampler in ("ddpm", "dpmpp", "dpmpp-sde", "lcm"):
        return {"generator": generator}
    return {}


def _check_output_channels(output: torch.Tensor, x: torch.Tensor, diffusion: DiffusionConfig) -> None:
    expected = diffusion.output_channels(x.shape[1])
    if output.shape[1] != expected:
        raise ValueError(
            f"the model returned {output.shape[1]} channels, but variance={diffusion.variance!r} needs {expected}; "
            "pass the DiffusionConfig the model was trained with"
        )
