import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gesco.baselines.accounting import payload_sizes
from gesco.semantics import SemanticMap
from gesco.semantics.bits import decode_map, encode_map


@st.composite
def maps_with_edges(draw):
    height, width = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31)))
    ids = torch.tensor(draw(st.lists(st.integers(0, 182), min_size=1, max_size=8, unique=True)))
    # blocky maps like real ones, plus random ones, both must round-trip
    block = draw(st.sampled_from([1, 4]))
    coarse = torch.randint(0, len(ids), (-(-height // block), -(-width // block)), generator=g)
    labels = ids[coarse.repeat_interleave(block, 0).repeat_interleave(block, 1)[:height, :width]]
    edges = (torch.rand(height, width, generator=g) < draw(st.floats(0, 1))).float()
    return labels, edges


@settings(max_examples=60, deadline=None)
@given(maps_with_edges())
def test_lossless_map_round_trip(case):
    labels, edges = case
    decoded_labels, decoded_edges = decode_map(encode_map(labels, edges))
    assert torch.equal(decoded_labels, labels)
    assert torch.equal(decoded_edges, edges)
    decoded_labels, none = decode_map(encode_map(labels, None))
    assert torch.equal(decoded_labels, labels) and none is None


def test_map_code_is_far_smaller_than_the_analog_map():
    labels = torch.full((64, 128), 23)
    labels[32:] = 7
    labels[40:50, 20:40] = 26
    semantic_map = SemanticMap(labels, "cityscapes")
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (1, 64, 128, 3), dtype=np.uint8)
    (size,) = payload_sizes(semantic_map, image)
    assert size.analog_real_values == 4 * 64 * 128 and size.analog_complex_channel_uses == 2 * 64 * 128
    assert size.side_info_bits == 35
    # even counting each analog value as one bit, the lossless code is 20x smaller
    assert size.lossless_map_bits < size.analog_real_values / 20
    assert size.lossless_map_bits == 8 * len(encode_map(labels, semantic_map.edges()[0, 0]))
    per_pixel = size.per_pixel()
    assert per_pixel["png_image_bits"] > per_pixel["jpeg_image_bits"] > per_pixel["lossless_map_bits"]
    assert per_pixel["analog_complex_channel_uses"] == 2.0


def test_decode_rejects_foreign_bytes():
    with pytest.raises(ValueError, match="magic"):
        decode_map(b"\x89PNG....")


def test_encode_rejects_wrong_shape():
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        encode_map(torch.zeros(1, 2, 2, dtype=torch.long), None)
