"""GESCO-analog at an Es/N0: unit-power symbols, the noise it gets on the map's scale, fading."""

import math

import pytest
import torch

from gesco.channel import ChannelQuality, UnsupportedQualityError
from gesco.channel.unit_power import UnitPowerAnalogChannel
from gesco.datasets.synthetic import SyntheticStreets
from gesco.semantics import SemanticMap, Transmitter


@pytest.fixture(scope="module")
def payload():
    scene = SyntheticStreets(32, 64).scene(3)
    semantic_map = SemanticMap(
        torch.from_numpy(scene.labels).long()[None], "cityscapes", torch.from_numpy(scene.instances).long()[None]
    )
    return Transmitter()(semantic_map)


def test_noise_on_the_map_is_sqrt_n0_over_2_divided_by_the_amplitude(payload, generator):
    sent = payload.compact(0).flatten().double()
    amplitude = 1 / math.sqrt(float(sent.square().sum() / (sent.numel() / 2)))  # mean complex power -> 1
    snr_db = 3.0
    received = UnitPowerAnalogChannel()(payload, ChannelQuality.esn0_db(snr_db), generator=generator)
    expected_sigma = math.sqrt(10 ** (-snr_db / 10) / 2) / amplitude
    assert float(received.sigma[0]) == pytest.approx(expected_sigma, rel=1e-6)
    noise = (received.payload.compact(0) - payload.compact(0)).flatten()
    assert noise.std().item() == pytest.approx(expected_sigma, rel=0.03)  # ~8000 samples: 3% is > 3 std errors
    # untransmitted channels stay 0; the power gain is (k + 1) / 2 channel uses per pixel over the energy per
    # pixel, 1 (one-hot) + the edge density
    assert (received.payload.values[0, ~payload.transmitted[0]] == 0).all()
    k_plus_1, pixels = int(payload.transmitted[0].sum()), 32 * 64
    edges = float(payload.values[0, payload.table.edge_channel].sum())
    assert amplitude**2 == pytest.approx(k_plus_1 * pixels / 2 / (pixels + edges), rel=1e-6)


@pytest.mark.parametrize("fading", ["awgn", "rayleigh"])
def test_noiseless_channel_returns_the_map(payload, fading, generator):
    received = UnitPowerAnalogChannel(fading=fading, coherence_symbols=64)(
        payload, ChannelQuality.esn0_db(math.inf), generator=generator
    )
    torch.testing.assert_close(received.payload.values, payload.values, atol=1e-5, rtol=0)


def test_rayleigh_with_perfect_csi_enhances_noise_in_deep_fades(payload):
    awgn = UnitPowerAnalogChannel()(payload, ChannelQuality.esn0_db(10.0), generator=torch.Generator().manual_seed(0))
    fading = UnitPowerAnalogChannel(fading="rayleigh", coherence_symbols=32)(
        payload, ChannelQuality.esn0_db(10.0), generator=torch.Generator().manual_seed(0)
    )
    error = (fading.payload.compact(0) - payload.compact(0)).square().mean()
    assert error > 1.5 * (awgn.payload.compact(0) - payload.compact(0)).square().mean()  # E[1/|h|^2] is infinite


def test_bad_quality_is_named(payload):
    with pytest.raises(ValueError, match="NaN"):
        UnitPowerAnalogChannel()(payload, ChannelQuality.esn0_db(math.nan))
    with pytest.raises(UnsupportedQualityError, match="AWGNChannel"):
        UnitPowerAnalogChannel()(payload, ChannelQuality.psnr_label(10))
    with pytest.raises(ValueError, match="rayleigh"):
        UnitPowerAnalogChannel(fading="rician")
