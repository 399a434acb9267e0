"""Channel-use accounting of each method (hand-computed cases) and JPEG quality selection."""

import math

import numpy as np
import pytest
import torch

from gesco.baselines import (
    ChannelUses,
    channel_use_budget,
    channel_use_report,
    choose_jpeg_quality,
    gesco_analog_uses,
    gesco_digital_uses,
    jpeg_uses,
)
from gesco.channel.digital import DigitalConfig
from gesco.channel.digital.map_bands import pack_map_bands
from gesco.channel.symbols import complex_channel_uses
from gesco.datasets.synthetic import SyntheticStreets
from gesco.semantics import SemanticMap, Transmitter
from gesco.semantics.bits import image_bytes


def small_payload():
    # 3 x 5 map with classes 7 and 26 (map 0) and 7, 21, 26 (map 1)
    labels = torch.full((2, 3, 5), 7)
    labels[:, :, 3:] = 26
    labels[1, 0, 0] = 21
    return Transmitter()(SemanticMap(labels, "cityscapes"))


def test_gesco_analog_two_real_values_per_channel_use():
    uses = gesco_analog_uses(small_payload())
    # map 0: (2 classes + edge) x 15 = 45 real values -> 23 channel uses; map 1: 4 x 15 = 60 -> 30
    assert [u.channel_uses for u in uses] == [23, 30]
    assert uses[0].pixels == 15 and uses[0].per_pixel == pytest.approx(23 / 15)
    assert uses[0].side_info_bits == 35  # the Cityscapes presence bitmap
    assert complex_channel_uses(0) == 0 and complex_channel_uses(7) == 4


def test_gesco_digital_whole_blocks_of_the_band_codes():
    payload = small_payload()
    config = DigitalConfig(modulation="16qam", code_rate=0.5, block_bits=256, crc="CRC16")
    # 240 message bits = 30 bytes per block; n = 512 bits = 128 symbols per block
    labels, edges = payload.values[0, :35].argmax(0), payload.values[0, 35]
    blocks = pack_map_bands(labels, edges, band_rows=2, block_bytes=30)
    assert [u.channel_uses for u in gesco_digital_uses(payload, config, band_rows=2)][0] == len(blocks) * 128
    assert len(blocks) >= 2  # two bands, at least one block each


def test_jpeg_uses_and_budget():
    image = SyntheticStreets(32, 64).scene(1).image
    config = DigitalConfig(block_bits=1024)  # 1000 message bits in 1024 channel uses
    bits = 8 * (4 + len(image_bytes(image, "JPEG", quality=50)))
    assert jpeg_uses(image, config, quality=50).channel_uses == math.ceil(bits / 1000) * 1024
    assert channel_use_budget(32, 64, per_pixel=0.5) == 1024
    assert channel_use_budget(3, 3, per_pixel=1 / 3) == 3
    with pytest.raises(ValueError, match="per_pixel"):
        channel_use_budget(3, 3, per_pixel=0)


def test_report_lists_every_method_per_map():
    payload = small_payload()
    images = np.zeros((2, 3, 5, 3), dtype=np.uint8)
    rows = channel_use_report(payload, DigitalConfig(), images=images, band_rows=2)
    assert [[u.method for u in row] for row in rows] == [["gesco-analog", "gesco-digital", "jpeg"]] * 2
    assert all(isinstance(u, ChannelUses) for row in rows for u in row)
    assert rows[1][0].channel_uses == 30


def test_jpeg_quality_is_the_best_that_fits():
    image = SyntheticStreets(64, 128).scene(2).image
    sizes = {q: 8 * (4 + len(image_bytes(image, "JPEG", quality=q))) for q in (1, 40, 95)}
    budget = sizes[40]
    choice = choose_jpeg_quality(image, max_bits=budget)
    assert choice.message_bits <= budget and choice.quality >= 40
    assert choice.data == image_bytes(image, "JPEG", quality=choice.quality)
    if choice.quality < 95:
        assert 8 * (4 + len(image_bytes(image, "JPEG", quality=choice.quality + 1))) > budget
    assert choose_jpeg_quality(image, max_bits=sizes[95]).quality == 95
    with pytest.raises(ValueError, match="quality 1"):
        choose_jpeg_quality(image, max_bits=sizes[1] - 1)
    with pytest.raises(TypeError, match="uint8"):
        choose_jpeg_quality(image.astype(np.float32), max_bits=budget)


@pytest.mark.parametrize(
    ("height", "width", "per_pixel", "budget"),
    [(16, 32, 0.3, 153), (10, 10, 0.255, 25), (7, 9, 1.5, 94), (64, 128, 1 / 24, 341)],
)
def test_budgets_at_fractional_rates_keep_whole_uses_within_the_rate(height, width, per_pixel, budget):
    # 153.6, 25.5, 94.5 and 341.33 channel uses: the budget is the whole number that stays within the rate
    assert channel_use_budget(height, width, per_pixel=per_pixel) == budget


def test_payload_sizes_count_the_whole_presence_bitmap_as_side_information():
    from gesco.baselines import payload_sizes

    labels = torch.full((2, 3, 5), 7)
    labels[1, :, 3:] = 26  # map 0 holds one class, map 1 two: the bitmap has one bit per class of the table
    sizes = payload_sizes(SemanticMap(labels, "cityscapes"))
    assert [s.side_info_bits for s in sizes] == [35, 35]
    assert [s.analog_real_values for s in sizes] == [2 * 15, 3 * 15]
    assert sizes[1].per_pixel()["side_info_bits"] == pytest.approx(35 / 15)
