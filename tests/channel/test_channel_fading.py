import pytest
import torch

from gesco.channel import AWGNChannel, RayleighBlockFading
from gesco.semantics import SemanticMap, Transmitter


def payload(height=32, width=64, batch=2):
    labels = torch.full((batch, height, width), 21)
    labels[:, : height // 3] = 23
    labels[:, height // 2 :, :] = 7
    return Transmitter()(SemanticMap(labels, "cityscapes"))


def test_equalised_noiseless_fading_recovers_the_map(generator):
    sent = payload()
    received = RayleighBlockFading(block_length=16, equalize=True)(sent, sigma=0.0, generator=generator)
    assert torch.allclose(received.payload.values, sent.values, atol=1e-6)


def test_unequalised_fading_scales_power_by_one_on_average(generator):
    sent = payload(height=64, width=64, batch=8)
    received = RayleighBlockFading(block_length=8, equalize=False)(sent, sigma=0.0, generator=generator)
    mask = sent.transmitted[:, :, None, None].expand_as(sent.values)
    ratio = received.payload.values[mask].pow(2).sum() / sent.values[mask].pow(2).sum()
    # thousands of independent blocks with E|h|^2 = 1: the power ratio is 1 within 10%.
    assert ratio.item() == pytest.approx(1.0, rel=0.1)
    assert not torch.allclose(received.payload.values, sent.values, atol=0.1)
    assert received.payload.values[~mask].abs().max() == 0


def test_zero_forcing_enhances_noise_over_awgn(generator):
    sent = payload(height=64, width=64, batch=4)
    faded = RayleighBlockFading(block_length=4, equalize=True)(sent, psnr=10, generator=generator)
    plain = AWGNChannel()(sent, psnr=10, generator=generator)
    mask = sent.transmitted[:, :, None, None].expand_as(sent.values)
    faded_error = (faded.payload.values - sent.values)[mask].pow(2).mean()
    awgn_error = (plain.payload.values - sent.values)[mask].pow(2).mean()
    assert faded_error > 2 * awgn_error
    assert torch.allclose(faded.sigma, plain.sigma)


def test_one_coefficient_per_map_by_default(generator):
    sent = payload(batch=1)
    received = RayleighBlockFading(equalize=False)(sent, sigma=0.0, generator=generator)
    mask = sent.transmitted[0]
    # with one h for the whole map, every "on" value in a real (even) position becomes Re(h)
    ones = sent.values[0, mask].flatten() == 1
    flat = received.payload.values[0, mask].flatten()
    even = torch.arange(flat.numel()) % 2 == 0
    assert flat[ones & even].unique().numel() == 1


def test_block_length_must_be_positive():
    with pytest.raises(ValueError, match="block_length"):
        RayleighBlockFading(block_length=0)
