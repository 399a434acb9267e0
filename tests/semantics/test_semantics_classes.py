import pytest
from cityscapesscripts.helpers.labels import labels as cityscapes_labels

from gesco.semantics import class_table


def test_cityscapes_table_matches_cityscapesscripts():
    table = class_table("cityscapes")
    assert table.num_classes == 35 and table.num_channels == 36 and table.edge_channel == 35
    for label in cityscapes_labels:
        channel = 34 if label.id == -1 else label.id
        assert table.names[channel] == label.name
        assert table.colors[channel] == tuple(label.color)
        assert table.train_ids[channel] == (label.trainId if label.trainId >= 0 else 255)
    assert table.names[34] == "license plate"
    assert sorted(t for t in table.train_ids if t != 255) == list(range(19))


@pytest.mark.parametrize(
    ("name", "classes", "channels", "last"),
    [("coco-stuff", 183, 184, "unlabeled"), ("ade20k", 151, 151, "other")],
)
def test_coco_stuff_and_ade20k_sizes(name, classes, channels, last):
    table = class_table(name)
    assert (table.num_classes, table.num_channels) == (classes, channels)
    assert table.names[-1] == last and table.ignore_index == classes - 1
    assert len(set(table.names)) == classes
    assert len(set(table.colors)) == classes


def test_known_class_positions():
    coco = class_table("coco-stuff")
    assert coco.index("person") == 0 and coco.index("car") == 2 and coco.index("wood") == 181
    assert coco.index("road") == 148 and coco.index("sky-other") == 156
    ade = class_table("ade20k")
    assert ade.index("wall") == 0 and ade.index("car") == 20 and ade.index("flag") == 149


def test_unknown_table_lists_the_choices():
    with pytest.raises(ValueError, match="cityscapes"):
        class_table("pascal")
