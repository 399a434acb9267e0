"""Reading and resizing images and label maps the way the official GESCO loader does.

The official loader (guided-diffusion's ``image_datasets.py`` as modified by SDM/GESCO) resizes:

- Cityscapes, keeping the aspect: halve the image with a BOX filter while its short side is at
  least twice the target short side, then BICUBIC to short side = target (256 -> 256 x 512).
- COCO-Stuff and ADE20K, test: BOX halving, then BICUBIC straight to the square target.
- COCO-Stuff and ADE20K, training: a random crop covering 80-100 % of the short side, taken by
  resizing the short side to ``S`` (an integer drawn from [T / 1.0, T / 0.8]) and cropping T x T.

Label and instance maps always go NEAREST from their original size to the image's final size,
then get the same crop and flip. The functions here generalise the square target T x T to any
(H, W) and reduce exactly to the official steps for square targets and for Cityscapes.
"""

from __future__ import annotations

import errno
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

LABEL_MODES = ("L", "P", "I;16", "I;16B", "I;16L", "I")


class UnreadableImageError(ValueError):
    """An image file that is empty, truncated or in no image format PIL reads."""


def load_image_file(path: str | Path, what: str = "image") -> Image.Image:
    """The image at ``path``, fully decoded (so a truncated file fails here, naming it, not later).

    Raises:
        FileNotFoundError, IsADirectoryError: no file at ``path`` / a folder there (the path is the OSError's
            ``filename``).
        UnreadableImageError (a ValueError): an empty, truncated or non-image file.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, f"the {what} must be an image file, not a folder", str(path))
    if not path.is_file():
        raise FileNotFoundError(errno.ENOENT, f"no {what} file", str(path))
    if path.stat().st_size == 0:
        raise UnreadableImageError(f"{what} {path} is an empty file")
    try:
        with Image.open(path) as image:
            image.load()
            return image
    except (OSError, SyntaxError, Image.DecompressionBombError) as err:
        # PIL reports a foreign format as UnidentifiedImageError and a cut-off file as OSError("truncated")
        reason = f"{what} {path} is not a readable image (truncated or another format)"
        raise UnreadableImageError(f"{reason}: {err}") from err


def read_image(path: Path) -> Image.Image:
    """An image file as 8-bit RGB."""
    return load_image_file(path).convert("RGB")


def read_id_map(path: Path) -> np.ndarray:
    """A single-channel PNG of integer ids (8, 16 or 32 bit) as int64 (H, W), values as stored.

    16-bit maps (Cityscapes ``*_instanceIds.png``) keep all 16 bits: nothing goes through an
    8-bit conversion here.
    """
    image = load_image_file(path, "id map")
    if image.mode not in LABEL_MODES:
        raise ValueError(
            f"id map {path} has image mode {image.mode!r}; expected a single-channel PNG of "
            f"integer ids (one of {LABEL_MODES}), e.g. the gray *_labelIds.png, not a colour map"
        )
    return np.asarray(image).astype(np.int64)


def _box_halve(image: Image.Image, short_side: int) -> Image.Image:
    """Halve with a BOX filter while the short side is at least ``2 * short_side``."""
    while min(image.size) >= 2 * short_side:
        image = image.resize((image.width // 2, image.height // 2), resample=Image.BOX)
    return image


def _nearest(ids: np.ndarray, size_wh: tuple[int, int]) -> np.ndarray:
    """NEAREST resize of an int64 id map (via PIL's 32-bit mode, as exact as PIL's 8-bit one)."""
    if ids.shape[::-1] == size_wh:
        return ids
    resized = Image.fromarray(ids.astype(np.int32)).resize(size_wh, resample=Image.NEAREST)
    return np.asarray(resized).astype(np.int64)


@dataclass(frozen=True)
class Preprocessing:
    """How a loader turns files into training or test arrays.

    ``size``: target (H, W) or None for the native size. ``keep_aspect``: Cityscapes-style resize
    (``size`` must have the image's aspect). ``random_crop``: the official training crop
    (covering ``crop_fraction`` of the short side). ``flip``: random horizontal flip (p = 0.5).
    """

    size: tuple[int, int] | None = None
    keep_aspect: bool = False
    random_crop: bool = False
    flip: bool = False
    crop_fraction: tuple[float, float] = (0.8, 1.0)

    def __post_init__(self) -> None:
        if self.size is not None:
            if len(self.size) != 2 or any(not isinstance(s, int) or isinstance(s, bool) or s < 1 for s in self.size):
                raise ValueError(f"size must be (height, width) with positive ints or None, got {self.size!r}")
        low, high = self.crop_fraction
        if not 0 < low <= high <= 1:
            raise ValueError(f"crop_fraction must satisfy 0 < low <= high <= 1, got {self.crop_fraction}")
        if self.keep_aspect and self.random_crop:
            raise ValueError("keep_aspect (Cityscapes) and random_crop (COCO-Stuff/ADE20K) exclude each other")

    def __call__(
        self,
        image: Image.Image,
        labels: np.ndarray,
        instances: np.ndarray | None,
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """uint8 (H, W, 3) image, int64 (H, W) labels and instances (or None), resized and augmented."""
        if labels.shape != (image.height, image.width):
            raise ValueError(
                f"label map of shape {labels.shape} does not match its {image.height} x {image.width} image"
            )
        if instances is not None and instances.shape != labels.shape:
            raise ValueError(f"instance map of shape {instances.shape} does not match labels {labels.shape}")
        target = self.size or (image.height, image.width)
        if self.random_crop:
            resized, crop = self._random_crop_size(image, target, rng)
        else:
            resized, crop = self._resize(image, target), None
        maps = [_nearest(m, resized.size) if m is not None else None for m in (labels, instances)]
        pixels = np.asarray(resized)
        if crop is not None:
            window = (slice(crop[0], crop[0] + target[0]), slice(crop[1], crop[1] + target[1]))
            pixels = pixels[window]
            maps = [m[window] if m is not None else None for m in maps]
        if self.flip and rng.random() < 0.5:
            pixels = pixels[:, ::-1]
            maps = [m[:, ::-1] if m is not None else None for m in maps]
        copies = [np.ascontiguousarray(m) if m is not None else None for m in maps]
        return np.ascontiguousarray(pixels), copies[0], copies[1]

    def _resize(self, image: Image.Image, target: tuple[int, int]) -> Image.Image:
        height, width = target
        if (image.height, image.width) == target:
            return image
        if self.keep_aspect:
            short = min(height, width)
            image = _box_halve(image, short)
            scale = short / min(image.size)
            out = image.resize(tuple(round(x * scale) for x in image.size), resample=Image.BICUBIC)
            if (out.height, out.width) != target:
                raise ValueError(
                    f"size {target} does not keep the aspect of a {image.height} x {image.width} image "
                    f"(short side {short} gives {out.height} x {out.width}); pass size="
                    f"{(out.height, out.width)} or size=None"
                )
            return out
        while image.height >= 2 * height and image.width >= 2 * width:
            image = image.resize((image.width // 2, image.height // 2), resample=Image.BOX)
        return image.resize((width, height), resample=Image.BICUBIC)

    def _random_crop_size(
        self, image: Image.Image, target: tuple[int, int], rng: np.random.Generator
    ) -> tuple[Image.Image, tuple[int, int]]:
        """Resize so the target covers a random 80-100 % of the short side; pick the crop corner."""
        height, width = target
        side = min(height, width)
        low, high = self.crop_fraction
        drawn = int(rng.integers(math.ceil(side / high), math.ceil(side / low) + 1))
        cover = max(height / image.height, width / image.width)
        short = round(min(image.size) * cover * drawn / side)
        image = _box_halve(image, short)
        scale = short / min(image.size)
        size_wh = (max(width, round(image.width * scale)), max(height, round(image.height * scale)))
        image = image.resize(size_wh, resample=Image.BICUBIC)
        top = int(rng.integers(0, image.height - height + 1))
        left = int(rng.integers(0, image.width - width + 1))
        return image, (top, left)
