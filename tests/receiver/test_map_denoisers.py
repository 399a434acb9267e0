import pytest
import torch

from gesco.channel import ChannelQuality, Received
from gesco.receiver.map_denoisers import MAP_DENOISERS, FastDenoiser, NoDenoiser, build_map_denoiser, fast_denoise
from gesco.semantics import Payload, class_table


def test_hand_computed_case():
    values = torch.zeros(1, 2, 3, 3)
    values[0, 0, 1, 1] = 9.0  # one spike in the middle
    values[0, 1] = 5.0  # an absent channel: must come out zero
    transmitted = torch.tensor([[True, False]])
    out = fast_denoise(values, transmitted)
    # mean 3x3 with zero padding: the spike spreads as 1.0 over all 9 pixels;
    # then max 3x3 keeps 1.0 everywhere.
    assert torch.equal(out[0, 0], torch.ones(3, 3))
    assert out[0, 1].abs().sum() == 0


def test_zero_padding_is_counted_at_the_border():
    values = torch.ones(1, 1, 4, 4)
    out = fast_denoise(values, torch.tensor([[True]]))
    # max over a 3x3 window of the mean map: corners of the mean are 4/9, edges 6/9, inside 1
    assert torch.equal(out, torch.ones(1, 1, 4, 4))
    lone = torch.zeros(1, 1, 5, 5)
    lone[0, 0, 0, 0] = 9.0
    out = fast_denoise(lone, torch.tensor([[True]]))
    assert out[0, 0, 0, 0] == pytest.approx(1.0) and out[0, 0, 2, 2] == 1.0 and out[0, 0, 3, 3] == 0.0


def test_batched_equals_one_at_a_time(generator):
    values = torch.randn(3, 5, 8, 9, generator=generator)
    transmitted = torch.rand(3, 5, generator=generator) > 0.4
    batched = fast_denoise(values, transmitted)
    for b in range(3):
        assert torch.equal(batched[b : b + 1], fast_denoise(values[b : b + 1], transmitted[b : b + 1]))


def test_no_clipping():
    values = torch.full((1, 1, 3, 3), 3.5)
    assert fast_denoise(values, torch.tensor([[True]])).max() == 3.5
    negative = torch.full((1, 1, 3, 3), -2.0)
    assert fast_denoise(negative, torch.tensor([[True]])).max() < 0


def received_of(values, transmitted, table):
    return Received(
        Payload(values, transmitted, table),
        torch.zeros(1),
        ChannelQuality.noise_std(0.0),
        torch.zeros(1, dtype=torch.int64),
    )


def test_denoisers_keep_untransmitted_channels_at_zero():
    table = class_table("ade20k")
    values = torch.rand(1, 151, 4, 4)
    transmitted = torch.zeros(1, 151, dtype=torch.bool)
    transmitted[0, [0, 3]] = True
    received = received_of(values, transmitted, table)
    filtered = FastDenoiser()(received)
    assert torch.equal(filtered, fast_denoise(values, transmitted))
    assert filtered[0, 1].abs().sum() == 0 and filtered[0, 0].abs().sum() > 0
    passed = NoDenoiser()(received)
    assert torch.equal(passed[0, [0, 3]], values[0, [0, 3]]) and passed[0, 1].abs().sum() == 0


def test_denoisers_by_name():
    assert set(MAP_DENOISERS) == {"fds", "none"}
    assert isinstance(build_map_denoiser("fds"), FastDenoiser)
    custom = torch.nn.Identity()
    assert build_map_denoiser(custom) is custom
    with pytest.raises(ValueError, match="unknown map denoiser"):
        build_map_denoiser("median")


def test_nan_in_received_map_is_rejected():
    values = torch.zeros(1, 1, 3, 3)
    values[0, 0, 1, 1] = float("nan")
    with pytest.raises(ValueError, match="received map holds 1 NaN"):
        fast_denoise(values, torch.tensor([[True]]))
