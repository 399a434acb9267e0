import pytest
import torch

from gesco.channel import AWGNChannel, ChannelQuality, RayleighBlockFading
from gesco.semantics import SemanticMap, Transmitter


def payload(height=32, width=64, batch=2):
    labels = torch.full((batch, height, width), 21)
    labels[:, : height // 3] = 23
    labels[:, height // 2 :, :] = 7
    return Transmitter()(SemanticMap(labels, "cityscapes"))


def test_equalised_noiseless_fading_recovers_the_map(generator):
    sent = payload()
    received = RayleighBlockFading(coherence_symbols=16, equalize=True)(
        sent, ChannelQuality.noise_std(0.0), generator=generator
    )
    assert torch.allclose(received.payload.values, sent.values, atol=1e-6)


def test_unequalised_fading_scales_power_by_one_on_average(generator):
    sent = payload(height=64, width=64, batch=8)
    received = RayleighBlockFading(coherence_symbols=8, equalize=False)(
        sent, ChannelQuality.noise_std(0.0), generator=generator
    )
    mask = sent.transmitted[:, :, None, None].expand_as(sent.values)
    ratio = received.payload.values[mask].pow(2).sum() / sent.values[mask].pow(2).sum()
    # thousands of independent blocks with E|h|^2 = 1: the power ratio is 1 within 10%.
    assert ratio.item() == pytest.approx(1.0, rel=0.1)
    assert not torch.allclose(received.payload.values, sent.values, atol=0.1)
    assert received.payload.values[~mask].abs().max() == 0


def test_zero_forcing_enhances_noise_over_awgn(generator):
    sent = payload(height=64, width=64, batch=4)
    faded = RayleighBlockFading(coherence_symbols=4, equalize=True)(
        sent, ChannelQuality.psnr_label(10), generator=generator
    )
    plain = AWGNChannel()(sent, ChannelQuality.psnr_label(10), generator=generator)
    mask = sent.transmitted[:, :, None, None].expand_as(sent.values)
    faded_error = (faded.payload.values - sent.values)[mask].pow(2).mean()
    awgn_error = (plain.payload.values - sent.values)[mask].pow(2).mean()
    assert faded_error > 2 * awgn_error
    assert torch.allclose(faded.sigma, plain.sigma)


def test_coherence_none_is_one_coefficient_per_map(generator):
    sent = payload(batch=1)
    received = RayleighBlockFading(coherence_symbols=None, equalize=False)(
        sent, ChannelQuality.noise_std(0.0), generator=generator
    )
    mask = sent.transmitted[0]
    # with one h for the whole map, every "on" value in a real (even) position becomes Re(h)
    ones = sent.values[0, mask].flatten() == 1
    flat = received.payload.values[0, mask].flatten()
    even = torch.arange(flat.numel()) % 2 == 0
    assert flat[ones & even].unique().numel() == 1


def test_coherence_must_be_positive_and_defaults_to_1024_symbols():
    with pytest.raises(ValueError, match="coherence_symbols"):
        RayleighBlockFading(coherence_symbols=0)
    assert RayleighBlockFading().coherence_symbols == 1024


def test_default_coherence_gives_one_coefficient_per_1024_symbols(generator):
    sent = payload(height=64, width=64, batch=1)  # 3 channels x 4096 values = 6144 symbols = 6 blocks
    received = RayleighBlockFading(equalize=False)(sent, ChannelQuality.noise_std(0.0), generator=generator)
    symbols = torch.view_as_complex(received.payload.compact(0).flatten().double().reshape(-1, 2).contiguous())
    sent_symbols = torch.view_as_complex(sent.compact(0).flatten().double().reshape(-1, 2).contiguous())
    on = sent_symbols != 0
    h = symbols[on] / sent_symbols[on]  # noiseless and unequalised: y / x is the fading coefficient
    block = (torch.arange(symbols.numel()) // 1024)[on]
    means = {int(b): h[block == b].mean() for b in block.unique()}
    for b, mean in means.items():
        assert (h[block == b] - mean).abs().max() < 1e-5
    assert len(means) > 1 and min(abs(x - y) for x in means.values() for y in means.values() if x is not y) > 1e-3
