"""Synthetic street scenes with Cityscapes labels: gesco's own procedural data set.

A scene is a road in one-point perspective (lanes, dashed markings, curbs, sometimes a zebra
crossing), sidewalks, buildings with windows and shop fronts, hedges or open fields with tree
lines, sky, poles with traffic signs and traffic lights, street trees, and cars and persons as
instances, all drawn far to near so nearer objects occlude farther ones. ``riders=True`` adds cyclists
(rider 25 and bicycle 33, instances both), placed and coloured from streams of their own, so every pixel
they do not cover stays as it was. Geometry lives in world metres, so any resolution shows the same scene
(defaults 64 x 128 and 128 x 256, the Cityscapes aspect). Thin structures (poles, lane markings) are at
least 2 px wide at 128 px width, scaled with the width.

Labels are Cityscapes label ids (road 7, sidewalk 8, building 11, pole 17, traffic light 19, traffic
sign 20, vegetation 21, terrain 22, sky 23, person 24, car 26) and instances use the Cityscapes
encoding: stuff pixels hold their label id, thing pixels ``label_id * 1000 + k`` with k = 0, 1, ...
per class.

Every scene also carries its ground truth of geometry: a per-pixel depth map from the pinhole camera
(the ground plane's depth from each row below the horizon, every object at the depth of its ground
contact point, façades and car sides receding per column, sky capped at ``SKY_DEPTH_M`` = 1000 m),
and a box with class and instance id for every visible person, car, pole, traffic sign and traffic
light (and rider and bicycle).

Scene ``seed`` fixes both layout and appearance. ``appearance_seed`` re-renders the same layout
(identical labels and instances) with other colours, textures and lighting.

Example:
    >>> streets = SyntheticStreets(height=64, width=128)
    >>> scene = streets.scene(7)
    >>> scene.image.shape, scene.labels.dtype, scene.instances.dtype
    ((64, 128, 3), dtype('uint8'), dtype('int32'))
    >>> bool((streets.scene(7, appearance_seed=1).labels == scene.labels).all())
    True
    >>> scene.depth.dtype, scene.boxes.shape[1]
    (dtype('float32'), 6)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from gesco.datasets.base import Boxes, Sample, image_to_tensor
from gesco.datasets.synthetic_appearance import NoiseBank, render
from gesco.datasets.synthetic_canvas import (
    BUILDING,
    CAR,
    PERSON,
    POLE,
    ROAD,
    SIDEWALK,
    SKY,
    TERRAIN,
    TRAFFIC_LIGHT,
    TRAFFIC_SIGN,
    VEGETATION,
    Camera,
    Canvas,
)
from gesco.datasets.synthetic_layout import draw_layout

SYNTHETIC_CLASSES: dict[int, str] = {
    ROAD: "road",
    SIDEWALK: "sidewalk",
    BUILDING: "building",
    POLE: "pole",
    TRAFFIC_LIGHT: "traffic light",
    TRAFFIC_SIGN: "traffic sign",
    VEGETATION: "vegetation",
    TERRAIN: "terrain",
    SKY: "sky",
    PERSON: "person",
    CAR: "car",
}
"""Cityscapes label id -> name of every class the generator draws by default."""

MIN_SIZE = 16


@dataclass(frozen=True)
class SyntheticScene:
    """One generated scene.

    ``image``: uint8 (H, W, 3) RGB. ``labels``: uint8 (H, W) Cityscapes label ids.
    ``instances``: int32 (H, W) Cityscapes instance ids. ``seed``: the scene's seed.
    ``depth``: float32 (H, W) camera-axis depth Z of each pixel's surface in metres (sky: 1000).
    ``boxes``: int32 (N, 6) rows ``(x0, y0, x1, y1, label id, instance id)``, one per visible person,
    car, pole, traffic sign and traffic light in drawing order; the box covers columns ``x0 .. x1 - 1``
    and rows ``y0 .. y1 - 1``. Persons and cars carry their id in ``instances``; the other classes
    are numbered the same way (``label * 1000 + k``) though Cityscapes gives them no instance map.
    ``camera``: the pinhole camera the scene was drawn with (focal length and principal point in
    pixels). The three are None for a scene built by hand without them.
    """

    image: np.ndarray
    labels: np.ndarray
    instances: np.ndarray
    seed: int
    depth: np.ndarray | None = None
    boxes: np.ndarray | None = None
    camera: Camera | None = None


def _check_seed(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}; use a non-negative seed")
    return int(value)


class SyntheticStreets:
    """Generator of synthetic street scenes at one resolution (``height`` x ``width`` px).

    Deterministic: the same seed gives the same scene on every machine (numpy PCG64 streams). ``riders``
    adds cyclists, placed and coloured from random streams of their own: every pixel they do not cover is the
    pixel of the scene without them.
    """

    def __init__(self, height: int = 64, width: int = 128, *, riders: bool = False) -> None:
        for name, value in (("height", height), ("width", width)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < MIN_SIZE:
                raise ValueError(f"{name} must be an int >= {MIN_SIZE}, got {value!r}")
        if not isinstance(riders, (bool, np.bool_)):
            raise TypeError(f"riders must be a bool, got {type(riders).__name__} {riders!r}")
        self.height, self.width, self.riders = int(height), int(width), bool(riders)
        self._noise = NoiseBank(self.height, self.width)

    def scene(self, seed: int, *, appearance_seed: int | None = None) -> SyntheticScene:
        """Generate scene ``seed``; ``appearance_seed`` re-renders its layout with other looks."""
        seed = _check_seed("seed", seed)
        layout_rng = np.random.default_rng([seed, 0])
        if appearance_seed is None:
            look_rng = np.random.default_rng([seed, 1])
        else:
            look_rng = np.random.default_rng([seed, 2, _check_seed("appearance_seed", appearance_seed)])
        canvas = Canvas(self.height, self.width)
        cyclist_rng = cyclist_look_rng = None
        if self.riders:
            cyclist_rng = np.random.default_rng([seed, 3])
            cyclist_look_rng = np.random.default_rng(
                [seed, 4] if appearance_seed is None else [seed, 5, appearance_seed]
            )
        camera = draw_layout(canvas, layout_rng, cyclist_rng)
        image = render(canvas, camera, self._noise, look_rng, cyclist_look_rng)
        instances = canvas.finished_instances()
        return SyntheticScene(
            image=image,
            labels=canvas.labels,
            instances=instances,
            seed=seed,
            depth=canvas.depth,
            boxes=canvas.finished_boxes(instances),
            camera=camera,
        )


class SyntheticStreetsDataset(Dataset):
    """``n`` synthetic scenes as :class:`~gesco.datasets.base.Sample`: item ``i`` is scene ``seed_offset + i``.

    Labels are Cityscapes label ids, which are also the Cityscapes channel indices (35 classes),
    so this data set drops in wherever Cityscapes does. Use disjoint seed ranges for training and
    evaluation, e.g. ``seed_offset=0`` and ``seed_offset=1_000_000``. Samples carry the scene's
    ``depth`` and ``boxes`` (:class:`~gesco.datasets.base.Boxes`). ``riders`` adds cyclists
    (:class:`SyntheticStreets`); those samples are named ``synthetic_riders_<seed>``.
    """

    num_classes = 35

    def __init__(
        self, n: int, seed_offset: int = 0, height: int = 64, width: int = 128, *, riders: bool = False
    ) -> None:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"n must be a non-negative int, got {n!r}")
        self.n = int(n)
        self.seed_offset = _check_seed("seed_offset", seed_offset)
        self.streets = SyntheticStreets(height, width, riders=riders)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> Sample:
        if not -self.n <= index < self.n:
            raise IndexError(f"index {index} out of range for {self.n} scenes")
        return self.sample(self.seed_offset + index % self.n)

    def sample(self, seed: int) -> Sample:
        """Scene ``seed`` as a sample, whatever this data set's range."""
        scene = self.streets.scene(seed)
        return Sample(
            image=image_to_tensor(scene.image),
            labels=torch.from_numpy(scene.labels.astype(np.int64)),
            instances=torch.from_numpy(scene.instances.astype(np.int64)),
            # another name with cyclists: a resumed evaluation must not take one scene's images for the other's
            name=f"synthetic_{'riders_' if self.streets.riders else ''}{seed:07d}",
            depth=torch.from_numpy(scene.depth),
            boxes=Boxes.from_rows(scene.boxes),
        )
