"""Regenerated images of synthetic training scenes, paired with those scenes' ground truth.

``gesco evaluate --data synthetic --data-seed S`` writes each regenerated image as
``OUT/images/<method>/psnr<label>/synthetic_<seed>.png`` (``synthetic_riders_<seed>.png`` with cyclists). The scene
generator rebuilds that seed's labels, instances, depth and boxes exactly, so the image a receiver made of a scene
can be trained on with the scene's own geometry: a geometry network then learns to read the receivers' textures,
not only the renderer's. :class:`MixedScenes` draws a fixed share of a training set from them.

Only scenes below the evaluation seeds are accepted: training on a regeneration of a held-out scene would leak it.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from gesco.constants import EVALUATION_SEED_OFFSET
from gesco.datasets.base import Sample, image_to_tensor
from gesco.datasets.preprocessing import UnreadableImageError, read_image
from gesco.datasets.synthetic import SyntheticStreetsDataset

#: The names ``gesco evaluate`` gives synthetic scenes' images.
#: (``Sample.name``: the seed in at least seven ASCII digits.)
SCENE_IMAGE_NAME = re.compile(r"synthetic_(?P<riders>riders_)?(?P<seed>[0-9]{7,})\.png")


class RegeneratedScenes(Dataset):
    """Every ``synthetic_[riders_]<seed>.png`` under ``folders`` (searched recursively), in sorted path order, as a
    :class:`~gesco.datasets.base.Sample` of that scene with its image replaced by the file's. Every file is
    checked here, before a training run writes anything. Item ``i`` is the ``i``-th file, so the folders must
    not change while a run may still be resumed.

    Raises:
        FileNotFoundError: a folder that does not exist.
        ValueError: no such image under the folders; a PNG with another name (so that a wrong folder is not
            half-used); a scene seed at or above the evaluation seeds; an image of another size than
            ``height`` x ``width``; a file PIL cannot read (``UnreadableImageError``).
    """

    def __init__(self, folders: tuple[str | Path, ...], height: int = 64, width: int = 128) -> None:
        files: list[Path] = []
        for folder in map(Path, folders):
            if not folder.is_dir():
                raise FileNotFoundError(f"no folder of regenerated images at {folder}")
            files.extend(sorted(folder.rglob("*.png")))
        if not files:
            raise ValueError(f"no regenerated images (synthetic_<seed>.png) under {', '.join(map(str, folders))}")
        self.scenes: list[tuple[Path, bool, int]] = []
        for path in files:
            match = SCENE_IMAGE_NAME.fullmatch(path.name)
            if match is None:
                raise ValueError(f"{path} is not named as gesco evaluate names a synthetic scene's image")
            seed = int(match["seed"])
            if seed >= EVALUATION_SEED_OFFSET:
                raise ValueError(
                    f"{path} regenerates scene {seed}, an evaluation scene (seeds from {EVALUATION_SEED_OFFSET:,}); "
                    "training on it would leak the evaluation set"
                )
            self._check_size(path, (height, width))
            self.scenes.append((path, match["riders"] is not None, seed))
        self._streets = {
            riders: SyntheticStreetsDataset(1, height=height, width=width, riders=riders) for riders in (False, True)
        }

    @staticmethod
    def _check_size(path: Path, size: tuple[int, int]) -> None:
        try:
            with Image.open(path) as image:  # reads the header only
                width, height = image.size
        except (OSError, SyntaxError) as err:
            raise UnreadableImageError(f"regenerated image {path} is not a readable image: {err}") from err
        if (height, width) != size:
            raise ValueError(f"{path} is {height}x{width} px, the scenes {size[0]}x{size[1]}")

    def __len__(self) -> int:
        return len(self.scenes)

    def __getitem__(self, index: int) -> Sample:
        path, riders, seed = self.scenes[index]
        sample = self._streets[riders].sample(seed)
        return Sample(
            image=image_to_tensor(np.asarray(read_image(path))),
            labels=sample.labels,
            instances=sample.instances,
            name=sample.name,
            depth=sample.depth,
            boxes=sample.boxes,
        )


#: Spreads the regenerated items evenly over the index range (the fractional parts of i / golden ratio).
_GOLDEN = (5**0.5 - 1) / 2


class MixedScenes(Dataset):
    """``base`` with a share of its items taken from ``regenerated``: item ``i`` is regenerated when the fractional
    part of ``i * 0.618...`` is below ``share`` (an even spread, the same on every run and resume), and then it is
    ``regenerated[i % len(regenerated)]``."""

    def __init__(self, base: Dataset, regenerated: Dataset, share: float) -> None:
        if not 0 < share <= 1:
            raise ValueError(f"share must be in (0, 1], got {share}")
        self.base, self.regenerated, self.share = base, regenerated, share

    def __len__(self) -> int:
        return len(self.base)

    def is_regenerated(self, index: int) -> bool:
        return (index * _GOLDEN) % 1 < self.share

    def __getitem__(self, index: int) -> Sample:
        if self.is_regenerated(index):
            return self.regenerated[index % len(self.regenerated)]
        return self.base[index]
