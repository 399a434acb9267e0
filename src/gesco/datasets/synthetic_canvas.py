"""The drawing surface and pinhole camera of the synthetic street scenes.

A scene is drawn back to front onto a :class:`Canvas` that holds, per pixel, the Cityscapes label
id, the Cityscapes instance id, a *material slot*, the orientation of the surface, its depth and
which boxed object (if any) it belongs to. Geometry
(what is where) and appearance (what colour each material slot gets) are drawn from two separate
random streams, so one layout can be rendered as many different images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

# Cityscapes label ids (cityscapesscripts.helpers.labels) of the classes the generator draws.
ROAD, SIDEWALK, BUILDING, POLE = 7, 8, 11, 17
TRAFFIC_LIGHT, TRAFFIC_SIGN, VEGETATION, TERRAIN, SKY = 19, 20, 21, 22, 23
PERSON, RIDER, CAR, BICYCLE = 24, 25, 26, 33
THING_CLASSES = (PERSON, RIDER, CAR, BICYCLE)
#: Classes whose objects get a ground-truth box in the default scenes: the instance classes plus the compact
#: stuff objects a street-scene detector is asked for (Cityscapes gives poles, lights and signs no instance ids).
BOX_CLASSES = (POLE, TRAFFIC_LIGHT, TRAFFIC_SIGN, PERSON, CAR)
#: The classes scenes with cyclists add (``SyntheticStreets(riders=True)``), boxed too.
CYCLIST_CLASSES = (RIDER, BICYCLE)
#: Depth of the sky and the cap on every depth (m): the ground just below the horizon would otherwise
#: run to infinity.
SKY_DEPTH_M = 1000.0

# Surface orientation per pixel; the renderer lights each one differently (sun side, shade).
GROUND, FRONTAL, FACES_LEFT, FACES_RIGHT, SKYWARD = 0, 1, 2, 3, 4

CAMERA_HEIGHT_M = 1.5


@dataclass(frozen=True)
class Camera:
    """One-point perspective camera looking down the street; world X right, Y up, Z forward (m).

    Pixel ``(row, col)`` has its centre at image coordinates ``(row + 0.5, col + 0.5)``.
    """

    focal: float  # px
    horizon: float  # image y of the vanishing point, px
    center_x: float  # image x of the vanishing point, px
    height_m: float = CAMERA_HEIGHT_M

    def x_of(self, x_m: float | np.ndarray, z_m: float | np.ndarray) -> float | np.ndarray:
        return self.center_x + self.focal * x_m / z_m

    def y_of(self, y_m: float | np.ndarray, z_m: float | np.ndarray) -> float | np.ndarray:
        """Image y of world height ``y_m`` (0 = ground) at depth ``z_m``."""
        return self.horizon + self.focal * (self.height_m - y_m) / z_m

    def px_per_m(self, z_m: float) -> float:
        return self.focal / z_m


def pixel_span(start: float, stop: float, size: int) -> tuple[int, int]:
    """Index range of pixels whose centres lie in ``[start, stop)``, clipped to ``[0, size)``."""
    lo = max(0, math.ceil(start - 0.5))
    hi = min(size, math.ceil(stop - 0.5))
    return lo, max(lo, hi)


def bar_span(center: float, width_px: float, size: int) -> tuple[int, int]:
    """A bar of a whole number of pixels (at least 1) centred on ``center``, clipped to the image.

    Snapping to whole pixels keeps a 2 px pole exactly 2 px wide wherever it stands.
    """
    n = max(1, round(width_px))
    lo = math.floor(center - n / 2 + 0.5)
    return min(max(0, lo), size), max(0, min(size, lo + n))


@dataclass
class Canvas:
    """Per-pixel scene description, drawn back to front.

    Arrays are (H, W): ``labels`` uint8 Cityscapes label ids, ``instances`` int32 Cityscapes
    instance ids (stuff: the label id; things: label id * 1000 + k), ``material`` int16 indices
    into ``material_kinds``, ``facing`` uint8 surface orientation, ``ground_x`` float32 lateral
    world position of ground pixels (m; used by the renderer for cast shadows), ``depth`` float32
    camera-axis distance Z of the visible surface (m; the sky and the far ground at
    :data:`SKY_DEPTH_M`), ``owner`` int32 the boxed object a pixel shows (``k`` >= 1 is object
    ``box_labels[k - 1]``, 0 none).
    """

    height: int
    width: int
    labels: np.ndarray = field(init=False)
    instances: np.ndarray = field(init=False)
    material: np.ndarray = field(init=False)
    facing: np.ndarray = field(init=False)
    ground_x: np.ndarray = field(init=False)
    depth: np.ndarray = field(init=False)
    owner: np.ndarray = field(init=False)
    box_labels: list[int] = field(default_factory=list)
    material_kinds: list[str] = field(default_factory=list)
    material_shade_of: list[tuple[int, float] | None] = field(default_factory=list)
    #: Slots of the optional objects (cyclists), coloured from a random stream of their own: the colours of every
    #: other slot, and all the renderer draws after them, stay what they are without those objects.
    added_materials: set[int] = field(default_factory=set)
    _next_instance: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        shape = (self.height, self.width)
        sky_material = self.new_material("sky")
        self.labels = np.full(shape, SKY, np.uint8)
        self.instances = np.full(shape, SKY, np.int32)
        self.material = np.full(shape, sky_material, np.int16)
        self.facing = np.full(shape, SKYWARD, np.uint8)
        self.ground_x = np.zeros(shape, np.float32)
        self.depth = np.full(shape, SKY_DEPTH_M, np.float32)
        self.owner = np.zeros(shape, np.int32)

    @property
    def thin_px(self) -> int:
        """Smallest width of a thin structure: 2 px at 128 px image width, scaled with the width."""
        return max(2, round(2 * self.width / 128))

    def new_material(self, kind: str, *, added: bool = False) -> int:
        """Open a material slot; the renderer gives every slot its own colour drawn for its kind (``added``: a
        slot of an optional object, see ``added_materials``)."""
        self.material_kinds.append(kind)
        self.material_shade_of.append(None)
        if added:
            self.added_materials.add(len(self.material_kinds) - 1)
        return len(self.material_kinds) - 1

    def shaded_material(self, source: int, gain: float) -> int:
        """A slot with the colour of slot ``source`` times ``gain`` (e.g. the shaded side of a pole)."""
        self.material_kinds.append(self.material_kinds[source])
        self.material_shade_of.append((source, gain))
        return len(self.material_kinds) - 1

    def new_instance(self, label: int) -> int:
        k = self._next_instance.get(label, 0)
        self._next_instance[label] = k + 1
        return label * 1000 + k

    def new_box(self, label: int) -> int:
        """Open a boxed object of class ``label``; paint its parts with the returned ``owner``."""
        self.box_labels.append(label)
        return len(self.box_labels)

    def paint(
        self,
        rows: tuple[int, int],
        cols: tuple[int, int],
        parts: np.ndarray,
        materials: list[int] | np.ndarray,
        label: int,
        *,
        depth: float | np.ndarray,
        facing: int = FRONTAL,
        instance: int | None = None,
        owner: int = 0,
    ) -> None:
        """Draw one object over the window ``rows`` x ``cols``.

        ``parts`` is an int array of the window's shape: 0 leaves a pixel untouched, ``p > 0``
        paints it with material ``materials[p - 1]``; ``depth`` (m) is one value or an array that
        broadcasts to the window (e.g. per column for a wall seen at an angle); ``facing`` is the
        surface orientation; ``owner`` the boxed object (:meth:`new_box`) the pixels show, 0 none.
        """
        window = (slice(*rows), slice(*cols))
        mask = parts > 0
        if not mask.any():
            return
        lookup = np.asarray(materials, np.int16)
        self.labels[window][mask] = label
        self.instances[window][mask] = label if instance is None else instance
        self.material[window][mask] = lookup[parts[mask] - 1]
        self.facing[window][mask] = facing
        self.depth[window][mask] = np.broadcast_to(np.asarray(depth, np.float32), mask.shape)[mask]
        self.owner[window][mask] = owner

    def finished_instances(self) -> np.ndarray:
        """Instance map with the visible instances of each thing class renumbered k = 0, 1, ...

        Fully occluded objects leave no gap in the numbering; order follows drawing order.
        """
        out = self.instances.copy()
        for label in THING_CLASSES:
            drawn = self._next_instance.get(label, 0)
            mask = (out >= label * 1000) & (out < label * 1000 + drawn)
            if drawn == 0 or not mask.any():
                continue
            k = out[mask] - label * 1000
            visible = np.unique(k)
            remap = np.zeros(drawn, np.int32)
            remap[visible] = np.arange(visible.size, dtype=np.int32)
            out[mask] = label * 1000 + remap[k]
        return out

    def finished_boxes(self, instances: np.ndarray) -> np.ndarray:
        """One box per boxed object with visible pixels, in drawing order: int32 (N, 6) rows
        ``(x0, y0, x1, y1, label id, instance id)``.

        The box is the bounding rectangle of the object's visible pixels in pixel edges: it covers
        columns ``x0 .. x1 - 1`` and rows ``y0 .. y1 - 1``. ``instances`` is :meth:`finished_instances`;
        persons and cars take their instance id from it, the other classes are numbered
        ``label * 1000 + k`` the same way (k = 0, 1, ... per class over the visible objects).
        """
        rows, cols = np.nonzero(self.owner)
        ids = self.owner[rows, cols]
        # Sort the pixels by object once; each object is then one run, reduced in a single call per edge.
        order = np.argsort(ids, kind="stable")
        rows, cols, ids = rows[order], cols[order], ids[order]
        visible, starts = np.unique(ids, return_index=True)
        if visible.size == 0:
            return np.zeros((0, 6), np.int32)
        labels = np.asarray(self.box_labels, np.int64)[visible - 1]
        numbers = np.zeros(labels.size, np.int64)
        for label in np.unique(labels):
            numbers[labels == label] = label * 1000 + np.arange((labels == label).sum())
        things = np.isin(labels, THING_CLASSES)
        numbers[things] = instances[rows[starts], cols[starts]][things]
        edges = (
            np.minimum.reduceat(cols, starts),
            np.minimum.reduceat(rows, starts),
            np.maximum.reduceat(cols, starts) + 1,
            np.maximum.reduceat(rows, starts) + 1,
        )
        return np.stack([*edges, labels, numbers], axis=1).astype(np.int32)
