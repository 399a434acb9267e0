import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gesco.semantics import Payload, SemanticMap, Transmitter, class_table

CITYSCAPES = class_table("cityscapes")


@st.composite
def semantic_maps(draw, table_name="cityscapes"):
    table = class_table(table_name)
    batch, height, width = draw(st.integers(1, 3)), draw(st.integers(1, 10)), draw(st.integers(1, 10))
    seed = draw(st.integers(0, 2**31))
    # draw from a few classes so that many are absent
    classes = torch.tensor(draw(st.lists(st.integers(0, table.num_classes - 1), min_size=1, max_size=5)))
    g = torch.Generator().manual_seed(seed)
    labels = classes[torch.randint(0, len(classes), (batch, height, width), generator=g)]
    instances = labels * 1000 + torch.randint(0, 2, labels.shape, generator=g)
    return SemanticMap(labels, table, instances if table.has_edge else None)


@settings(max_examples=40, deadline=None)
@given(semantic_maps())
def test_compact_round_trip(semantic_map):
    payload = Transmitter()(semantic_map)
    ids = [payload.present_ids(b) for b in range(payload.batch_size)]
    compact = [payload.compact(b) for b in range(payload.batch_size)]
    rebuilt = Payload.from_compact(CITYSCAPES, ids, compact)
    assert torch.equal(rebuilt.values, payload.values)
    assert torch.equal(rebuilt.transmitted, payload.transmitted)
    for b in range(payload.batch_size):
        assert ids[b] == sorted(set(semantic_map.labels[b].flatten().tolist()))
        assert compact[b].shape[0] == len(ids[b]) + 1


@settings(max_examples=20, deadline=None)
@given(semantic_maps("ade20k"))
def test_payload_without_edge_channel(semantic_map):
    payload = Transmitter()(semantic_map)
    height, width = semantic_map.size
    assert payload.values.shape[1] == 151
    for b in range(payload.batch_size):
        assert int(payload.real_values[b]) == len(payload.present_ids(b)) * height * width


def test_absent_channels_are_zero_and_uses_counted():
    labels = torch.tensor([[[7, 7, 26], [7, 26, 26]]])
    payload = Transmitter()(SemanticMap(labels, CITYSCAPES))
    assert payload.present_ids(0) == [7, 26]
    assert int(payload.real_values[0]) == 3 * 6
    absent = ~payload.transmitted[0]
    assert payload.values[0, absent].abs().sum() == 0


def test_from_compact_rejects_bad_side_information():
    with pytest.raises(ValueError, match="outside"):
        Payload.from_compact(CITYSCAPES, [[7, 99]], [torch.zeros(3, 2, 2)])
    with pytest.raises(ValueError, match="compact shape"):
        Payload.from_compact(CITYSCAPES, [[7]], [torch.zeros(3, 2, 2)])
