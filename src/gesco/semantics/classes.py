"""Class tables: one named channel per class, in the order the official GESCO models expect.

| table | classes | one-hot channels | edge channel |
|---|---|---|---|
| Cityscapes | label ids 0..33, license plate (id -1) as channel 34 | 35 | yes (36 in all) |
| COCO-Stuff | 182 ids of the stuff-thing maps, unlabeled (255 on disk) as channel 182 | 183 | yes (184) |
| ADE20K | 150 classes (on disk 1..150 -> 0..149), "other" (0 on disk) as channel 150 | 151 | no |
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from cityscapesscripts.helpers.labels import labels as _cityscapes_labels

Color = tuple[int, int, int]


@dataclass(frozen=True)
class ClassTable:
    """The classes of one dataset, indexed by one-hot channel.

    ``names[c]`` and ``colors[c]`` describe channel ``c``; ``has_edge`` says whether an
    instance-edge channel follows the ``num_classes`` class channels; ``ignore_index`` is
    the channel that evaluation ignores (unlabeled), if any; ``train_ids`` maps a channel
    to the dataset's evaluation class (255 = ignored) where the dataset defines one.
    """

    name: str
    names: tuple[str, ...]
    colors: tuple[Color, ...]
    has_edge: bool
    ignore_index: int | None = None
    train_ids: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if len(self.names) != len(self.colors):
            raise ValueError(f"{self.name}: {len(self.names)} names but {len(self.colors)} colours")

    @property
    def num_classes(self) -> int:
        return len(self.names)

    @property
    def num_channels(self) -> int:
        """Channels of the conditioning map: one per class, plus the edge channel."""
        return self.num_classes + int(self.has_edge)

    @property
    def edge_channel(self) -> int | None:
        return self.num_classes if self.has_edge else None

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise ValueError(f"{self.name} has no class {name!r}") from None


def _palette(n: int) -> tuple[Color, ...]:
    """Distinct colours by spreading the bits of the index over R, G and B (as the VOC palette does)."""
    colors = []
    for index in range(n):
        r = g = b = 0
        value = index + 1
        for shift in range(7, -1, -1):
            r |= (value & 1) << shift
            g |= ((value >> 1) & 1) << shift
            b |= ((value >> 2) & 1) << shift
            value >>= 3
        colors.append((r, g, b))
    return tuple(colors)


def _cityscapes() -> ClassTable:
    by_id = {label.id: label for label in _cityscapes_labels}
    # License plate carries id -1 in cityscapesscripts; the paper's 35 channels give it channel 34.
    ordered = [by_id[i] for i in range(34)] + [by_id[-1]]
    return ClassTable(
        name="cityscapes",
        names=tuple(label.name for label in ordered),
        colors=tuple(tuple(label.color) for label in ordered),
        has_edge=True,
        ignore_index=0,
        train_ids=tuple(label.trainId if label.trainId >= 0 else 255 for label in ordered),
    )


# The 182 ids of COCO-Stuff's stuff-thing label maps (labels.txt ids 1..182 minus one),
# things 0..90 with the 11 ids COCO never used, then stuff 91..181.
_COCO_STUFF_NAMES = (
    "person bicycle car motorcycle airplane bus train truck boat traffic_light fire_hydrant street_sign "
    "stop_sign parking_meter bench bird cat dog horse sheep cow elephant bear zebra giraffe hat backpack "
    "umbrella shoe eye_glasses handbag tie suitcase frisbee skis snowboard sports_ball kite baseball_bat "
    "baseball_glove skateboard surfboard tennis_racket bottle plate wine_glass cup fork knife spoon bowl "
    "banana apple sandwich orange broccoli carrot hot_dog pizza donut cake chair couch potted_plant bed "
    "mirror dining_table window desk toilet door tv laptop mouse remote keyboard cell_phone microwave oven "
    "toaster sink refrigerator blender book clock vase scissors teddy_bear hair_drier toothbrush hair_brush "
    "banner blanket branch bridge building-other bush cabinet cage cardboard carpet ceiling-other "
    "ceiling-tile cloth clothes clouds counter cupboard curtain desk-stuff dirt door-stuff fence "
    "floor-marble floor-other floor-stone floor-tile floor-wood flower fog food-other fruit "
    "furniture-other grass gravel ground-other hill house leaves light mat metal mirror-stuff moss "
    "mountain mud napkin net paper pavement pillow plant-other plastic platform playingfield railing "
    "railroad river road rock roof rug salad sand sea shelf sky-other skyscraper snow solid-other stairs "
    "stone straw structural-other table tent textile-other towel tree vegetable wall-brick wall-concrete "
    "wall-other wall-panel wall-stone wall-tile wall-wood water-other waterdrops window-blind "
    "window-other wood"
).split()


def _coco_stuff() -> ClassTable:
    names = tuple(n.replace("_", " ") for n in _COCO_STUFF_NAMES) + ("unlabeled",)
    return ClassTable(
        name="coco-stuff",
        names=names,
        colors=_palette(182) + ((0, 0, 0),),
        has_edge=True,
        ignore_index=182,
    )


# ADE20K scene-parsing classes 1..150 (objectInfo150), stored here at index id - 1.
_ADE20K_NAMES = (
    "wall|building|sky|floor|tree|ceiling|road|bed|windowpane|grass|cabinet|sidewalk|person|earth|door|"
    "table|mountain|plant|curtain|chair|car|water|painting|sofa|shelf|house|sea|mirror|rug|field|armchair|"
    "seat|fence|desk|rock|wardrobe|lamp|bathtub|railing|cushion|base|box|column|signboard|"
    "chest of drawers|counter|sand|sink|skyscraper|fireplace|refrigerator|grandstand|path|stairs|runway|"
    "case|pool table|pillow|screen door|stairway|river|bridge|bookcase|blind|coffee table|toilet|flower|"
    "book|hill|bench|countertop|stove|palm|kitchen island|computer|swivel chair|boat|bar|arcade machine|"
    "hovel|bus|towel|light|truck|tower|chandelier|awning|streetlight|booth|television receiver|airplane|"
    "dirt track|apparel|pole|land|bannister|escalator|ottoman|bottle|buffet|poster|stage|van|ship|"
    "fountain|conveyer belt|canopy|washer|plaything|swimming pool|stool|barrel|basket|waterfall|tent|bag|"
    "minibike|cradle|oven|ball|food|step|tank|trade name|microwave|pot|animal|bicycle|lake|dishwasher|"
    "screen|blanket|sculpture|hood|sconce|vase|traffic light|tray|ashcan|fan|pier|crt screen|plate|"
    "monitor|bulletin board|shower|radiator|glass|clock|flag"
).split("|")


def _ade20k() -> ClassTable:
    return ClassTable(
        name="ade20k",
        names=tuple(_ADE20K_NAMES) + ("other",),
        colors=_palette(150) + ((0, 0, 0),),
        has_edge=False,
        ignore_index=150,
    )


def folder_table(num_classes: int, *, has_edge: bool = True) -> ClassTable:
    """A table for a generic folder dataset: classes ``0..num_classes-1`` named by number."""
    if num_classes < 1:
        raise ValueError(f"a folder dataset needs at least one class, got num_classes={num_classes}")
    return ClassTable(
        name="folder",
        names=tuple(f"class {i}" for i in range(num_classes)),
        colors=_palette(num_classes),
        has_edge=has_edge,
    )


_BUILDERS = {"cityscapes": _cityscapes, "coco-stuff": _coco_stuff, "ade20k": _ade20k}
TABLE_NAMES = tuple(_BUILDERS)


@cache
def class_table(name: str) -> ClassTable:
    """The class table called ``name``: one of ``TABLE_NAMES``."""
    key = name.lower().replace("_", "-")
    if key == "cocostuff":
        key = "coco-stuff"
    if key not in _BUILDERS:
        raise ValueError(f"unknown class table {name!r}; choose one of {list(TABLE_NAMES)}")
    return _BUILDERS[key]()
