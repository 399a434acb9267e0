"""GaussianDiffusion against closed forms: schedules, respacing, q_sample, p_mean_variance, training loss."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from torch import nn

from gesco.receiver.diffusion import DiffusionConfig, GaussianDiffusion, LossOutput, space_timesteps


class StandInDenoiser(nn.Module):
    """A small deterministic network with the denoiser protocol: (x, t, y) -> (B, 6 or 3, H, W)."""

    def __init__(self, label_channels: int = 4, *, learn_sigma: bool = True, seed: int = 0) -> None:
        super().__init__()
        out_channels = 6 if learn_sigma else 3
        self.conv = nn.Conv2d(3 + label_channels, out_channels, 3, padding=1)
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            self.conv.weight.copy_(0.2 * torch.randn(self.conv.weight.shape, generator=generator))
            self.conv.bias.copy_(0.1 * torch.randn(self.conv.bias.shape, generator=generator))
        self.seen_timesteps: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.seen_timesteps.append(t.clone())
        h = self.conv(torch.cat([x, y], dim=1)) + torch.cos(t.float() / 300.0)[:, None, None, None]
        if h.shape[1] == 3:
            return h
        return torch.cat([h[:, :3], torch.tanh(h[:, 3:])], dim=1)


def closed_form_linear(num_timesteps: int) -> tuple[np.ndarray, np.ndarray]:
    """float64 betas and cumulative alphas of Ho et al.'s linear schedule scaled by 1000/T."""
    scale = 1000.0 / num_timesteps
    i = np.arange(num_timesteps, dtype=np.float64)
    betas = scale * (1e-4 + (0.02 - 1e-4) * i / (num_timesteps - 1))
    alphas_cumprod = np.array([math.prod(1.0 - betas[: k + 1]) for k in range(num_timesteps)])
    return betas, alphas_cumprod


def test_config_round_trip_and_typed_errors(tmp_path):
    config = DiffusionConfig(beta_schedule="cosine", loss="hybrid")
    assert DiffusionConfig.load(config.save(tmp_path)) == config
    assert config.output_channels(3) == 6 and DiffusionConfig(variance="fixed_large").output_channels(3) == 3
    with pytest.raises(ValueError, match="beta_schedule"):
        DiffusionConfig(beta_schedule="quadratic")
    with pytest.raises(ValueError, match="prediction"):
        DiffusionConfig(prediction="v")
    with pytest.raises(ValueError, match="hybrid"):
        DiffusionConfig(variance="fixed_small", loss="hybrid")
    with pytest.raises(ValueError, match="num_train_timesteps"):
        DiffusionConfig(num_train_timesteps=1)


@pytest.mark.parametrize("num_timesteps", [1000, 250])
def test_linear_schedule_matches_closed_form(num_timesteps):
    diffusion = GaussianDiffusion(DiffusionConfig(num_train_timesteps=num_timesteps))
    betas, alphas_cumprod = closed_form_linear(num_timesteps)
    assert all(buffer.dtype == torch.float32 for buffer in diffusion.buffers() if buffer.is_floating_point())
    np.testing.assert_allclose(diffusion.betas.numpy(), betas, rtol=1e-6)
    np.testing.assert_allclose(diffusion.alphas_cumprod.numpy(), alphas_cumprod, rtol=1e-6)
    posterior = betas[1:] * (1 - alphas_cumprod[:-1]) / (1 - alphas_cumprod[1:])
    np.testing.assert_allclose(diffusion.posterior_variance.numpy()[1:], posterior, rtol=1e-6)
    # beta~_0 = 0, so its log is replaced by log beta~_1.
    np.testing.assert_allclose(diffusion.posterior_log_variance_clipped.numpy()[0], np.log(posterior[0]), rtol=1e-6)
    assert torch.equal(diffusion.timestep_map, torch.arange(num_timesteps))


def test_cosine_schedule_matches_closed_form():
    diffusion = GaussianDiffusion(DiffusionConfig(beta_schedule="cosine"))

    def alpha_bar(s):
        return math.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2

    for t in (0, 1, 500, 998):
        expected = 1 - alpha_bar((t + 1) / 1000) / alpha_bar(t / 1000)
        assert diffusion.betas[t].item() == pytest.approx(expected, rel=1e-6)
    assert diffusion.betas[999].item() == pytest.approx(0.999, rel=1e-6)  # alpha_bar(1) = 0: clipped


def test_space_timesteps_ddim_strides_and_errors():
    assert space_timesteps(1000, "ddim50") == list(range(0, 1000, 20))
    assert space_timesteps(1000, "ddim25") == list(range(0, 1000, 40))
    assert space_timesteps(1000, "ddim30") == list(range(0, 1000, 34))  # first stride giving exactly 30 steps
    for bad in ("ddim999", "ddimx", "fifty", "500,600", "0"):
        with pytest.raises(ValueError, match="spacing"):
            space_timesteps(1000, bad)


def _even_sections(num_timesteps: int, counts: list[int]) -> list[int]:
    """guided-diffusion's section rule stated with exact fractions (no ties occur for these cases)."""
    kept, start = [], 0
    for i, count in enumerate(counts):
        size = num_timesteps // len(counts) + (1 if i < num_timesteps % len(counts) else 0)
        kept += [start + round(Fraction(j * (size - 1), count - 1)) for j in range(count)]
        start += size
    return sorted(set(kept))


@pytest.mark.parametrize(
    ("spacing", "counts"), [("250", [250]), ("20", [20]), ("10,15,20", [10, 15, 20]), ("3,3,3", [3, 3, 3])]
)
def test_space_timesteps_sections(spacing, counts):
    kept = space_timesteps(1000, spacing)
    assert kept == _even_sections(1000, counts)
    assert len(kept) == sum(counts)
    assert space_timesteps(1000, counts) == kept


def test_respaced_process_keeps_noise_levels_and_maps_timesteps():
    full = GaussianDiffusion()
    spaced = full.respaced("ddim50")
    assert len(spaced) == 50
    assert spaced.timestep_map.tolist() == list(range(0, 1000, 20))
    np.testing.assert_allclose(spaced.alphas_cumprod.numpy(), full.alphas_cumprod[::20].numpy(), rtol=1e-6)
    assert spaced.model_timesteps(torch.tensor([49, 0])).tolist() == [980, 0]
    # Respaced beta_k = 1 - abar(t_k) / abar(t_{k-1}).
    expected_beta = 1 - full.alphas_cumprod[500] / full.alphas_cumprod[480]
    assert spaced.betas[25].item() == pytest.approx(expected_beta.item(), rel=1e-5)
    with pytest.raises(ValueError, match="at least 2"):
        full.respaced("1")


def test_q_sample_closed_form():
    diffusion = GaussianDiffusion()
    generator = torch.Generator().manual_seed(0)
    x0 = torch.rand(3, 3, 4, 5, generator=generator) * 2 - 1
    noise = torch.randn(x0.shape, generator=generator)
    t = torch.tensor([0, 400, 999])
    _, alphas_cumprod = closed_form_linear(1000)
    abar = torch.tensor(alphas_cumprod[t.numpy()], dtype=torch.float64)[:, None, None, None]
    expected = abar.sqrt() * x0.double() + (1 - abar).sqrt() * noise.double()
    torch.testing.assert_close(diffusion.q_sample(x0, t, noise).double(), expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="noise shape"):
        diffusion.q_sample(x0, t, noise[:, :2])


@pytest.mark.parametrize("variance", ["learned_range", "fixed_small", "fixed_large"])
@pytest.mark.parametrize("clip", [True, False])
def test_p_mean_variance_matches_closed_form(variance, clip):
    diffusion = GaussianDiffusion(DiffusionConfig(variance=variance))
    generator = torch.Generator().manual_seed(1)
    t = torch.tensor([0, 1, 500, 999])
    x_t = torch.randn(4, 3, 4, 6, generator=generator)
    output = torch.randn(4, diffusion.config.output_channels(3), 4, 6, generator=generator)
    if variance == "learned_range":
        output[:, 3:] = output[:, 3:].tanh()
    got = diffusion.p_mean_variance(output, x_t, t, clip_denoised=clip)

    betas, abar = closed_form_linear(1000)
    abar_prev = np.append(1.0, abar[:-1])
    posterior = betas * (1 - abar_prev) / (1 - abar)

    def col(values):
        return torch.tensor(values[t.numpy()], dtype=torch.float64)[:, None, None, None]

    x, eps = x_t.double(), output[:, :3].double()
    x0 = (x - col(np.sqrt(1 - abar)) * eps) / col(np.sqrt(abar))
    if clip:
        x0 = x0.clamp(-1, 1)
    mean = (
        col(np.sqrt(abar_prev) * betas / (1 - abar)) * x0 + col(np.sqrt(1 - betas) * (1 - abar_prev) / (1 - abar)) * x
    )
    min_log = col(np.log(np.append(posterior[1], posterior[1:])))
    if variance == "learned_range":
        frac = (output[:, 3:].double() + 1) / 2
        log_variance = frac * col(np.log(betas)) + (1 - frac) * min_log
    elif variance == "fixed_large":
        log_variance = col(np.log(np.append(posterior[1], betas[1:]))).expand_as(x)
    else:
        log_variance = min_log.expand_as(x)
    torch.testing.assert_close(got.pred_xstart.double(), x0, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got.mean.double(), mean, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got.log_variance.double(), log_variance, rtol=1e-5, atol=1e-5)
    if variance != "fixed_small":  # fixed_small keeps beta~_0 = 0 as its variance, like the official code
        torch.testing.assert_close(got.variance.double(), log_variance.exp(), rtol=1e-5, atol=1e-9)
    if clip:
        assert got.pred_xstart.abs().max() <= 1


def test_p_mean_variance_rejects_wrong_channel_count():
    diffusion = GaussianDiffusion()
    with pytest.raises(ValueError, match="expected 6 channels"):
        diffusion.p_mean_variance(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4), torch.tensor([5]))


def test_mse_loss_per_sample_and_timestep_mapping():
    diffusion = GaussianDiffusion().respaced("ddim10")
    model = StandInDenoiser()
    generator = torch.Generator().manual_seed(2)
    x0 = torch.rand(3, 3, 8, 8, generator=generator) * 2 - 1
    y = torch.rand(3, 4, 8, 8, generator=generator)
    noise = torch.randn(x0.shape, generator=generator)
    t = torch.tensor([0, 5, 9])
    out = diffusion.training_loss(model, x0, t, y, noise=noise)
    assert isinstance(out, LossOutput) and out.vb is None
    assert model.seen_timesteps[-1].tolist() == [0, 500, 900]
    eps = model(diffusion.q_sample(x0, t, noise), torch.tensor([0, 500, 900]), y)[:, :3]
    expected = (noise - eps).pow(2).mean(dim=(1, 2, 3))
    torch.testing.assert_close(out.loss, expected)
    assert out.loss.shape == (3,) and torch.equal(out.loss, out.mse)
    # Drawing the noise from a generator is reproducible.
    first = diffusion.training_loss(model, x0, t, y, generator=torch.Generator().manual_seed(7)).loss
    second = diffusion.training_loss(model, x0, t, y, generator=torch.Generator().manual_seed(7)).loss
    torch.testing.assert_close(first, second)


def test_min_snr_weighting_matches_closed_form_and_keeps_plain_mse():
    """min(SNR, gamma) / SNR from the linear schedule's closed form: 1 at noisy steps, below 1 near t = 0."""
    config = DiffusionConfig(loss_weighting="min_snr", min_snr_gamma=5.0)
    weighted = GaussianDiffusion(config)
    plain = GaussianDiffusion()
    _, alphas_cumprod = closed_form_linear(1000)
    t = torch.tensor([0, 20, 100, 400, 999])
    snr = alphas_cumprod[t.numpy()] / (1.0 - alphas_cumprod[t.numpy()])
    expected_weight = np.minimum(snr, 5.0) / snr
    torch.testing.assert_close(weighted.min_snr_weight(t), torch.tensor(expected_weight, dtype=torch.float32))
    assert expected_weight[0] < 1e-3 and expected_weight[-1] == 1.0
    model = StandInDenoiser()
    generator = torch.Generator().manual_seed(3)
    x0 = torch.rand(5, 3, 8, 8, generator=generator) * 2 - 1
    y = torch.rand(5, 4, 8, 8, generator=generator)
    noise = torch.randn(x0.shape, generator=generator)
    out = weighted.training_loss(model, x0, t, y, noise=noise)
    reference = plain.training_loss(model, x0, t, y, noise=noise)
    torch.testing.assert_close(out.mse, reference.mse)
    torch.testing.assert_close(out.loss, reference.mse * torch.tensor(expected_weight, dtype=torch.float32))


@pytest.mark.parametrize("gamma", [0, -1.0, float("nan"), float("inf"), "5", True])
def test_min_snr_gamma_rejects_bad_values(gamma):
    with pytest.raises(ValueError, match="min_snr_gamma"):
        DiffusionConfig(loss_weighting="min_snr", min_snr_gamma=gamma)
    with pytest.raises(ValueError, match="loss_weighting"):
        DiffusionConfig(loss_weighting="snr")


class FixedOutput(nn.Module):
    """Returns the same leaf tensors whatever the input, to read gradients per output channel group."""

    def __init__(self, eps: torch.Tensor, v: torch.Tensor) -> None:
        super().__init__()
        self.eps = nn.Parameter(eps)
        self.v = nn.Parameter(v)

    def forward(self, x, t, y):
        return torch.cat([self.eps, self.v], dim=1)


def test_hybrid_vb_trains_variance_only():
    diffusion = GaussianDiffusion(DiffusionConfig(loss="hybrid"))
    generator = torch.Generator().manual_seed(3)
    model = FixedOutput(
        torch.randn(2, 3, 6, 6, generator=generator), torch.rand(2, 3, 6, 6, generator=generator) * 2 - 1
    )
    x0 = torch.rand(2, 3, 6, 6, generator=generator) * 2 - 1
    out = diffusion.training_loss(model, x0, torch.tensor([0, 300]), torch.zeros(2, 4, 6, 6), generator=generator)
    assert out.vb.shape == (2,) and torch.all(out.vb >= 0)
    torch.testing.assert_close(out.loss, out.mse + out.vb)
    out.vb.sum().backward()
    assert model.eps.grad is None or torch.count_nonzero(model.eps.grad) == 0
    assert torch.count_nonzero(model.v.grad) > 0


@pytest.mark.parametrize("num_timesteps", [1000, 500])
def test_hybrid_vb_equals_gaussian_kl_in_bits(num_timesteps):
    diffusion = GaussianDiffusion(DiffusionConfig(num_train_timesteps=num_timesteps, loss="hybrid"))
    generator = torch.Generator().manual_seed(4)
    x0 = torch.rand(2, 3, 5, 5, generator=generator) * 2 - 1
    noise = torch.randn(x0.shape, generator=generator)
    eps = torch.randn(x0.shape, generator=generator)
    v = torch.rand(x0.shape, generator=generator) * 2 - 1
    t = torch.tensor([10, num_timesteps - 1])
    out = diffusion.training_loss(FixedOutput(eps, v), x0, t, None, noise=noise)

    betas, abar = closed_form_linear(num_timesteps)
    abar_prev = np.append(1.0, abar[:-1])
    posterior = betas * (1 - abar_prev) / (1 - abar)
    for i, step in enumerate(t.tolist()):
        x_t = math.sqrt(abar[step]) * x0[i].double() + math.sqrt(1 - abar[step]) * noise[i].double()
        coef1 = math.sqrt(abar_prev[step]) * betas[step] / (1 - abar[step])
        coef2 = math.sqrt(1 - betas[step]) * (1 - abar_prev[step]) / (1 - abar[step])
        x0_pred = (x_t - math.sqrt(1 - abar[step]) * eps[i].double()) / math.sqrt(
            abar[step]
        )  # no clipping in the bound
        true_mean, model_mean = coef1 * x0[i].double() + coef2 * x_t, coef1 * x0_pred + coef2 * x_t
        true_var = posterior[step]
        frac = (v[i].double() + 1) / 2
        model_var = torch.exp(frac * math.log(betas[step]) + (1 - frac) * math.log(posterior[step]))
        kl = 0.5 * (torch.log(model_var / true_var) + (true_var + (true_mean - model_mean) ** 2) / model_var - 1)
        expected = kl.mean() / math.log(2) * num_timesteps / 1000
        assert out.vb[i].item() == pytest.approx(expected.item(), rel=1e-4)


def test_hybrid_vb_at_t0_is_decoder_nll():
    diffusion = GaussianDiffusion(DiffusionConfig(loss="hybrid"))
    generator = torch.Generator().manual_seed(5)
    x0 = (torch.randint(0, 256, (1, 3, 6, 6), generator=generator).float() / 127.5 - 1).clamp(-0.99, 0.99)
    eps = torch.randn(x0.shape, generator=generator)
    v = torch.zeros(x0.shape)
    noise = torch.randn(x0.shape, generator=generator)
    t = torch.tensor([0])
    out = diffusion.training_loss(FixedOutput(eps, v), x0, t, None, noise=noise)
    p = diffusion.p_mean_variance(torch.cat([eps, v], 1), diffusion.q_sample(x0, t, noise), t, clip_denoised=False)
    std = torch.exp(0.5 * p.log_variance.double())
    # Exact normal CDF instead of the tanh approximation the official loss uses: agree to ~1%.
    upper = torch.special.ndtr((x0.double() + 1 / 255 - p.mean.double()) / std)
    lower = torch.special.ndtr((x0.double() - 1 / 255 - p.mean.double()) / std)
    nll_bits = -torch.log((upper - lower).clamp(min=1e-12)).mean() / math.log(2)
    assert out.vb.item() == pytest.approx(nll_bits.item(), rel=2e-2)


def test_sample_timesteps_uniform_and_reproducible():
    diffusion = GaussianDiffusion().respaced("ddim25")
    first = diffusion.sample_timesteps(4000, generator=torch.Generator().manual_seed(0))
    second = diffusion.sample_timesteps(4000, generator=torch.Generator().manual_seed(0))
    assert torch.equal(first, second)
    assert first.min() == 0 and first.max() == 24
    assert abs(first.float().mean().item() - 12.0) < 0.5
