"""The Gaussian diffusion of the GESCO receiver: schedule, forward process, reverse-step statistics, loss.

Numerically equal to the official code (openai/guided-diffusion as carried into ispamm/GESCO): every
schedule quantity is computed in float64 with numpy, then cast once to a float32 buffer, exactly as
guided-diffusion casts when it reads a value for a batch of timesteps.

Timesteps come in two kinds. An *index* ``t`` counts steps of this process, 0..len(process)-1; the
network always receives the *model timestep* ``timestep_map[t]`` of the full 1000-step process. They
differ only for a respaced process (:meth:`GaussianDiffusion.respaced`), whose betas are re-derived
from the kept cumulative alphas so that it visits exactly the same noise levels
(guided-diffusion ``respace.py``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Literal

import numpy as np
import torch
from torch import nn

from gesco.config import Config

BETA_SCHEDULES = ("linear", "cosine")
PREDICTIONS = ("epsilon",)
VARIANCES = ("learned_range", "fixed_small", "fixed_large")
LOSSES = ("mse", "hybrid")
LOSS_WEIGHTINGS = ("uniform", "min_snr")

# A denoiser: model(x (B, C, H, W), t (B,) long model timesteps, y (B, K, H, W)) -> (B, C or 2C, H, W).
Denoiser = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def _check_choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not supported; choose one of {list(allowed)}")


@dataclasses.dataclass(frozen=True)
class DiffusionConfig(Config):
    """The diffusion process the receiver's network was trained with.

    Attributes:
        num_train_timesteps: T, the number of forward-process steps (official: 1000).
        beta_schedule: "linear" (Ho et al.: 1e-4..0.02, both scaled by 1000/T) or "cosine" (Nichol & Dhariwal).
        prediction: what the network's first C output channels predict; only "epsilon" (the official choice).
        variance: "learned_range" (C more output channels v in [-1, 1] interpolate log beta~_t..log beta_t),
            "fixed_small" (posterior variance beta~_t) or "fixed_large" (beta_t).
        loss: "mse" (epsilon MSE only, the released GESCO code) or "hybrid" (MSE + variational bound on the
            learned variance with the mean frozen, as in improved-diffusion and SDM).
        loss_weighting: how the epsilon MSE is weighted over timesteps: "uniform" (Ho et al., the official
            code) or "min_snr" (Hang et al. 2023, "Efficient Diffusion Training via Min-SNR Weighting"):
            min(SNR(t), gamma) / SNR(t) with SNR(t) = alpha_bar_t / (1 - alpha_bar_t), which stops the
            nearly clean steps, whose gradients conflict with the noisy ones, from dominating training.
        min_snr_gamma: gamma of the min-SNR weighting (the paper's 5).
    """

    num_train_timesteps: int = 1000
    beta_schedule: Literal["linear", "cosine"] = "linear"
    prediction: Literal["epsilon"] = "epsilon"
    variance: Literal["learned_range", "fixed_small", "fixed_large"] = "learned_range"
    loss: Literal["mse", "hybrid"] = "mse"
    loss_weighting: Literal["uniform", "min_snr"] = "uniform"
    min_snr_gamma: float = 5.0

    def __post_init__(self) -> None:
        if isinstance(self.num_train_timesteps, bool) or not isinstance(self.num_train_timesteps, int):
            raise TypeError(f"num_train_timesteps must be an int, got {self.num_train_timesteps!r}")
        if self.num_train_timesteps < 2:
            raise ValueError(f"num_train_timesteps={self.num_train_timesteps} must be at least 2 (official: 1000)")
        _check_choice("beta_schedule", self.beta_schedule, BETA_SCHEDULES)
        _check_choice("prediction", self.prediction, PREDICTIONS)
        _check_choice("variance", self.variance, VARIANCES)
        _check_choice("loss", self.loss, LOSSES)
        _check_choice("loss_weighting", self.loss_weighting, LOSS_WEIGHTINGS)
        if (
            isinstance(self.min_snr_gamma, bool)
            or not isinstance(self.min_snr_gamma, int | float)
            or not math.isfinite(self.min_snr_gamma)
            or self.min_snr_gamma <= 0
        ):
            raise ValueError(f"min_snr_gamma={self.min_snr_gamma!r} must be a finite number > 0 (the paper's: 5)")
        if self.loss == "hybrid" and not self.learns_variance:
            raise ValueError(
                f"loss='hybrid' trains the learned variance, but variance={self.variance!r} is fixed; "
                "use variance='learned_range' or loss='mse'"
            )

    @property
    def learns_variance(self) -> bool:
        """True when the network outputs 2C channels (epsilon, then the variance interpolation v)."""
        return self.variance == "learned_range"

    def output_channels(self, image_channels: int = 3) -> int:
        """Number of channels the network must output for ``image_channels`` image channels."""
        return 2 * image_channels if self.learns_variance else image_channels


def beta_schedule(name: str, num_timesteps: int) -> np.ndarray:
    """float64 betas (T,) of a named schedule, as guided-diffusion defines them.

    "linear": ``linspace(1e-4 * 1000/T, 0.02 * 1000/T, T)``. "cosine": beta_t = min(1 - abar((t+1)/T) / abar(t/T),
    0.999) with abar(s) = cos((s + 0.008) / 1.008 * pi/2)^2 (Nichol & Dhariwal 2021, eq. 17).
    """
    _check_choice("beta_schedule", name, BETA_SCHEDULES)
    if name == "linear":
        scale = 1000 / num_timesteps
        return np.linspace(scale * 1e-4, scale * 0.02, num_timesteps, dtype=np.float64)

    def alpha_bar(s: float) -> float:
        return math.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2

    steps = range(num_timesteps)
    return np.array(
        [min(1 - alpha_bar((i + 1) / num_timesteps) / alpha_bar(i / num_timesteps), 0.999) for i in steps],
        dtype=np.float64,
    )


def space_timesteps(num_timesteps: int, spacing: str | Sequence[int]) -> list[int]:
    """The kept timesteps of a respaced process, with guided-diffusion's ``space_timesteps`` semantics.

    Args:
        num_timesteps: T of the full process.
        spacing: ``"ddimN"``: the first integer stride i with ``len(range(0, T, i)) == N`` (DDIM paper striding,
            so "ddim50" keeps 0, 20, ..., 980); ``"N"`` or ``"a,b,c"`` or a sequence of ints: split 0..T-1 into
            equal sections (the first T mod k one longer) and keep in each the given count, evenly spaced with
            rounding, both ends included ("250" keeps 0, 4, 8, ..., 995, 999; "20" keeps 0, 53, 105, ..., 946, 999).

    Returns:
        Sorted list of kept timesteps in 0..T-1.
    """
    if isinstance(spacing, str):
        if spacing.startswith("ddim"):
            count = _parse_count(spacing[len("ddim") :], spacing)
            for stride in range(1, num_timesteps):
                if len(range(0, num_timesteps, stride)) == count:
                    return list(range(0, num_timesteps, stride))
            raise ValueError(
                f"spacing {spacing!r}: no integer stride gives exactly {count} of {num_timesteps} steps; "
                "pick another N or use the even spacing 'N'"
            )
        section_counts = [_parse_count(part, spacing) for part in spacing.split(",")]
    else:
        section_counts = [int(count) for count in spacing]
    if not section_counts:
        raise ValueError("spacing has no section counts; use e.g. 'ddim50', '250' or '10,15,20'")
    size_per, extra = divmod(num_timesteps, len(section_counts))
    start, kept = 0, []
    for i, count in enumerate(section_counts):
        size = size_per + (1 if i < extra else 0)
        if not 1 <= count <= size:
            raise ValueError(f"spacing {spacing!r}: cannot take {count} steps from a section of {size} steps")
        stride = 1 if count == 1 else (size - 1) / (count - 1)
        position = 0.0
        for _ in range(count):
            kept.append(start + round(position))
            position += stride
        start += size
    return sorted(set(kept))


def _parse_count(text: str, spacing: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"spacing {spacing!r} is not 'ddimN', 'N' or 'a,b,c' with integer counts") from None


@dataclasses.dataclass(frozen=True)
class PMeanVariance:
    """p(x_{t-1} | x_t) of one reverse step and the x_0 prediction behind it; all (B, C, H, W) float32."""

    mean: torch.Tensor
    variance: torch.Tensor
    log_variance: torch.Tensor
    pred_xstart: torch.Tensor


@dataclasses.dataclass(frozen=True)
class LossOutput:
    """Per-sample training loss terms, each (B,) float32.

    ``loss`` is what to average and minimise: ``mse`` (epsilon MSE averaged over pixels, times the min-SNR
    weight when the config asks for it; the ``mse`` field itself is always unweighted) plus, for the hybrid
    loss, ``vb`` (the variational-bound term in bits per dimension, gradient flowing only into the variance
    channels). ``vb`` is None for the MSE-only loss.
    """

    loss: torch.Tensor
    mse: torch.Tensor
    vb: torch.Tensor | None


class GaussianDiffusion(nn.Module):
    """Schedule buffers and the per-step math of the diffusion; holds no network.

    Args:
        config: the diffusion process.
        use_timesteps: keep only these timesteps of the full process (respacing); None keeps all.
    """

    def __init__(self, config: DiffusionConfig | None = None, *, use_timesteps: Iterable[int] | None = None) -> None:
        super().__init__()
        self.config = config = config or DiffusionConfig()
        full_betas = beta_schedule(config.beta_schedule, config.num_train_timesteps)
        if use_timesteps is None:
            timestep_map = list(range(config.num_train_timesteps))
            betas = full_betas
        else:
            timestep_map = sorted(set(int(t) for t in use_timesteps))
            if len(timestep_map) < 2 or timestep_map[0] < 0 or timestep_map[-1] >= config.num_train_timesteps:
                raise ValueError(
                    f"use_timesteps must hold at least 2 timesteps of 0..{config.num_train_timesteps - 1}, "
                    f"got {timestep_map[:5]}{'...' if len(timestep_map) > 5 else ''}"
                )
            # Respacing: a beta per kept step such that the cumulative alphas equal the full process's.
            full_alphas_cumprod = np.cumprod(1.0 - full_betas)
            kept = full_alphas_cumprod[timestep_map]
            betas = 1.0 - kept / np.append(1.0, kept[:-1])
        self._register_schedule(betas)
        self.register_buffer("timestep_map", torch.tensor(timestep_map, dtype=torch.long), persistent=False)

    def _register_schedule(self, betas: np.ndarray) -> None:
        alphas_cumprod = np.cumprod(1.0 - betas)
        alphas_cumprod_prev = np.append(1.0, alphas_cumprod[:-1])
        posterior_variance = betas * (1.0 - alphas_cumprod_prev) / (1.0 - alphas_cumprod)
        # beta~_0 = 0: the log is clipped to beta~_1 at the first step, as guided-diffusion does.
        posterior_variance_clipped = np.append(posterior_variance[1], posterior_variance[1:])
        fixed_large = np.append(posterior_variance[1], betas[1:])
        schedule = {
            "betas": betas,
            "log_betas": np.log(betas),
            "alphas_cumprod": alphas_cumprod,
            "alphas_cumprod_prev": alphas_cumprod_prev,
            "sqrt_alphas_cumprod": np.sqrt(alphas_cumprod),
            "sqrt_one_minus_alphas_cumprod": np.sqrt(1.0 - alphas_cumprod),
            "sqrt_recip_alphas_cumprod": np.sqrt(1.0 / alphas_cumprod),
            "sqrt_recipm1_alphas_cumprod": np.sqrt(1.0 / alphas_cumprod - 1.0),
            "posterior_variance": posterior_variance,
            "posterior_log_variance_clipped": np.log(posterior_variance_clipped),
            "posterior_mean_coef1": betas * np.sqrt(alphas_cumprod_prev) / (1.0 - alphas_cumprod),
            "posterior_mean_coef2": (1.0 - alphas_cumprod_prev) * np.sqrt(1.0 - betas) / (1.0 - alphas_cumprod),
            "fixed_large_variance": fixed_large,
            "fixed_large_log_variance": np.log(fixed_large),
        }
        for name, values in schedule.items():
            self.register_buffer(name, torch.from_numpy(values).to(torch.float32), persistent=False)

    def __len__(self) -> int:
        return int(self.betas.shape[0])

    def respaced(self, spacing: str | Sequence[int]) -> GaussianDiffusion:
        """The process keeping ``space_timesteps(T, spacing)`` of the full T-step process (e.g. "ddim50")."""
        return GaussianDiffusion(
            self.config, use_timesteps=space_timesteps(self.config.num_train_timesteps, spacing)
        ).to(self.betas.device)

    def model_timesteps(self, t: torch.Tensor) -> torch.Tensor:
        """Model timesteps (0..T-1 of the full process) of step indices ``t`` of this process; (B,) long."""
        return self.timestep_map[t]

    def sample_timesteps(self, batch_size: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """Step indices drawn uniformly from 0..len(self)-1, (batch_size,) long (guided-diffusion's UniformSampler)."""
        return torch.randint(0, len(self), (batch_size,), generator=generator, device=self.betas.device)

    @staticmethod
    def _at(buffer: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """``buffer[t]`` shaped (B, 1, ..., 1) to broadcast against ``like``."""
        return buffer[t].view(-1, *([1] * (like.dim() - 1)))

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) noise; x0, noise (B, C, H, W), t (B,) step indices."""
        if noise.shape != x0.shape:
            raise ValueError(f"noise shape {tuple(noise.shape)} differs from x0 shape {tuple(x0.shape)}")
        signal = self._at(self.sqrt_alphas_cumprod, t, x0) * x0
        return signal + self._at(self.sqrt_one_minus_alphas_cumprod, t, x0) * noise

    def predict_start_from_noise(self, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """x_0 = sqrt(1/abar_t) x_t - sqrt(1/abar_t - 1) eps (DDPM eq. 15 solved for x_0)."""
        scaled = self._at(self.sqrt_recip_alphas_cumprod, t, x_t) * x_t
        return scaled - self._at(self.sqrt_recipm1_alphas_cumprod, t, x_t) * eps

    def q_posterior(self, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and clipped log-variance of q(x_{t-1} | x_t, x_0) (DDPM eqs. 6-7)."""
        mean = self._at(self.posterior_mean_coef1, t, x_t) * x0 + self._at(self.posterior_mean_coef2, t, x_t) * x_t
        return mean, self._at(self.posterior_log_variance_clipped, t, x_t).expand_as(x_t)

    def _check_output(self, model_output: torch.Tensor, like: torch.Tensor) -> None:
        """The network must give epsilon (and the variance value when it is learned) for every pixel of ``like``."""
        expected = self.config.output_channels(like.shape[1])
        if model_output.shape != (like.shape[0], expected, *like.shape[2:]):
            raise ValueError(
                f"model output shape {tuple(model_output.shape)} does not fit the sample shape {tuple(like.shape)} "
                f"with variance={self.config.variance!r}: expected {expected} channels"
            )

    def p_mean_variance(
        self, model_output: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, *, clip_denoised: bool = True
    ) -> PMeanVariance:
        """The reverse step p(x_{t-1} | x_t) implied by one (already guided) network output.

        Args:
            model_output: float (B, C, H, W) epsilon, or (B, 2C, H, W) epsilon then the learned-range value v in
                [-1, 1]; computed at model timesteps ``self.model_timesteps(t)``.
            x_t: float (B, C, H, W) current sample.
            t: (B,) long step indices of this process.
            clip_denoised: clamp the predicted x_0 to [-1, 1] before forming the mean (official default).

        Returns:
            mean = posterior mean at the predicted x_0; log-variance = (v+1)/2 log beta_t + (1-v)/2 log beta~_t for
            "learned_range", else the fixed table value; pred_xstart = the (clipped) x_0.
        """
        channels = x_t.shape[1]
        self._check_output(model_output, x_t)
        eps = model_output[:, :channels]
        if self.config.variance == "learned_range":
            min_log = self._at(self.posterior_log_variance_clipped, t, x_t)
            max_log = self._at(self.log_betas, t, x_t)
            frac = (model_output[:, channels:] + 1) / 2
            log_variance = frac * max_log + (1 - frac) * min_log
            variance = torch.exp(log_variance)
        elif self.config.variance == "fixed_large":
            variance = self._at(self.fixed_large_variance, t, x_t).expand_as(x_t)
            log_variance = self._at(self.fixed_large_log_variance, t, x_t).expand_as(x_t)
        else:
            variance = self._at(self.posterior_variance, t, x_t).expand_as(x_t)
            log_variance = self._at(self.posterior_log_variance_clipped, t, x_t).expand_as(x_t)
        pred_xstart = self.predict_start_from_noise(x_t, t, eps)
        if clip_denoised:
            pred_xstart = pred_xstart.clamp(-1, 1)
        mean, _ = self.q_posterior(pred_xstart, x_t, t)
        return PMeanVariance(mean=mean, variance=variance, log_variance=log_variance, pred_xstart=pred_xstart)

    def training_loss(
        self,
        model: Denoiser,
        x0: torch.Tensor,
        t: torch.Tensor,
        y: torch.Tensor,
        *,
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> LossOutput:
        """Loss of one training step at step indices ``t``.

        Args:
            model: the denoiser, called once as ``model(x_t, model_timesteps(t), y)``.
            x0: float (B, C, H, W) clean images in [-1, 1].
            t: (B,) long step indices (see :meth:`sample_timesteps`).
            y: float (B, K, H, W) conditioning map (zeros for a dropped map).
            noise: the epsilon to add; drawn with ``generator`` when None.

        Returns:
            :class:`LossOutput`; the "hybrid" vb term is guided-diffusion's RESCALED_MSE: KL(q || p) in bits
            per dimension (the decoder NLL at t = 0), times T/1000, from the variance channels only.
        """
        if noise is None:
            noise = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        x_t = self.q_sample(x0, t, noise)
        model_output = model(x_t, self.model_timesteps(t), y).float()
        channels = x0.shape[1]
        self._check_output(model_output, x0)
        eps = model_output[:, :channels]
        mse = (noise - eps).pow(2).mean(dim=tuple(range(1, x0.dim())))
        # The weighting changes what is minimised; the reported MSE stays the plain one, comparable across runs.
        weighted = mse * self.min_snr_weight(t) if self.config.loss_weighting == "min_snr" else mse
        if self.config.loss == "mse":
            return LossOutput(loss=weighted, mse=mse, vb=None)
        # Learn the variance through the bound without letting the bound move the mean.
        frozen = torch.cat([eps.detach(), model_output[:, channels:]], dim=1)
        vb = self._vb_bits_per_dim(frozen, x0, x_t, t) * (self.config.num_train_timesteps / 1000.0)
        return LossOutput(loss=weighted + vb, mse=mse, vb=vb)

    def min_snr_weight(self, t: torch.Tensor) -> torch.Tensor:
        """(B,) min(SNR(t), gamma) / SNR(t), the min-SNR-gamma weight of an epsilon loss at step indices t."""
        alpha_bar = self.alphas_cumprod[t].double()
        snr = alpha_bar / (1.0 - alpha_bar)
        return (snr.clamp(max=self.config.min_snr_gamma) / snr).float()

    def _vb_bits_per_dim(
        self, model_output: torch.Tensor, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor
    ) -> torch.Tensor:
        """L_{t-1} of the variational bound in bits per dimension, (B,); -log p(x_0 | x_1) at t = 0."""
        true_mean, true_log_variance = self.q_posterior(x0, x_t, t)
        p = self.p_mean_variance(model_output, x_t, t, clip_denoised=False)
        dims = tuple(range(1, x0.dim()))
        kl = normal_kl(true_mean, true_log_variance, p.mean, p.log_variance).mean(dim=dims) / math.log(2.0)
        nll = -discretized_gaussian_log_likelihood(x0, mean=p.mean, log_scale=0.5 * p.log_variance)
        nll = nll.mean(dim=dims) / math.log(2.0)
        return torch.where(t == 0, nll, kl)


def normal_kl(mean1: torch.Tensor, logvar1: torch.Tensor, mean2: torch.Tensor, logvar2: torch.Tensor) -> torch.Tensor:
    """Elementwise KL(N(mean1, e^logvar1) || N(mean2, e^logvar2)) in nats."""
    return 0.5 * (-1.0 + logvar2 - logvar1 + torch.exp(logvar1 - logvar2) + (mean1 - mean2) ** 2 * torch.exp(-logvar2))


def _approx_standard_normal_cdf(x: torch.Tensor) -> torch.Tensor:
    # The tanh approximation guided-diffusion uses (kept for numerical equality with its losses).
    return 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))


def discretized_gaussian_log_likelihood(
    x: torch.Tensor, *, mean: torch.Tensor, log_scale: torch.Tensor
) -> torch.Tensor:
    """Elementwise log-probability (nats) of 8-bit pixels x in [-1, 1] (bins 2/255 wide) under N(mean, e^{2 log_scale}).

    The bins at -1 and 1 extend to -inf and +inf.
    """
    centered = x - mean
    inv_std = torch.exp(-log_scale)
    cdf_plus = _approx_standard_normal_cdf(inv_std * (centered + 1.0 / 255.0))
    cdf_min = _approx_standard_normal_cdf(inv_std * (centered - 1.0 / 255.0))
    log_cdf_plus = torch.log(cdf_plus.clamp(min=1e-12))
    log_one_minus_cdf_min = torch.log((1.0 - cdf_min).clamp(min=1e-12))
    log_delta = torch.log((cdf_plus - cdf_min).clamp(min=1e-12))
    return torch.where(x < -0.999, log_cdf_plus, torch.where(x > 0.999, log_one_minus_cdf_min, log_delta))
