import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gesco.semantics import SemanticMap, class_table, instance_edges

CITYSCAPES = class_table("cityscapes")


def label_maps(num_classes: int, max_side: int = 12):
    return st.tuples(st.integers(1, 3), st.integers(1, max_side), st.integers(1, max_side), st.integers(0, 2**31)).map(
        lambda s: torch.randint(0, num_classes, s[:3], generator=torch.Generator().manual_seed(s[3]))
    )


def test_edges_hand_computed():
    instances = torch.tensor([[[1, 1, 2], [1, 1, 2], [3, 3, 3]]])
    expected = torch.tensor([[[0, 1, 1], [1, 1, 1], [1, 1, 1]]]).float()
    assert torch.equal(instance_edges(instances)[:, 0], expected)
    uniform = torch.full((1, 4, 5), 7)
    assert instance_edges(uniform).sum() == 0


def test_official_edge_rule_ignores_touching_things():
    # two touching cars (26000, 26001) beside road (7): only the official 8-bit rule merges the cars.
    instances = torch.tensor([[[7, 26000, 26001, 26001]]])
    true_edges = instance_edges(instances)[0, 0, 0].tolist()
    official = instance_edges(instances, rule="official")[0, 0, 0].tolist()
    assert true_edges == [1, 1, 1, 0]
    assert official == [1, 1, 0, 0]


@settings(max_examples=40, deadline=None)
@given(label_maps(35))
def test_one_hot_round_trip(labels):
    semantic_map = SemanticMap(labels, CITYSCAPES)
    one_hot = semantic_map.one_hot()
    assert one_hot.shape == (labels.shape[0], 36, *labels.shape[1:])
    assert torch.equal(one_hot[:, :35].argmax(1), labels)
    assert torch.equal(one_hot[:, :35].sum(1), torch.ones(labels.shape))
    assert torch.equal(one_hot[:, 35:], semantic_map.edges())


def test_ade20k_has_no_edge_channel():
    one_hot = SemanticMap(torch.tensor([[0, 150]]), "ade20k").one_hot()
    assert one_hot.shape == (1, 151, 1, 2)


def test_instances_drive_the_edge_channel():
    labels = torch.full((1, 2, 4), 26)
    instances = torch.tensor([[[26000, 26000, 26001, 26001]] * 2])
    with_instances = SemanticMap(labels, CITYSCAPES, instances).one_hot()[:, 35]
    without = SemanticMap(labels, CITYSCAPES).one_hot()[:, 35]
    assert with_instances.sum() == 4 and without.sum() == 0


def test_colorize_uses_table_colours():
    rgb = SemanticMap(torch.tensor([[7, 26]]), CITYSCAPES).colorize()
    assert rgb.dtype == torch.uint8 and rgb.shape == (1, 3, 1, 2)
    assert tuple(rgb[0, :, 0, 0].tolist()) == CITYSCAPES.colors[7]
    assert tuple(rgb[0, :, 0, 1].tolist()) == CITYSCAPES.colors[26]


def test_validation_names_offending_ids():
    with pytest.raises(ValueError, match=r"\[35, 40\]"):
        SemanticMap(torch.tensor([[1, 35, 40]]), CITYSCAPES)
    with pytest.raises(ValueError, match=r"\[-3\]"):
        SemanticMap(torch.tensor([[-3, 1]]), CITYSCAPES)


@pytest.mark.parametrize(
    ("labels", "error", "match"),
    [
        (torch.zeros(2, 3), TypeError, "integer dtype"),
        (torch.zeros(1, 1, 2, 3, dtype=torch.long), ValueError, r"\(B, H, W\)"),
        ([[1, 2]], TypeError, "torch.Tensor"),
    ],
)
def test_validation_of_dtype_and_shape(labels, error, match):
    with pytest.raises(error, match=match):
        SemanticMap(labels, CITYSCAPES)


def test_instance_shape_must_match():
    with pytest.raises(ValueError, match="instance map shape"):
        SemanticMap(torch.zeros(1, 2, 3, dtype=torch.long), CITYSCAPES, torch.zeros(1, 3, 2, dtype=torch.long))
