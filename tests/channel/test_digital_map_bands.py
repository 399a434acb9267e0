"""Band coding of the semantic map: lossless round trip, a lost block loses only its band, no crash on damage."""

import pytest
import torch

from gesco.channel.digital.map_bands import BLOCK_HEADER, BandLayout, pack_map_bands, unpack_map_bands
from gesco.datasets.synthetic import SyntheticStreets
from gesco.semantics import SemanticMap


@pytest.fixture(scope="module")
def street_map():
    scene = SyntheticStreets(32, 64).scene(5)
    labels, instances = torch.from_numpy(scene.labels).long(), torch.from_numpy(scene.instances).long()
    semantic_map = SemanticMap(labels, "cityscapes", instances)
    return semantic_map.labels[0], semantic_map.edges()[0, 0]


def test_bands_round_trip_exactly(street_map):
    labels, edges = street_map
    blocks = pack_map_bands(labels, edges, band_rows=8, block_bytes=40)
    assert all(len(block) == 40 for block in blocks)
    out = unpack_map_bands(blocks, [True] * len(blocks), BandLayout(32, 64, 8), has_edges=True)
    assert torch.equal(out.labels, labels) and torch.equal(out.edges, edges)
    assert out.known.all() and out.band_ok.all() and out.band_ok.numel() == 4


def test_a_short_last_band_and_no_edges_round_trip(street_map):
    labels, _ = street_map
    labels = labels[:30]
    blocks = pack_map_bands(labels, None, band_rows=8, block_bytes=125)
    out = unpack_map_bands(blocks, [True] * len(blocks), BandLayout(30, 64, 8), has_edges=False)
    assert torch.equal(out.labels, labels) and out.edges is None


def test_a_failed_block_loses_exactly_its_band(street_map):
    labels, edges = street_map
    blocks = pack_map_bands(labels, edges, band_rows=8, block_bytes=40)
    bands = [BLOCK_HEADER.unpack_from(block)[0] for block in blocks]
    failed = bands.index(2)  # the first block of band 2 (rows 16..23)
    ok = [i != failed for i in range(len(blocks))]
    out = unpack_map_bands(blocks, ok, BandLayout(32, 64, 8), has_edges=True)
    assert out.band_ok.tolist() == [True, True, False, True]
    assert not out.known[16:24].any() and out.known[:16].all() and out.known[24:].all()
    assert (out.labels[16:24] == -1).all() and (out.edges[16:24] == 0).all()
    assert torch.equal(out.labels[out.known], labels[out.known])
    assert torch.equal(out.edges[out.known], edges[out.known])


def test_blocks_in_any_order_decode(street_map):
    labels, edges = street_map
    blocks = pack_map_bands(labels, edges, band_rows=8, block_bytes=40)
    out = unpack_map_bands(blocks[::-1], [True] * len(blocks), BandLayout(32, 64, 8), has_edges=True)
    assert torch.equal(out.labels, labels)


def test_damage_that_passed_the_crc_loses_the_band_without_crashing(street_map):
    labels, edges = street_map
    blocks = pack_map_bands(labels, edges, band_rows=16, block_bytes=400)
    assert len(blocks) == 2  # one block per band
    # garbage after a valid header: the band's length prefix and code are nonsense
    damaged = [blocks[0][: BLOCK_HEADER.size] + bytes(range(256)) + b"\xff" * 140, blocks[1]]
    out = unpack_map_bands(damaged, [True, True], BandLayout(32, 64, 16), has_edges=True)
    assert out.band_ok.tolist() == [False, True]
    # a band code with an edge map where the receiver expects none is rejected
    out = unpack_map_bands([blocks[1]], [True], BandLayout(32, 64, 16), has_edges=False)
    assert out.band_ok.tolist() == [False, False]
    # truncated blocks and headers naming bands that do not exist are ignored
    out = unpack_map_bands(
        [b"\0", BLOCK_HEADER.pack(9, 0, 1) + b"\0" * 10], [True, True], BandLayout(32, 64, 16), has_edges=True
    )
    assert not out.known.any()


def test_packing_errors_name_the_fix(street_map):
    labels, edges = street_map
    with pytest.raises(ValueError, match="header"):
        pack_map_bands(labels, edges, band_rows=8, block_bytes=4)
    with pytest.raises(ValueError, match="band_rows"):
        pack_map_bands(labels, edges, band_rows=32, block_bytes=5)
    with pytest.raises(ValueError, match="band_rows"):
        BandLayout(32, 64, 0)
