"""Guidance and the four samplers, with a small deterministic stand-in denoiser.

DDIM and DDPM are checked against loops written here from the official equations (guided-diffusion
``ddim_sample`` / ``p_sample``) on top of ``GaussianDiffusion.p_mean_variance``, which
test_diffusion_process.py checks against closed forms.
"""

from __future__ import annotations

import math

import pytest
import torch
from diffusers import DPMSolverMultistepScheduler
from torch import nn

from gesco.receiver.diffusion import DiffusionConfig, GaussianDiffusion
from gesco.receiver.guidance import guided_output
from gesco.receiver.sampling import SampleOutput, SamplerConfig, build_scheduler, sample

LABELS, H, W = 4, 8, 12


class StandInDenoiser(nn.Module):
    """Deterministic conv net with the denoiser protocol; records each call's batch size, map and dtype."""

    def __init__(self, *, learn_sigma: bool = True, seed: int = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3 + LABELS, 6 if learn_sigma else 3, 3, padding=1)
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            self.conv.weight.copy_(0.3 * torch.randn(self.conv.weight.shape, generator=generator))
            self.conv.bias.copy_(0.1 * torch.randn(self.conv.bias.shape, generator=generator))
        self.calls: list[tuple[int, torch.Tensor, torch.dtype]] = []

    def forward(self, x, t, y):
        h = self.conv(torch.cat([x, y], dim=1))
        self.calls.append((x.shape[0], y.clone(), h.dtype))
        h = h + 0.5 * x.repeat(1, h.shape[1] // 3, 1, 1) + torch.cos(t.float() / 300.0)[:, None, None, None]
        if h.shape[1] == 3:
            return h
        return torch.cat([h[:, :3], torch.tanh(h[:, 3:])], dim=1)


@pytest.fixture
def inputs():
    generator = torch.Generator().manual_seed(0)
    y = (torch.rand(2, LABELS, H, W, generator=generator) > 0.5).float()
    x_T = torch.randn(2, 3, H, W, generator=generator)
    return y, x_T


def test_guidance_formula_zero_map_and_variance_from_conditional_pass(inputs):
    y, x = inputs
    model = StandInDenoiser()
    t = torch.tensor([700, 700])
    with torch.no_grad():
        conditional = model(x, t, y)
        unconditional = model(x, t, torch.zeros_like(y))
        model.calls.clear()
        got = guided_output(model, x, t, y, scale=2.5)
    assert len(model.calls) == 1 and model.calls[0][0] == 4  # one batched forward
    assert torch.count_nonzero(model.calls[0][1][2:]) == 0  # second half: the all-zero map
    eps = unconditional[:, :3] + 2.5 * (conditional[:, :3] - unconditional[:, :3])
    torch.testing.assert_close(got[:, :3], eps, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got[:, 3:], conditional[:, 3:], rtol=1e-5, atol=1e-6)


def test_two_pass_guidance_equals_batched(inputs):
    y, x = inputs
    model = StandInDenoiser()
    t = torch.tensor([10, 900])
    with torch.no_grad():
        batched = guided_output(model, x, t, y, scale=2.0)
        model.calls.clear()
        two_pass = guided_output(model, x, t, y, scale=2.0, two_pass=True)
    assert [call[0] for call in model.calls] == [2, 2]
    assert torch.count_nonzero(model.calls[1][1]) == 0
    torch.testing.assert_close(two_pass, batched, rtol=1e-6, atol=1e-6)


def test_scale_one_is_the_conditional_model_in_one_forward(inputs):
    y, x = inputs
    model = StandInDenoiser()
    t = torch.tensor([3, 3])
    with torch.no_grad():
        expected = model(x, t, y)
        model.calls.clear()
        got = guided_output(model, x, t, y, scale=1.0)
    assert len(model.calls) == 1 and model.calls[0][0] == 2
    assert torch.equal(got, expected)


def test_guidance_with_three_channel_model_and_bf16_autocast(inputs):
    y, x = inputs
    model = StandInDenoiser(learn_sigma=False)
    t = torch.tensor([500, 500])
    with torch.no_grad():
        reference = guided_output(model, x, t, y, scale=2.0)
        model.calls.clear()
        low = guided_output(model, x, t, y, scale=2.0, autocast_dtype=torch.bfloat16)
    assert reference.shape == (2, 3, H, W)
    assert model.calls[0][2] == torch.bfloat16 and low.dtype == torch.float32
    torch.testing.assert_close(low, reference, rtol=0.05, atol=0.1)


def test_guidance_rejects_mismatched_map(inputs):
    y, x = inputs
    with pytest.raises(ValueError, match="map shape"):
        guided_output(StandInDenoiser(), x, torch.tensor([1, 1]), y[:1], scale=2.0)


def test_sampler_config_validation_and_round_trip(tmp_path):
    config = SamplerConfig(sampler="dpmpp", steps=20, guidance=1.5, autocast_dtype="bfloat16")
    assert SamplerConfig.load(config.save(tmp_path)) == config
    assert SamplerConfig().spacing == "ddim50"
    assert SamplerConfig(sampler="ddpm", steps=1000).spacing == "1000"
    for bad in (
        dict(sampler="euler"),
        dict(steps=0),
        dict(sampler="dpmpp", respacing="ddim20"),
        dict(sampler="unipc", eta=1.0),
        dict(eta=-0.5),
        dict(autocast_dtype="int8"),
    ):
        with pytest.raises(ValueError):
            SamplerConfig(**bad)


@pytest.mark.parametrize("sampler", ["ddpm", "ddim", "dpmpp", "dpmpp-sde", "unipc"])
def test_every_sampler_runs_finite_in_range(sampler, inputs):
    y, _ = inputs
    model = StandInDenoiser()
    config = SamplerConfig(sampler=sampler, steps=12, guidance=2.0)
    out = sample(model, y, config, generator=torch.Generator().manual_seed(0), progress=False)
    assert isinstance(out, SampleOutput)
    assert out.sample.shape == (2, 3, H, W) and out.sample.dtype == torch.float32
    assert torch.isfinite(out.sample).all() and out.sample.abs().max() <= 1.0
    assert len(out.model_timesteps) == 12 and out.model_timesteps.max() <= 999
    assert torch.all(out.model_timesteps[:-1] > out.model_timesteps[1:])
    # Reproducible from the generator.
    again = sample(model, y, config, generator=torch.Generator().manual_seed(0), progress=False)
    assert torch.equal(out.sample, again.sample)


def test_sde_dpmpp_draws_fresh_noise_from_the_generator(inputs):
    """From one x_T the deterministic solver gives one image whatever the generator, the SDE variant one per seed."""
    y, x_T = inputs
    model = StandInDenoiser()
    images = {}
    for name in ("dpmpp", "dpmpp-sde"):
        config = SamplerConfig(sampler=name, steps=8, guidance=2.0)
        images[name] = [
            sample(model, y, config, x_T=x_T, generator=torch.Generator().manual_seed(seed), progress=False).sample
            for seed in (0, 1)
        ]
    assert torch.equal(*images["dpmpp"])
    assert not torch.allclose(*images["dpmpp-sde"])
    assert not torch.allclose(images["dpmpp"][0], images["dpmpp-sde"][0])


def test_sde_dpmpp_first_step_is_the_data_prediction_sde(inputs):
    """x_s = (sigma_s / sigma_t) e^-h x_t + alpha_s (1 - e^-2h) x_0 + sigma_s sqrt(1 - e^-2h) z,
    h = lambda_s - lambda_t, with x_0 the clipped prediction
    (Lu et al. 2022, SDE-DPM-Solver++ first order, the solver's first step)."""
    y, x_T = inputs
    full = GaussianDiffusion()
    scheduler, _ = build_scheduler(SamplerConfig(sampler="dpmpp-sde", steps=8), full)
    t, s = (int(v) for v in scheduler.timesteps[:2])
    with torch.no_grad():
        eps = guided_output(StandInDenoiser(), x_T, torch.full((2,), t), y, scale=2.0)[:, :3]
    x0 = full.predict_start_from_noise(x_T, torch.full((2,), t), eps).clamp(-1, 1).double()
    abar = full.alphas_cumprod.double()
    alpha_t, sigma_t, alpha_s, sigma_s = abar[t].sqrt(), (1 - abar[t]).sqrt(), abar[s].sqrt(), (1 - abar[s]).sqrt()
    h = torch.log(alpha_s / sigma_s) - torch.log(alpha_t / sigma_t)
    z = torch.randn(x_T.shape, generator=torch.Generator().manual_seed(5)).double()
    expected = (
        sigma_s / sigma_t * torch.exp(-h) * x_T.double()
        + alpha_s * (1 - torch.exp(-2 * h)) * x0
        + sigma_s * torch.sqrt(1 - torch.exp(-2 * h)) * z
    )
    step = scheduler.step(eps, scheduler.timesteps[0], x_T, generator=torch.Generator().manual_seed(5)).prev_sample
    torch.testing.assert_close(step.double(), expected, rtol=1e-4, atol=1e-4)


def test_without_clipping_the_x0_prediction_escapes_the_range(inputs):
    y, x_T = inputs
    config = SamplerConfig(sampler="dpmpp", steps=10, clip_denoised=False)
    out = sample(StandInDenoiser(), y, config, x_T=x_T, progress=False)
    assert out.sample.abs().max() > 1.5


def _official_ddim(model, y, x_T, *, spacing, scale, eta=0.0, generator=None):
    """guided-diffusion ddim_sample_loop on the respaced process (Song et al. eq. 12)."""
    process = GaussianDiffusion().respaced(spacing)
    x = x_T
    for index in reversed(range(len(process))):
        t = torch.full((x.shape[0],), index)
        out = guided_output(model, x, process.model_timesteps(t), y, scale=scale)
        p = process.p_mean_variance(out, x, t)
        eps = (process.sqrt_recip_alphas_cumprod[index] * x - p.pred_xstart) / process.sqrt_recipm1_alphas_cumprod[
            index
        ]
        abar, abar_prev = process.alphas_cumprod[index], process.alphas_cumprod_prev[index]
        sigma = eta * torch.sqrt((1 - abar_prev) / (1 - abar)) * torch.sqrt(1 - abar / abar_prev)
        noise = torch.randn(x.shape, generator=generator)
        x = p.pred_xstart * abar_prev.sqrt() + torch.sqrt(1 - abar_prev - sigma**2) * eps
        if index > 0:
            x = x + sigma * noise
    return x


@pytest.mark.parametrize(("spacing", "eta"), [("ddim10", 0.0), ("ddim25", 1.0)])
def test_ddim_equals_official_equations(spacing, eta, inputs):
    y, x_T = inputs
    model = StandInDenoiser()
    steps = int(spacing[len("ddim") :])
    with torch.no_grad():
        expected = _official_ddim(
            model, y, x_T, spacing=spacing, scale=2.0, eta=eta, generator=torch.Generator().manual_seed(9)
        )
    config = SamplerConfig(sampler="ddim", steps=steps, guidance=2.0, eta=eta, autocast_dtype="float32")
    got = sample(model, y, config, x_T=x_T, generator=torch.Generator().manual_seed(9), progress=False)
    assert got.model_timesteps.tolist() == list(range(1000 - 1000 // steps, -1, -(1000 // steps)))
    torch.testing.assert_close(got.sample, expected, rtol=1e-5, atol=2e-5)


def _official_ddpm(model, y, x_T, *, spacing, scale, generator):
    """guided-diffusion p_sample_loop: mean + [t > 0] exp(log_variance / 2) noise."""
    process = GaussianDiffusion().respaced(spacing)
    x = x_T
    for index in reversed(range(len(process))):
        t = torch.full((x.shape[0],), index)
        p = process.p_mean_variance(guided_output(model, x, process.model_timesteps(t), y, scale=scale), x, t)
        x = p.mean + (index > 0) * torch.exp(0.5 * p.log_variance) * torch.randn(x.shape, generator=generator)
    return x


@pytest.mark.parametrize(("steps", "scale"), [(10, 2.0), (1000, 1.0)])
def test_ddpm_equals_official_equations(steps, scale, inputs):
    y, x_T = inputs
    model = StandInDenoiser()
    with torch.no_grad():
        expected = _official_ddpm(
            model, y, x_T, spacing=str(steps), scale=scale, generator=torch.Generator().manual_seed(3)
        )
    config = SamplerConfig(sampler="ddpm", steps=steps, guidance=scale, autocast_dtype="float32")
    got = sample(model, y, config, x_T=x_T, generator=torch.Generator().manual_seed(3), progress=False)
    assert got.model_timesteps[0] == 999 and got.model_timesteps[-1] == 0
    torch.testing.assert_close(got.sample, expected, rtol=1e-4, atol=1e-4)


def test_dpmpp_thresholding_at_one_is_plain_clipping(inputs):
    """Same sampler driven with x_0 = clamp(predicted x_0, -1, 1) computed here and prediction_type="sample"."""
    y, x_T = inputs
    model = StandInDenoiser()
    full = GaussianDiffusion()
    scheduler = DPMSolverMultistepScheduler(
        trained_betas=full.betas.numpy(), algorithm_type="dpmsolver++", solver_order=2, prediction_type="sample"
    )
    scheduler.set_timesteps(15)
    x = x_T
    with torch.no_grad():
        for t in scheduler.timesteps:
            t_batch = t.expand(2)
            eps = guided_output(model, x, t_batch, y, scale=2.0)[:, :3]
            x0 = full.predict_start_from_noise(x, t_batch, eps).clamp(-1, 1)
            x = scheduler.step(x0, t, x).prev_sample
    got = sample(
        model,
        y,
        SamplerConfig(sampler="dpmpp", steps=15, guidance=2.0, autocast_dtype="float32"),
        x_T=x_T,
        progress=False,
    )
    torch.testing.assert_close(got.sample, x, rtol=1e-5, atol=1e-5)


def test_sample_rejects_wrong_model_channels_and_x_T_shape(inputs):
    y, x_T = inputs
    with pytest.raises(ValueError, match="needs 6"):
        sample(StandInDenoiser(learn_sigma=False), y, SamplerConfig(steps=2), x_T=x_T, progress=False)
    fixed = DiffusionConfig(variance="fixed_large")
    out = sample(
        StandInDenoiser(learn_sigma=False),
        y,
        SamplerConfig(sampler="ddpm", steps=5),
        diffusion=fixed,
        x_T=x_T,
        progress=False,
    )
    assert torch.isfinite(out.sample).all()
    with pytest.raises(ValueError, match="keeps 25 steps"):
        sample(StandInDenoiser(), y, SamplerConfig(steps=20, respacing="ddim25"), x_T=x_T, progress=False)
    with pytest.raises(ValueError, match="x_T shape"):
        sample(StandInDenoiser(), y, SamplerConfig(steps=2), x_T=x_T[:, :, :4], progress=False)


def test_progress_bar_names_the_sampler(inputs, capsys):
    y, x_T = inputs
    sample(StandInDenoiser(), y, SamplerConfig(steps=3), x_T=x_T, progress=True)
    assert "ddim sampling" in capsys.readouterr().err


def test_cosine_schedule_samplers_run(inputs):
    y, x_T = inputs
    cosine = DiffusionConfig(beta_schedule="cosine")
    for sampler in ("ddim", "dpmpp"):
        out = sample(
            StandInDenoiser(), y, SamplerConfig(sampler=sampler, steps=8), diffusion=cosine, x_T=x_T, progress=False
        )
        assert torch.isfinite(out.sample).all() and not math.isnan(out.sample.sum().item())
