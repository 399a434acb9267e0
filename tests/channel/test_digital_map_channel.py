"""GESCO-digital and JPEG over the Sionna link, end to end."""

from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

pytest.importorskip("sionna")

from gesco.baselines import MID_GREY, JpegOverDigital  # noqa: E402
from gesco.channel import ChannelQuality, UnsupportedQualityError  # noqa: E402
from gesco.channel.digital import DigitalConfig, DigitalGesco, DigitalLink, DigitalReceived  # noqa: E402  # noqa: E402
from gesco.channel.digital.map_bands import BLOCK_HEADER  # noqa: E402
from gesco.channel.digital.map_channel import map_blocks  # noqa: E402
from gesco.datasets.synthetic import SyntheticStreets  # noqa: E402
from gesco.link import Link  # noqa: E402
from gesco.receiver.receiver import Receiver  # noqa: E402
from gesco.semantics import SemanticMap, Transmitter  # noqa: E402

# the LDPC decoder runs many small tensor ops: a second intra-op thread only adds contention
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def link():
    return DigitalLink(DigitalConfig(block_bits=512, code_rate=0.5))


@pytest.fixture(scope="module")
def scene():
    return SyntheticStreets(32, 64).scene(4)


@pytest.fixture(scope="module")
def semantic_map(scene):
    return SemanticMap(torch.from_numpy(scene.labels).long(), "cityscapes", torch.from_numpy(scene.instances).long())


class FailBlocks(nn.Module):
    """The real link, with the CRC of chosen blocks reported as failed (a forced loss)."""

    def __init__(self, link, failed):
        super().__init__()
        self.link, self.config, self.failed = link, link.config, failed

    def forward(self, bits, **kwargs):
        out = self.link(bits, **kwargs)
        block_ok = out.block_ok.clone()
        block_ok[self.failed] = False
        return replace(out, block_ok=block_ok)


def test_high_snr_reproduces_the_map_exactly_through_link(link, semantic_map, generator):
    out = Link(channel=DigitalGesco(link, band_rows=8), receiver=Receiver(map_denoiser="none"))(
        semantic_map, ChannelQuality.esn0_db(10.0), generator=generator
    )
    sent, received = out.payload, out.received
    assert isinstance(received, DigitalReceived)
    assert torch.equal(received.payload.values, sent.values)
    assert torch.equal(received.payload.transmitted, sent.transmitted)
    assert torch.equal(out.output.condition, sent.values)
    assert received.known.all() and received.band_ok.all() and received.sigma.tolist() == [0.0]
    n_blocks = len(map_blocks(sent, 0, link.config, band_rows=8))
    assert received.block_ok[0].numel() == n_blocks
    assert received.complex_channel_uses.tolist() == [n_blocks * link.config.symbols_per_block]


def test_a_failed_block_zeroes_only_its_band(link, semantic_map, generator):
    payload = Transmitter()(semantic_map)
    blocks = map_blocks(payload, 0, link.config, band_rows=8)
    failed = [BLOCK_HEADER.unpack_from(b)[0] for b in blocks].index(1)  # a block of band 1: rows 8..15
    received = DigitalGesco(FailBlocks(link, [failed]), band_rows=8)(
        payload, ChannelQuality.esn0_db(10.0), generator=generator
    )
    assert received.band_ok[0].tolist() == [True, False, True, True]
    values = received.payload.values[0]
    assert (values[:, 8:16] == 0).all()
    assert torch.equal(values[:, :8], payload.values[0, :, :8])
    assert torch.equal(values[:, 16:], payload.values[0, :, 16:])
    assert not received.known[0, 8:16].any() and received.known[0, :8].all()
    # The receiver runs on it unchanged.
    condition = Receiver(map_denoiser="none")(received).condition
    assert condition.shape == payload.values.shape


def test_very_low_snr_loses_every_band_without_crashing(link, semantic_map, generator):
    payload = Transmitter()(semantic_map)
    received = DigitalGesco(link, band_rows=8)(payload, ChannelQuality.esn0_db(-8.0), generator=generator)
    assert not received.band_ok.any() and not received.known.any()
    assert received.payload.values.abs().max() == 0
    assert received.payload.transmitted.tolist()[0] == [False] * 35 + [True]  # only the edge channel
    assert Receiver()(received).condition.abs().max() == 0


def test_digital_gesco_refuses_noisy_maps_and_analog_qualities(link, semantic_map):
    payload = Transmitter()(semantic_map)
    noisy = payload.with_values(payload.values + 0.1)
    with pytest.raises(ValueError, match="one-hot"):
        DigitalGesco(link)(noisy, ChannelQuality.esn0_db(10.0))
    with pytest.raises(UnsupportedQualityError, match="Es/N0"):
        DigitalGesco(link)(payload, ChannelQuality.psnr_label(10))


def test_jpeg_arrives_at_high_snr_and_is_lost_at_low_snr(link, scene, generator):
    jpeg = JpegOverDigital(link)
    budget = 40 * link.config.symbols_per_block
    good = jpeg(scene.image, channel_uses=budget, snr_db=10.0, generator=generator)
    assert good.decoded and good.channel_uses <= budget and good.block_ok.all()
    assert np.abs(good.image.astype(int) - scene.image.astype(int)).mean() < 12
    bad = jpeg(scene.image, channel_uses=budget, snr_db=-8.0, generator=generator)
    assert not bad.decoded and bad.quality == good.quality
    assert (bad.image == MID_GREY).all() and bad.image.shape == scene.image.shape


def test_one_failed_block_loses_the_whole_jpeg(link, scene, generator):
    out = JpegOverDigital(FailBlocks(link, [0]))(
        scene.image, channel_uses=40 * link.config.symbols_per_block, snr_db=10.0, generator=generator
    )
    assert not out.decoded and (out.image == MID_GREY).all()
