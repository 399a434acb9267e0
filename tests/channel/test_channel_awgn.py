import math

import pytest
import torch

from gesco.channel import (
    PAPER_PSNR_SIGMA,
    AWGNChannel,
    paper_sigma,
    sigma_to_snr_db,
    snr_db_to_sigma,
)
from gesco.receiver.fds import fast_denoise
from gesco.semantics import SemanticMap, Transmitter


def street_payload(batch=2, height=16, width=32):
    labels = torch.full((batch, height, width), 23)
    labels[:, height // 2 :] = 7
    labels[:, -4:, 4:12] = 26
    return Transmitter()(SemanticMap(labels, "cityscapes"))


def test_paper_table_exactly():
    assert dict(PAPER_PSNR_SIGMA) == {100: 0.0, 30: 0.05, 25: 0.08, 20: 0.13, 15: 0.22, 10: 0.36, 5: 0.6, 1: 0.9}
    assert paper_sigma(10) == 0.36 and paper_sigma(10.0) == 0.36


def test_snr_db_relation_to_the_labels():
    expected = {30: 26.0, 25: 21.9, 20: 17.7, 15: 13.2, 10: 8.9, 5: 4.4, 1: 0.9}
    for label, snr in expected.items():
        assert round(sigma_to_snr_db(paper_sigma(label)), 1) == snr
    assert snr_db_to_sigma(20.0) == pytest.approx(0.1)
    assert snr_db_to_sigma(sigma_to_snr_db(0.36)) == pytest.approx(0.36)
    assert snr_db_to_sigma(10.0, signal_power=0.25) == pytest.approx(math.sqrt(0.025))


def test_unknown_label_error_lists_labels_and_snr_hint():
    with pytest.raises(ValueError) as info:
        AWGNChannel()(street_payload(), psnr=12)
    assert "[100, 30, 25, 20, 15, 10, 5, 1]" in str(info.value) and "snr_db" in str(info.value)


def test_exactly_one_quality_argument():
    with pytest.raises(ValueError, match="exactly one"):
        AWGNChannel()(street_payload(), psnr=10, sigma=0.1)
    with pytest.raises(ValueError, match="exactly one"):
        AWGNChannel()(street_payload())


def test_noise_only_on_transmitted_channels_with_the_right_std(generator):
    payload = street_payload(batch=4, height=64, width=64)
    received = AWGNChannel()(payload, snr_db=10.0, generator=generator)
    noise = received.payload.values - payload.values
    sent = payload.transmitted[:, :, None, None].expand_as(noise)
    assert noise[~sent].abs().max() == 0
    expected = snr_db_to_sigma(10.0)
    # 4 maps x 4 channels x 4096 values: the sample std is within 2% with overwhelming probability.
    assert noise[sent].std().item() == pytest.approx(expected, rel=0.02)
    assert noise[sent].mean().abs().item() < 0.01
    assert torch.allclose(received.sigma, torch.full((4,), expected))


def test_label_100_is_noiseless_and_seeded_draws_repeat():
    payload = street_payload()
    assert torch.equal(AWGNChannel()(payload, psnr=100).payload.values, payload.values)
    first = AWGNChannel()(payload, psnr=5, generator=torch.Generator().manual_seed(3)).payload.values
    again = AWGNChannel()(payload, psnr=5, generator=torch.Generator().manual_seed(3)).payload.values
    other = AWGNChannel()(payload, psnr=5, generator=torch.Generator().manual_seed(4)).payload.values
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_official_noisy_map_reproduced_bit_for_bit(official_sampling):
    semantic_map = SemanticMap(
        official_sampling["label"][:, 0].long(), "cityscapes", official_sampling["instance"][:, 0].long()
    )
    payload = Transmitter()(semantic_map)
    torch.manual_seed(1234)  # the official receiver draws from the global generator after this seed
    received = AWGNChannel()(payload, psnr=10)
    filtered = fast_denoise(received.payload.values, received.payload.transmitted)
    assert torch.equal(filtered, official_sampling["y"])


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_payload_is_rejected(bad):
    payload = street_payload()
    values = payload.values.clone()
    values[0, 7, 0, 0] = bad
    with pytest.raises(ValueError, match="NaN|Inf"):
        AWGNChannel()(payload.with_values(values), psnr=10)
