"""Cityscapes' depth and object files: disparity PNGs with their camera JSON, and gtFine polygons.

Layout, beside ``leftImg8bit`` and ``gtFine`` (same ``{city}_{seq:06d}_{frame:06d}`` stems)::

    disparity/{split}/{city}/{stem}_disparity.png      16 bit: p > 0 is disparity (p - 1) / 256 px, p = 0 invalid
    camera/{split}/{city}/{stem}_camera.json           {"extrinsic": {"baseline", ...},
                                                        "intrinsic": {"fx", "fy", "u0", "v0"}}
    gtFine/{split}/{city}/{stem}_gtFine_polygons.json  {"imgHeight", "imgWidth", "objects": [{"label", "polygon"}]}

Depth (m) is ``baseline * fx / disparity`` (the rectified stereo pair's baseline in metres, fx in pixels).
Depth maps here are float32 (H, W) metres with 0 where the depth is unknown.

Polygon vertices are pixel indices (a vertex at ``x`` lies on column ``x``), so the box of a polygon in
pixel edges is ``(min x, min y, max x + 1, max y + 1)``, clipped to the image. Objects are numbered
``label_id * 1000 + k`` per class in file order, as cityscapesscripts' ``json2instanceImg`` numbers them;
crowd regions (``cargroup``, ``persongroup``, ...) and deleted objects give no box.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from cityscapesscripts.helpers.labels import labels as cityscapes_labels

from gesco.datasets.base import save_image_file
from gesco.datasets.synthetic import SyntheticScene
from gesco.datasets.synthetic_canvas import CAMERA_HEIGHT_M, POLE, TRAFFIC_LIGHT, TRAFFIC_SIGN, Camera
from gesco.io import write_json

DISPARITY_SUFFIX = "_disparity.png"
CAMERA_SUFFIX = "_camera.json"
POLYGONS_SUFFIX = "_gtFine_polygons.json"
#: Label ids that get boxes: Cityscapes' instance classes (person .. bicycle) and poles, lights and signs.
BOX_LABEL_IDS = tuple(
    sorted({lab.id for lab in cityscapes_labels if lab.hasInstances} | {POLE, TRAFFIC_LIGHT, TRAFFIC_SIGN})
)
#: Disparity of 1 m in the virtual stereo rig of synthetic scenes (px): baseline = this / fx. With 1/256 px
#: steps in 16 bits it spans 0.5 m .. 32 km, and the relative step at 400 m is about 1 % (Cityscapes' own
#: 0.21 m baseline would leave a 128 px wide scene a few steps for its whole far half).
SYNTHETIC_DISPARITY_AT_1M = 128.0

_NAME = {lab.id: lab.name for lab in cityscapes_labels if lab.id >= 0}
_ID = {lab.name: lab.id for lab in cityscapes_labels}


def depth_to_disparity_png(depth: np.ndarray, baseline_fx: float) -> np.ndarray:
    """float (H, W) depth (m; <= 0 or not finite: unknown) -> uint16 Cityscapes disparity values.

    ``p = round(256 * baseline_fx / depth) + 1``, clipped to 2 .. 65535 so every known depth stays known
    (p = 1 would mean disparity 0, an infinite depth); unknown depths become 0.
    """
    depth = np.asarray(depth, np.float64)
    known = np.isfinite(depth) & (depth > 0)
    disparity = np.divide(baseline_fx, depth, out=np.zeros_like(depth), where=known)
    values = np.clip(np.round(disparity * 256) + 1, 2, np.iinfo(np.uint16).max)
    return np.where(known, values, 0).astype(np.uint16)


def disparity_png_to_depth(values: np.ndarray, baseline_fx: float) -> np.ndarray:
    """Cityscapes disparity values (H, W) -> float32 depth (m), 0 where p = 0 (invalid) or p = 1 (no disparity)."""
    values = np.asarray(values, np.float64)
    disparity = np.where(values > 0, (values - 1) / 256, 0.0)
    return np.divide(baseline_fx, disparity, out=np.zeros_like(disparity), where=disparity > 0).astype(np.float32)


def camera_json(camera: Camera, baseline_fx: float = SYNTHETIC_DISPARITY_AT_1M) -> dict:
    """The Cityscapes camera file of a synthetic camera: level (no pitch, roll or yaw) at its height.

    ``u0``, ``v0`` are in Cityscapes' pixel-index coordinates (pixel centres at integers), half a pixel
    left of and above the synthetic camera's edge coordinates.
    """
    return {
        "extrinsic": {
            "baseline": baseline_fx / camera.focal,
            "pitch": 0.0,
            "roll": 0.0,
            "x": 0.0,
            "y": 0.0,
            "yaw": 0.0,
            "z": CAMERA_HEIGHT_M,
        },
        "intrinsic": {"fx": camera.focal, "fy": camera.focal, "u0": camera.center_x - 0.5, "v0": camera.horizon - 0.5},
    }


def read_baseline_fx(path: Path) -> float:
    """``baseline * fx`` (m px) from a Cityscapes camera file."""
    try:
        camera = json.loads(Path(path).read_text())
        baseline_fx = float(camera["extrinsic"]["baseline"]) * float(camera["intrinsic"]["fx"])
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(
            f"camera file {path} is not a Cityscapes camera JSON with extrinsic.baseline and intrinsic.fx: {err!r}"
        ) from err
    if not np.isfinite(baseline_fx) or baseline_fx <= 0:
        raise ValueError(f"camera file {path} gives baseline * fx = {baseline_fx}; both must be positive")
    return baseline_fx


def polygons_json(boxes: np.ndarray, height: int, width: int) -> dict:
    """A gtFine polygons file holding each box (rows ``x0, y0, x1, y1, label id, ...``) as a rectangle.

    Boxes are listed in the given order, so the k-th box of a class reads back as instance k.
    """
    objects = []
    for x0, y0, x1, y1, label in np.asarray(boxes)[:, :5].tolist():
        if label not in _NAME:
            raise ValueError(f"box label id {label} is no Cityscapes label id")
        corners = [[x0, y0], [x1 - 1, y0], [x1 - 1, y1 - 1], [x0, y1 - 1]]
        objects.append({"label": _NAME[label], "polygon": corners})
    return {"imgHeight": int(height), "imgWidth": int(width), "objects": objects}


def read_polygon_boxes(path: Path) -> tuple[np.ndarray, tuple[int, int]]:
    """Boxes of a gtFine polygons file: int64 (N, 6) rows ``(x0, y0, x1, y1, label id, instance id)`` of the
    :data:`BOX_LABEL_IDS` objects, in file order, and the annotated image's (height, width)."""
    try:
        data = json.loads(Path(path).read_text())
        height, width = int(data["imgHeight"]), int(data["imgWidth"])
        objects = list(data["objects"])
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path} is not a gtFine polygons JSON (imgHeight, imgWidth, objects): {err!r}") from err
    rows, counts = [], {}
    for index, obj in enumerate(objects):
        name = obj.get("label") if isinstance(obj, dict) else None
        if isinstance(name, str) and name.endswith("group") and name[: -len("group")] in _ID:
            continue  # a crowd region: no single object to box
        if name not in _ID:
            raise ValueError(f"{path}: object {index} has label {name!r}, which is no Cityscapes label name")
        label = _ID[name]
        if obj.get("deleted") or label not in BOX_LABEL_IDS:
            continue
        polygon = np.asarray(obj.get("polygon"), np.float64)
        if polygon.ndim != 2 or polygon.shape[1] != 2 or len(polygon) == 0:
            raise ValueError(f"{path}: object {index} ({name}) has no polygon of [x, y] vertices")
        x0, y0 = np.clip(np.floor(polygon.min(axis=0)), 0, (width, height))
        x1, y1 = np.clip(np.floor(polygon.max(axis=0)) + 1, 0, (width, height))
        if x1 <= x0 or y1 <= y0:
            continue  # wholly outside the image
        k = counts.get(label, 0)
        counts[label] = k + 1
        rows.append((x0, y0, x1, y1, label, label * 1000 + k))
    return np.asarray(rows, np.int64).reshape(-1, 6), (height, width)


def write_scene_geometry(root: Path, split: str, city: str, stem: str, scene: SyntheticScene) -> None:
    """Write a synthetic scene's disparity and camera files (if it has depth and a camera) and its polygons
    file (if it has boxes) under the Cityscapes ``root``."""
    if scene.depth is not None and scene.camera is not None:
        values = depth_to_disparity_png(scene.depth, SYNTHETIC_DISPARITY_AT_1M)
        save_image_file(root / "disparity" / split / city / f"{stem}{DISPARITY_SUFFIX}", values)
        write_json(root / "camera" / split / city / f"{stem}{CAMERA_SUFFIX}", camera_json(scene.camera))
    if scene.boxes is not None:
        polygons = polygons_json(scene.boxes, *scene.labels.shape)
        write_json(root / "gtFine" / split / city / f"{stem}{POLYGONS_SUFFIX}", polygons)
