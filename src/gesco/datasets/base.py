"""What every gesco data set returns (:class:`Sample`, batched by :func:`collate`), and the
shared machinery of the on-disk loaders and writers: sorted file pairing, the loader base class,
atomic image writes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from gesco.datasets.preprocessing import Preprocessing, read_id_map, read_image
from gesco.io import atomic_path


@dataclass(frozen=True)
class Boxes:
    """Ground-truth boxes of one image.

    ``xyxy``: float32 (N, 4) ``(x0, y0, x1, y1)`` in pixel edges: a box covering columns 3..5 has
    x0 = 3, x1 = 6. ``classes``: int64 (N,) label ids (Cityscapes label ids, also its channels).
    ``instances``: int64 (N,) instance ids (``label_id * 1000 + k``).
    """

    xyxy: torch.Tensor
    classes: torch.Tensor
    instances: torch.Tensor

    @staticmethod
    def from_rows(rows: np.ndarray) -> Boxes:
        """From an (N, 6) array of rows ``(x0, y0, x1, y1, class, instance)`` (e.g. ``SyntheticScene.boxes``)."""
        rows = np.asarray(rows)
        if rows.ndim != 2 or rows.shape[1] != 6:
            raise ValueError(f"box rows must have shape (N, 6): x0, y0, x1, y1, class, instance; got {rows.shape}")
        return Boxes(
            xyxy=torch.from_numpy(rows[:, :4].astype(np.float32)),
            classes=torch.from_numpy(rows[:, 4].astype(np.int64)),
            instances=torch.from_numpy(rows[:, 5].astype(np.int64)),
        )


@dataclass(frozen=True)
class Sample:
    """One image with its semantic map.

    ``image``: float32 (3, H, W) in [-1, 1] (``x / 127.5 - 1`` of the 8-bit RGB image).
    ``labels``: int64 (H, W) in the data set's channel index space (Cityscapes: label ids 0..33,
    license plate -> 34; COCO-Stuff: 0..181, unlabeled -> 182; ADE20K: 0..149, "other" -> 150).
    ``instances``: int64 (H, W) raw instance ids as stored on disk (e.g. Cityscapes
    ``label_id * 1000 + k``), or None where the data set has no instance maps.
    ``name``: the file stem (or synthetic scene name) the sample came from.
    ``depth``: float32 (H, W) metric depth (m; 0 where unknown), or None where the data set has none.
    ``boxes``: the object boxes (:class:`Boxes`), or None where the data set has none.
    """

    image: torch.Tensor
    labels: torch.Tensor
    instances: torch.Tensor | None
    name: str
    depth: torch.Tensor | None = None
    boxes: Boxes | None = None


@dataclass(frozen=True)
class Batch:
    """Stacked samples: ``image`` (B, 3, H, W), ``labels`` (B, H, W), ``instances`` (B, H, W) or None,
    ``depth`` (B, H, W) or None, ``boxes`` one :class:`Boxes` per sample or None."""

    image: torch.Tensor
    labels: torch.Tensor
    instances: torch.Tensor | None
    names: tuple[str, ...]
    depth: torch.Tensor | None = None
    boxes: tuple[Boxes, ...] | None = None


def collate(samples: list[Sample]) -> Batch:
    """DataLoader ``collate_fn``: stack samples; ``instances``, ``depth`` and ``boxes`` are None if any sample
    lacks them."""
    if not samples:
        raise ValueError("cannot collate an empty list of samples")
    instances = None
    if all(s.instances is not None for s in samples):
        instances = torch.stack([s.instances for s in samples])
    return Batch(
        image=torch.stack([s.image for s in samples]),
        labels=torch.stack([s.labels for s in samples]),
        instances=instances,
        names=tuple(s.name for s in samples),
        depth=torch.stack([s.depth for s in samples]) if all(s.depth is not None for s in samples) else None,
        boxes=tuple(s.boxes for s in samples) if all(s.boxes is not None for s in samples) else None,
    )


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) RGB -> float32 (3, H, W) in [-1, 1] as ``x / 127.5 - 1``."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a uint8 (H, W, 3) RGB image, got {image.dtype} {image.shape}")
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float() / 127.5 - 1


def tensor_to_image(image: torch.Tensor) -> np.ndarray:
    """float (3, H, W) in [-1, 1] -> uint8 (H, W, 3), rounding to the nearest level."""
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"expected a (3, H, W) image tensor, got shape {tuple(image.shape)}")
    levels = ((image.detach().cpu().float() + 1) * 127.5).round().clamp(0, 255)
    return levels.to(torch.uint8).permute(1, 2, 0).numpy()


@dataclass(frozen=True)
class FileTriple:
    """An image file, its label map and (where the data set has them) its instance map."""

    image: Path
    labels: Path
    instances: Path | None
    name: str


def list_files(folder: Path, suffix: str | tuple[str, ...]) -> list[Path]:
    """Files under ``folder`` (recursively) whose names end with ``suffix`` (case-insensitive).

    Sorted level by level, as the official loader lists them, so parallel trees (images and
    labels) line up.
    """
    if not folder.is_dir():
        raise FileNotFoundError(f"no folder {folder}: check the data set root and split")
    suffixes = tuple(s.lower() for s in ((suffix,) if isinstance(suffix, str) else suffix))
    found = (p for p in folder.rglob("*") if p.name.lower().endswith(suffixes) and p.is_file())
    return sorted(found, key=lambda p: p.relative_to(folder).parts)


def _strip(path: Path, suffixes: tuple[str, ...]) -> str:
    for suffix in suffixes:
        if path.name.lower().endswith(suffix.lower()):
            return path.name[: len(path.name) - len(suffix)]
    return path.stem


def pair_sorted(
    images: tuple[list[Path], tuple[str, ...]],
    labels: tuple[list[Path], tuple[str, ...]],
    instances: tuple[list[Path], tuple[str, ...]] | None = None,
) -> list[FileTriple]:
    """Match the i-th image with the i-th label (and instance) map of each sorted list.

    Each argument is ``(sorted files, name suffixes)``; stripping the suffix gives the sample name,
    which must agree across the lists (so a missing file fails loudly instead of shifting pairs).
    """
    groups = [g for g in (images, labels, instances) if g is not None]
    counts = [len(files) for files, _ in groups]
    if len(set(counts)) != 1:
        where = ", ".join(f"{n} in {files[0].parent if files else '(none)'}" for n, (files, _) in zip(counts, groups))
        raise ValueError(
            f"file counts differ (images, labels[, instances]): {counts} ({where}); every image needs "
            "exactly one label map (and instance map): add the missing files or remove the extra ones"
        )
    triples = []
    for i, image in enumerate(images[0]):
        names = [_strip(files[i], suffixes) for files, suffixes in groups]
        if len(set(names)) != 1:
            paths = [str(files[i]) for files, _ in groups]
            raise ValueError(f"sorted files do not pair up at position {i}: {paths} have names {names}")
        triples.append(FileTriple(image, labels[0][i], instances[0][i] if instances else None, names[0]))
    return triples


class ImageLabelDataset(Dataset):
    """Base of the on-disk loaders: read a :class:`FileTriple`, map ids to channels, preprocess.

    Augmentation randomness comes from ``numpy.random.default_rng([seed, epoch, index])``: the
    same item in the same epoch is always augmented the same way, in any DataLoader worker.
    Subclasses set ``num_classes`` and implement :meth:`to_channels`.
    """

    num_classes: int

    def __init__(self, files: list[FileTriple], preprocessing: Preprocessing, *, seed: int = 0) -> None:
        if not files:
            raise ValueError(f"{type(self).__name__}: no samples found; check the root folder and split")
        self.files = files
        self.preprocessing = preprocessing
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Draw new crops and flips: call once per epoch."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.files)

    def to_channels(self, ids: np.ndarray, path: Path) -> np.ndarray:
        """Label ids as stored in ``path`` -> channel indices 0..num_classes-1 (int64)."""
        raise NotImplementedError

    def __getitem__(self, index: int) -> Sample:
        files = self.files[index]
        rng = np.random.default_rng([self.seed, self.epoch, index % len(self.files)])
        labels = self.to_channels(read_id_map(files.labels), files.labels)
        instances = read_id_map(files.instances) if files.instances is not None else None
        pixels, labels, instances = self.preprocessing(read_image(files.image), labels, instances, rng)
        return Sample(
            image=image_to_tensor(pixels),
            labels=torch.from_numpy(labels),
            instances=torch.from_numpy(instances) if instances is not None else None,
            name=files.name,
        )


def save_image_file(path: Path, array: np.ndarray, *, quality: int = 95) -> None:
    """Write an RGB image (uint8 (H, W, 3)) or id map (uint8 / uint16 (H, W)) atomically.

    The format follows the suffix: ``.png`` (lossless; uint16 maps stay 16-bit) or ``.jpg``
    (``quality``, no chroma subsampling).
    """
    image = Image.fromarray(array)
    fmt = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"cannot tell the image format of {path}: use a .png or .jpg name")
    options = {"quality": quality, "subsampling": 0} if fmt == "JPEG" else {}
    with atomic_path(path) as tmp:
        image.save(tmp, format=fmt, **options)


def remap_labels(labels: np.ndarray, mapping: dict[int, int], *, target: str, index: int) -> np.ndarray:
    """Map the label ids of scene ``index`` through ``mapping`` to uint8 ids of data set ``target``."""
    lookup = np.full(256, -1, np.int64)
    for source, mapped in mapping.items():
        lookup[source] = mapped
    out = lookup[labels]
    if (out < 0).any():
        missing = sorted(set(labels[out < 0].tolist()))
        raise ValueError(
            f"scene {index} holds label ids {missing} with no {target} class; mapped ids: {sorted(mapping)}"
        )
    return out.astype(np.uint8)
