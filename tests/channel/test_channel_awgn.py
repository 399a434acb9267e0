import math

import pytest
import torch

from gesco.channel import PAPER_PSNR_SIGMA, AWGNChannel, ChannelQuality, paper_sigma
from gesco.channel.quality import esn0_db_to_sigma, peak_snr_db_of_sigma, peak_snr_db_to_sigma
from gesco.receiver.map_denoisers import fast_denoise
from gesco.semantics import SemanticMap, Transmitter


def street_payload(batch=2, height=16, width=32):
    labels = torch.full((batch, height, width), 23)
    labels[:, height // 2 :] = 7
    labels[:, -4:, 4:12] = 26
    return Transmitter()(SemanticMap(labels, "cityscapes"))


def test_paper_table_exactly():
    assert dict(PAPER_PSNR_SIGMA) == {100: 0.0, 30: 0.05, 25: 0.08, 20: 0.13, 15: 0.22, 10: 0.36, 5: 0.6, 1: 0.9}
    assert paper_sigma(10) == 0.36 and paper_sigma(10.0) == 0.36


def test_peak_snr_relation_to_the_labels():
    expected = {30: 26.0, 25: 21.9, 20: 17.7, 15: 13.2, 10: 8.9, 5: 4.4, 1: 0.9}
    for label, snr in expected.items():
        assert round(peak_snr_db_of_sigma(paper_sigma(label)), 1) == snr
    assert peak_snr_db_to_sigma(20.0) == pytest.approx(0.1)
    assert peak_snr_db_to_sigma(peak_snr_db_of_sigma(0.36)) == pytest.approx(0.36)
    assert peak_snr_db_to_sigma(math.inf) == 0 and peak_snr_db_of_sigma(0) == math.inf


def test_esn0_to_sigma_on_the_map_scale():
    # unit-power symbols of a map with mean square m: sigma = sqrt(m * N0), N0 = 10^(-Es/N0 / 10)
    assert esn0_db_to_sigma(10.0, mean_square=0.25) == pytest.approx(math.sqrt(0.025))
    assert esn0_db_to_sigma(math.inf, mean_square=0.5) == 0


def test_unknown_label_error_lists_labels_and_snr_hint():
    with pytest.raises(ValueError) as info:
        AWGNChannel()(street_payload(), ChannelQuality.psnr_label(12))
    assert "[100, 30, 25, 20, 15, 10, 5, 1]" in str(info.value) and "peak SNR" in str(info.value)


def test_quality_must_be_a_channel_quality():
    with pytest.raises(TypeError, match="ChannelQuality.psnr_label"):
        AWGNChannel()(street_payload(), 10)


def test_noise_only_on_transmitted_channels_with_the_right_std(generator):
    payload = street_payload(batch=4, height=64, width=64)
    received = AWGNChannel()(payload, ChannelQuality.peak_snr_db(10.0), generator=generator)
    noise = received.payload.values - payload.values
    sent = payload.transmitted[:, :, None, None].expand_as(noise)
    assert noise[~sent].abs().max() == 0
    expected = peak_snr_db_to_sigma(10.0)
    # 4 maps x 4 channels x 4096 values: the sample std is within 2% with overwhelming probability.
    assert noise[sent].std().item() == pytest.approx(expected, rel=0.02)
    assert noise[sent].mean().abs().item() < 0.01
    assert torch.allclose(received.sigma, torch.full((4,), expected))


def test_label_100_is_noiseless_and_seeded_draws_repeat():
    payload = street_payload()
    assert torch.equal(AWGNChannel()(payload, ChannelQuality.psnr_label(100)).payload.values, payload.values)
    first = AWGNChannel()(
        payload, ChannelQuality.psnr_label(5), generator=torch.Generator().manual_seed(3)
    ).payload.values
    again = AWGNChannel()(
        payload, ChannelQuality.psnr_label(5), generator=torch.Generator().manual_seed(3)
    ).payload.values
    other = AWGNChannel()(
        payload, ChannelQuality.psnr_label(5), generator=torch.Generator().manual_seed(4)
    ).payload.values
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_official_noisy_map_reproduced_bit_for_bit(official_sampling):
    semantic_map = SemanticMap(
        official_sampling["label"][:, 0].long(), "cityscapes", official_sampling["instance"][:, 0].long()
    )
    payload = Transmitter()(semantic_map)
    torch.manual_seed(1234)  # the official receiver draws from the global generator after this seed
    received = AWGNChannel()(payload, ChannelQuality.psnr_label(10))
    filtered = fast_denoise(received.payload.values, received.payload.transmitted)
    assert torch.equal(filtered, official_sampling["y"])


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_payload_is_rejected(bad):
    payload = street_payload()
    values = payload.values.clone()
    values[0, 7, 0, 0] = bad
    with pytest.raises(ValueError, match="NaN|Inf"):
        AWGNChannel()(payload.with_values(values), ChannelQuality.psnr_label(10))


def test_per_map_generators_make_each_map_independent_of_its_batch():
    payload = street_payload(batch=3)
    quality = ChannelQuality.psnr_label(10)
    together = AWGNChannel()(payload, quality, generator=[torch.Generator().manual_seed(s) for s in (5, 6, 7)])
    alone = AWGNChannel()(street_payload(batch=1), quality, generator=[torch.Generator().manual_seed(6)])
    assert torch.equal(together.payload.values[1], alone.payload.values[0])
    with pytest.raises(ValueError, match="one per map"):
        AWGNChannel()(payload, quality, generator=[torch.Generator()])


def test_per_map_quality():
    payload = street_payload(batch=2)
    received = AWGNChannel()(payload, ChannelQuality.psnr_label([100, 1]), generator=torch.Generator().manual_seed(0))
    assert received.sigma.tolist() == pytest.approx([0.0, 0.9])
    assert torch.equal(received.payload.values[0], payload.values[0])
    with pytest.raises(ValueError, match="one per map"):
        AWGNChannel()(payload, ChannelQuality.psnr_label([10, 10, 10]))
