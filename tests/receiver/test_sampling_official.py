"""The official DDIM-50 sample of the tiny GESCO Cityscapes model, reproduced through diffusers' DDIMScheduler.

Reference: ``sample_ddim`` of official-tiny-cityscapes-sampling.pt (respacing "ddim50", eta 0, clip_denoised,
guidance s = 2 against the all-zero map, variance from the conditional pass), from ispamm/GESCO.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gesco.receiver.sampling import SamplerConfig, sample

REFERENCE = Path(__file__).parents[2].parent / "shared" / "reference"
WEIGHTS = REFERENCE / "official-tiny-cityscapes.pt"
SAMPLING = REFERENCE / "official-tiny-cityscapes-sampling.pt"

pytestmark = pytest.mark.skipif(
    not (WEIGHTS.is_file() and SAMPLING.is_file()),
    reason=f"official GESCO reference tensors not found in {REFERENCE}",
)


@pytest.mark.slow
def test_ddim50_sample_equals_official():
    convert = pytest.importorskip(
        "gesco.receiver.convert_official", reason="the official-checkpoint converter is missing"
    )
    model = convert.load_official_checkpoint(WEIGHTS).eval()
    reference = torch.load(SAMPLING, weights_only=True)
    # Two passes per step as the official code runs them (batched == two-pass is tested with the stand-in), in
    # float32: the default "auto" precision would run bfloat16 autocast on an AVX512 CPU or a GPU.
    config = SamplerConfig(
        sampler="ddim",
        steps=50,
        respacing=reference["ddim_respacing"],
        guidance=float(reference["s"]),
        two_pass_guidance=True,
        autocast_dtype="float32",
    )
    out = sample(model, reference["y"], config, x_T=reference["x_T"], progress=False)
    assert out.model_timesteps.tolist() == [int(t) for t in reversed(reference["ddim_timestep_map"])]
    torch.testing.assert_close(out.sample, reference["sample_ddim"], rtol=0, atol=1e-4)
