"""The channel contract, run against every registered channel: payload + ChannelQuality -> Received."""

import importlib.util
import math

import pytest
import torch

from gesco.channel import CHANNELS, ChannelQuality, Received, UnsupportedQualityError, build_channel
from gesco.channel.base import Channel
from gesco.channel.quality import QUALITY_KINDS, esn0_db_to_sigma
from gesco.constants import CHANNEL_NAMES, MAP_DENOISER_NAMES
from gesco.datasets.synthetic import SyntheticStreets
from gesco.receiver.map_denoisers import MAP_DENOISERS
from gesco.semantics import SemanticMap, Transmitter

HAS_SIONNA = importlib.util.find_spec("sionna") is not None

#: (registry name, options, a quality it accepts, its noiseless quality, how the noise must look)
CASES = {
    "awgn": ({}, ChannelQuality.psnr_label(10), ChannelQuality.psnr_label(100), "gaussian"),
    "rayleigh": (
        {"coherence_symbols": 64},
        ChannelQuality.peak_snr_db(10.0),
        ChannelQuality.noise_std(0.0),
        "enhanced",
    ),
    "unit-power": ({"fading": "awgn"}, ChannelQuality.esn0_db(5.0), ChannelQuality.esn0_db(math.inf), "gaussian"),
    "digital": ({}, ChannelQuality.esn0_db(10.0), ChannelQuality.esn0_db(30.0), "exact"),
    "ofdm": (
        {"model": "tdl-a", "csi": "perfect"},
        ChannelQuality.esn0_db(10.0),
        ChannelQuality.esn0_db(math.inf),
        "enhanced",
    ),
    "ofdm-digital": ({"csi": "perfect"}, ChannelQuality.esn0_db(20.0), ChannelQuality.esn0_db(40.0), "exact"),
    "ofdm-official": ({}, ChannelQuality.esn0_db(0.0), ChannelQuality.esn0_db(math.inf), "bits"),
}

#: Channels built on Sionna (the 'digital' extra); ofdm-official needs none.
SIONNA_CHANNELS = ("digital", "ofdm", "ofdm-digital")


def test_every_registered_channel_is_under_contract():
    assert set(CASES) == set(CHANNELS) == set(CHANNEL_NAMES)
    assert set(MAP_DENOISERS) == set(MAP_DENOISER_NAMES)


@pytest.fixture(scope="module")
def payload():
    streets = SyntheticStreets(32, 64)
    scenes = [streets.scene(seed) for seed in (11, 12)]
    labels = torch.stack([torch.from_numpy(s.labels).long() for s in scenes])
    instances = torch.stack([torch.from_numpy(s.instances).long() for s in scenes])
    return Transmitter()(SemanticMap(labels, "cityscapes", instances))


@pytest.fixture(scope="module", params=list(CASES))
def case(request):
    if request.param in SIONNA_CHANNELS and not HAS_SIONNA:
        pytest.skip(f"the {request.param} channel needs the 'digital' extra (Sionna)")
    options, quality, noiseless, noise = CASES[request.param]
    return build_channel(request.param, **options), quality, noiseless, noise


def run(channel, payload, quality, seed):
    return channel(payload, quality, generator=torch.Generator().manual_seed(seed))


class TestChannelContract:
    def test_received_has_the_payload_layout(self, case, payload):
        channel, quality, _, _ = case
        assert isinstance(channel, Channel)
        received = run(channel, payload, quality, 0)
        assert isinstance(received, Received) and received.quality == quality
        values = received.payload.values
        assert values.shape == payload.values.shape and values.dtype == payload.values.dtype
        assert received.payload.table == payload.table
        # the receiver never learns of a channel that was not sent; untransmitted channels stay 0
        assert not (received.payload.transmitted & ~payload.transmitted).any()
        assert (values * ~received.payload.transmitted[:, :, None, None] == 0).all()
        assert received.sigma.shape == (2,) and received.sigma.dtype == torch.float32
        assert received.complex_channel_uses.shape == (2,) and received.complex_channel_uses.dtype == torch.int64
        assert (received.complex_channel_uses > 0).all()

    def test_same_generator_same_output(self, case, payload):
        channel, quality, _, _ = case
        first, again = run(channel, payload, quality, 3), run(channel, payload, quality, 3)
        assert torch.equal(first.payload.values, again.payload.values)

    def test_noiseless_quality_returns_the_map(self, case, payload):
        channel, _, noiseless, _ = case
        received = run(channel, payload, noiseless, 0)
        torch.testing.assert_close(received.payload.values, payload.values, atol=1e-5, rtol=0)

    def test_noise_statistics(self, case, payload):
        channel, quality, _, noise = case
        received = run(channel, payload, quality, 1)
        sent = payload.transmitted[:, :, None, None].expand_as(payload.values)
        error = (received.payload.values - payload.values)[sent]
        if noise == "exact":  # a digital link above its cliff delivers the map exactly
            assert error.abs().max() == 0 and (received.sigma == 0).all() and received.known.all()
            return
        if noise == "bits":  # hard decisions: some bits flipped, every value still 0 or 1
            assert (received.sigma == 0).all() and ((error == 0) | (error.abs() == 1)).all()
            assert 0 < float((error != 0).float().mean()) < 0.5
            return
        assert (received.sigma > 0).all() and run(channel, payload, quality, 2).payload.values.ne(
            received.payload.values
        ).any()
        expected = float(received.sigma.square().mean().sqrt())
        if noise == "gaussian":  # ~13k values per map: the sample std is within 3 %
            assert error.std().item() == pytest.approx(expected, rel=0.03)
            assert abs(error.mean().item()) < 0.05 * expected
        else:  # zero forcing divides the noise by |h|: more error than AWGN of the same sigma
            assert error.std().item() > 1.2 * expected

    def test_unit_power_sigma_follows_the_maps_power(self, payload):
        quality = ChannelQuality.esn0_db(5.0)
        received = build_channel("unit-power")(payload, quality, generator=torch.Generator().manual_seed(0))
        for b in range(2):
            sent = payload.compact(b).double()
            assert float(received.sigma[b]) == pytest.approx(
                esn0_db_to_sigma(5.0, mean_square=float(sent.square().mean())), rel=1e-4
            )

    def test_other_quality_kinds_are_refused_by_name(self, case, payload):
        channel, _, _, _ = case
        values = {"psnr_label": 10, "peak_snr_db": 10.0, "esn0_db": 10.0, "noise_std": 0.1}
        for kind in set(QUALITY_KINDS) - set(channel.accepts):
            with pytest.raises(UnsupportedQualityError, match=type(channel).__name__):
                channel(payload, ChannelQuality(kind, values[kind]))

    def test_per_map_generators_decouple_maps_from_their_batch(self, case, payload):
        channel, quality, _, _ = case
        both = channel(payload, quality, generator=[torch.Generator().manual_seed(s) for s in (7, 8)])
        second = type(payload)(payload.values[1:], payload.transmitted[1:], payload.table)
        alone = channel(second, quality, generator=[torch.Generator().manual_seed(8)])
        assert torch.equal(both.payload.values[1], alone.payload.values[0])

    def test_bad_calls_are_typed_errors(self, case, payload):
        channel, quality, _, _ = case
        with pytest.raises(TypeError, match="ChannelQuality"):
            channel(payload, 10.0)
        with pytest.raises(TypeError, match="Payload"):
            channel(payload.values, quality)
        empty = type(payload)(payload.values[:0], payload.transmitted[:0], payload.table)
        with pytest.raises(ValueError, match="empty"):
            channel(empty, quality)


@pytest.mark.parametrize(
    "bad, error", [(float("nan"), ValueError), (-1000.0, ValueError), ("10", TypeError), (True, TypeError)]
)
def test_quality_values_are_checked(bad, error):
    with pytest.raises(error):
        ChannelQuality.esn0_db(bad)
    with pytest.raises(ValueError, match="unknown channel quality kind"):
        ChannelQuality("snr", 10)


def test_registry_rejects_unknown_names_and_options():
    with pytest.raises(ValueError, match="unknown channel"):
        build_channel("rician")
    with pytest.raises(ValueError, match="takes no option"):
        build_channel("awgn", coherence_symbols=8)
