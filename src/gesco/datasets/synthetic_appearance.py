"""Appearance of the synthetic street scenes: colours, smooth textures and lighting.

Every material slot of a :class:`~gesco.datasets.synthetic_canvas.Canvas` gets a colour drawn for
its kind (a car body, a wall, foliage, ...) and the kind's texture: a mix of smooth noise fields at
three scales (about 3, 10 and 32 px at 128 px width), never per-pixel grain. Lighting is one sun
(or overcast sky) per scene: surfaces facing the sun are brighter, the other side darker, and the
ground can carry a cast shadow. Colour ranges are chosen so each class stays recognisable from its
colour and texture statistics alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from gesco.datasets.synthetic_canvas import FACES_LEFT, FACES_RIGHT, FRONTAL, GROUND, Camera, Canvas

NOISE_CELLS_PX = (3.0, 10.0, 32.0)  # fine, mid, coarse, at 128 px image width


def _bspline_taps(n: int, cell_px: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Cubic B-spline upsampling of a random grid to ``n`` samples: 4 taps per output sample.

    Returns grid indices (n, 4), weights (n, 4) scaled to unit norm per sample (an i.i.d. standard
    normal grid then gives unit variance everywhere), and the grid length.
    """
    grid = math.ceil(n / cell_px) + 4
    position = (np.arange(n) + 0.5) / cell_px + 1.5
    index = np.floor(position).astype(np.int64)[:, None] + np.arange(-1, 3)[None, :]
    d = np.abs(position[:, None] - index)
    weights = np.where(d < 1, 2 / 3 - d**2 + d**3 / 2, np.where(d < 2, (2 - d) ** 3 / 6, 0.0))
    weights /= np.linalg.norm(weights, axis=1, keepdims=True)
    return index, weights.astype(np.float32), grid


class NoiseBank:
    """Smooth standard-normal noise fields at the three texture scales for one image size.

    Upsampling uses explicit 4-tap gathers rather than matrix products: BLAS threads fighting over
    a busy CPU made small matrix products many times slower than this.
    """

    def __init__(self, height: int, width: int) -> None:
        scale = width / 128
        self._taps = [(_bspline_taps(height, c * scale), _bspline_taps(width, c * scale)) for c in NOISE_CELLS_PX]

    def field(self, level: int, rng: np.random.Generator) -> np.ndarray:
        """A (H, W) float32 field, smooth at the level's scale, zero mean and unit variance."""
        (row_index, row_weight, rows), (col_index, col_weight, cols) = self._taps[level]
        grid = rng.standard_normal((rows, cols), dtype=np.float32)
        wide = sum(col_weight[None, :, j] * grid[:, col_index[:, j]] for j in range(4))
        return sum(row_weight[:, j, None] * wide[row_index[:, j]] for j in range(4))


Sampler = Callable[[np.random.Generator, int], np.ndarray]  # (rng, n) -> float32 (n, 3) colours


def _jitter(rgb: tuple[float, float, float], amount: float, rng: np.random.Generator) -> np.ndarray:
    return np.asarray(rgb, np.float32) + rng.uniform(-amount, amount, 3).astype(np.float32)


def _pick(palette: list[tuple[int, int, int]], amount: float) -> Sampler:
    """Colours drawn from ``palette``, each channel jittered by up to ``amount``."""
    colours = np.asarray(palette, np.float32)

    def sample(rng: np.random.Generator, n: int) -> np.ndarray:
        jitter = rng.uniform(-amount, amount, (n, 3)).astype(np.float32)
        return colours[rng.integers(len(colours), size=n)] + jitter

    return sample


def _grey(low: float, high: float, tint: float) -> Sampler:
    """Greys of level ``low..high`` with a slight colour cast of up to ``tint`` per channel."""

    def sample(rng: np.random.Generator, n: int) -> np.ndarray:
        level = rng.uniform(low, high, (n, 1))
        return (level + rng.uniform(-tint, tint, (n, 3))).astype(np.float32)

    return sample


def _saturated(rng: np.random.Generator, n: int) -> np.ndarray:
    """Clothing colours: any hue, medium saturation and value."""
    hue, sat, val = rng.uniform(0, 6, (n, 1)), rng.uniform(0.3, 0.85, (n, 1)), rng.uniform(70, 220, (n, 1))
    channel = np.clip(np.abs((hue - np.array([3, 1, 5])) % 6 - 3) - 1, 0, 1)  # hue -> rgb
    return (val * (1 - sat + sat * channel)).astype(np.float32)


# kind -> (colour sampler, texture amplitudes of the fine / mid / coarse noise, colour-noise amplitude)
MATERIALS: dict[str, tuple[Sampler, tuple[float, float, float], float]] = {
    "road": (_grey(62, 100, 5), (0.035, 0.05, 0.07), 0.02),
    "lane_marking": (_pick([(228, 228, 222), (236, 232, 215)], 10), (0.02, 0.03, 0.0), 0.0),
    "curb": (_grey(165, 200, 4), (0.02, 0.03, 0.03), 0.0),
    "sidewalk": (
        _pick([(160, 158, 154), (182, 168, 146), (170, 134, 122), (150, 146, 150)], 12),
        (0.04, 0.05, 0.05),
        0.02,
    ),
    "terrain": (_pick([(126, 150, 72), (146, 156, 88), (158, 146, 98), (112, 140, 80)], 12), (0.06, 0.09, 0.09), 0.05),
    "foliage": (
        _pick([(52, 96, 34), (66, 112, 40), (44, 84, 42), (78, 118, 46), (58, 90, 30)], 10),
        (0.16, 0.16, 0.12),
        0.06,
    ),
    "trunk": (_pick([(88, 66, 46), (70, 58, 48)], 10), (0.05, 0.05, 0.0), 0.0),
    "wall": (
        _pick(
            [
                (206, 186, 150),
                (226, 214, 188),
                (152, 80, 60),
                (138, 136, 132),
                (192, 124, 84),
                (218, 198, 132),
                (198, 160, 158),
                (104, 100, 104),
                (176, 186, 196),
            ],
            14,
        ),
        (0.025, 0.04, 0.05),
        0.015,
    ),
    "window": (_pick([(46, 58, 74), (60, 72, 92), (38, 44, 52), (70, 88, 104)], 8), (0.03, 0.12, 0.1), 0.03),
    "shop_front": (_pick([(50, 48, 46), (74, 66, 58), (40, 52, 60)], 8), (0.04, 0.1, 0.05), 0.02),
    "roof_trim": (_grey(70, 120, 6), (0.03, 0.03, 0.0), 0.0),
    "pole": (_pick([(128, 132, 136), (104, 108, 112), (150, 152, 150), (56, 68, 62)], 8), (0.02, 0.03, 0.0), 0.0),
    "sign_red": (_pick([(200, 34, 38)], 14), (0.02, 0.0, 0.0), 0.0),
    "sign_white": (_pick([(238, 238, 236)], 8), (0.02, 0.0, 0.0), 0.0),
    "sign_blue": (_pick([(28, 78, 176)], 14), (0.02, 0.0, 0.0), 0.0),
    "sign_yellow": (_pick([(242, 196, 34)], 10), (0.02, 0.0, 0.0), 0.0),
    "sign_dark": (_pick([(30, 30, 34)], 6), (0.0, 0.0, 0.0), 0.0),
    "light_housing": (_pick([(34, 36, 38), (44, 46, 40), (198, 168, 40)], 6), (0.02, 0.02, 0.0), 0.0),
    "lamp_off": (_pick([(70, 70, 62)], 6), (0.0, 0.0, 0.0), 0.0),
    "lamp_red": (_pick([(255, 52, 40)], 6), (0.0, 0.0, 0.0), 0.0),
    "lamp_amber": (_pick([(255, 178, 36)], 6), (0.0, 0.0, 0.0), 0.0),
    "lamp_green": (_pick([(70, 235, 140)], 6), (0.0, 0.0, 0.0), 0.0),
    "car_body": (
        _pick(
            [
                (228, 228, 226),
                (172, 174, 178),
                (36, 36, 40),
                (34, 46, 92),
                (170, 28, 30),
                (44, 84, 164),
                (40, 92, 62),
                (222, 182, 44),
                (190, 170, 134),
                (112, 112, 118),
            ],
            12,
        ),
        (0.015, 0.04, 0.0),
        0.0,
    ),
    "car_glass": (_pick([(36, 44, 56), (52, 62, 76)], 8), (0.02, 0.12, 0.0), 0.0),
    "tyre": (_grey(18, 32, 2), (0.02, 0.0, 0.0), 0.0),
    "tail_light": (_pick([(214, 30, 30)], 10), (0.0, 0.0, 0.0), 0.0),
    "head_light": (_pick([(240, 236, 210)], 8), (0.0, 0.0, 0.0), 0.0),
    "plate": (_pick([(232, 232, 226), (236, 214, 60)], 6), (0.0, 0.0, 0.0), 0.0),
    "shirt": (_saturated, (0.03, 0.05, 0.0), 0.0),
    "trousers": (
        _pick([(36, 44, 74), (30, 30, 34), (96, 94, 92), (176, 156, 120), (60, 74, 112)], 10),
        (0.03, 0.04, 0.0),
        0.0,
    ),
    "shoes": (_grey(20, 60, 4), (0.0, 0.0, 0.0), 0.0),
    "skin": (_pick([(232, 190, 160), (204, 152, 112), (152, 102, 72), (104, 72, 52)], 8), (0.0, 0.0, 0.0), 0.0),
    "helmet": (
        _pick([(236, 236, 232), (30, 30, 34), (200, 40, 36), (40, 90, 180), (240, 200, 40)], 10),
        (0.0, 0.0, 0.0),
        0.0,
    ),
    "bike_frame": (_saturated, (0.02, 0.0, 0.0), 0.0),
    "hair": (_pick([(30, 24, 20), (70, 50, 30), (186, 160, 110), (120, 120, 120)], 8), (0.0, 0.0, 0.0), 0.0),
}


def _sky_rows(canvas: Canvas, cam: Camera, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Per-row sky colour (H, 3), blue above fading to pale at the horizon; and cloud cover 0..1."""
    if rng.random() < 0.65:  # clear
        top = _jitter((72, 128, 200), 14, rng)
        low = _jitter((176, 206, 232), 10, rng)
        cover = rng.uniform(0.0, 0.6)
    else:  # overcast
        grey = rng.uniform(176, 214)
        top, low = _jitter((grey - 12, grey - 4, grey + 6), 6, rng), _jitter((grey + 18,) * 3, 6, rng)
        cover = rng.uniform(0.0, 0.3)
    t = np.clip((np.arange(canvas.height) + 0.5) / max(cam.horizon, 1.0), 0, 1)[:, None] ** 1.3
    return (top * (1 - t) + low * t).astype(np.float32), cover


def _material_table(
    canvas: Canvas, rng: np.random.Generator, added_rng: np.random.Generator | None
) -> tuple[np.ndarray, np.ndarray]:
    """Colour (n, 3) and texture amplitudes (n, 4: fine, mid, coarse, colour drift) of every slot; the slots in
    ``canvas.added_materials`` take their colours from ``added_rng``."""
    kinds = canvas.material_kinds
    colours = np.zeros((len(kinds), 3), np.float32)
    amplitudes = np.zeros((len(kinds), 4), np.float32)
    slots_of_kind: dict[str, list[int]] = {}
    added_of_kind: dict[str, list[int]] = {}
    for i, kind in enumerate(kinds[1:], start=1):  # slot 0 is the sky, coloured per row in render()
        texture, chroma = MATERIALS[kind][1:]
        amplitudes[i] = (*texture, chroma)
        if canvas.material_shade_of[i] is None:
            (added_of_kind if i in canvas.added_materials else slots_of_kind).setdefault(kind, []).append(i)
    for kind, slots in slots_of_kind.items():
        colours[slots] = MATERIALS[kind][0](rng, len(slots))
    if added_of_kind and added_rng is None:
        raise ValueError("the canvas has slots of optional objects: render it with their own added_rng")
    for kind, slots in added_of_kind.items():
        colours[slots] = MATERIALS[kind][0](added_rng, len(slots))
    for i, shade_of in enumerate(canvas.material_shade_of):
        if shade_of is not None:
            colours[i] = colours[shade_of[0]] * shade_of[1]
    return colours, amplitudes


def _lighting(canvas: Canvas, rng: np.random.Generator) -> np.ndarray:
    """Per-pixel light (H, W): sun side brighter, far side and cast shadows darker, sky untouched."""
    facing_gain = np.ones(5, np.float32)  # SKYWARD stays 1: the sky keeps its own colours
    if rng.random() < 0.6:  # sunny
        sun = 1 if rng.random() < 0.5 else -1  # sun towards +x (right) or -x
        lit, dark = rng.uniform(1.0, 1.12), rng.uniform(0.6, 0.78)
        facing_gain[FACES_RIGHT], facing_gain[FACES_LEFT] = (lit, dark) if sun < 0 else (dark, lit)
        facing_gain[FRONTAL] = rng.uniform(0.85, 0.95)
        gain = facing_gain[canvas.facing]
        shadow = (canvas.facing == GROUND) & (sun * canvas.ground_x > rng.uniform(-3.0, 9.0))
        gain[shadow] *= np.float32(rng.uniform(0.55, 0.72))
    else:  # overcast
        facing_gain[[FACES_LEFT, FACES_RIGHT, FRONTAL]] = rng.uniform(0.82, 0.95, 3)
        gain = facing_gain[canvas.facing]
    return gain


def render(
    canvas: Canvas,
    cam: Camera,
    noise: NoiseBank,
    rng: np.random.Generator,
    added_rng: np.random.Generator | None = None,
) -> np.ndarray:
    """The RGB image of a drawn canvas: uint8 (H, W, 3); ``added_rng`` colours the optional objects' slots."""
    colours, amplitudes = _material_table(canvas, rng, added_rng)
    sky_rows, cloud_cover = _sky_rows(canvas, cam, rng)
    fine, mid, coarse, drift, clouds = (noise.field(level, rng) for level in (0, 1, 2, 1, 2))

    material = canvas.material
    amp = amplitudes[material]  # (H, W, 4)
    light = _lighting(canvas, rng)
    light *= 1 + amp[..., 0] * fine + amp[..., 1] * mid + amp[..., 2] * coarse
    image = colours[material]
    image[..., 1] *= 1 + amp[..., 3] * drift  # a slow green/magenta drift on grass, foliage, walls
    sky_rows_index, sky_cols_index = np.nonzero(material == 0)
    cloud = (np.clip((clouds[sky_rows_index, sky_cols_index] - 0.4) * 1.5, 0, 1) * cloud_cover)[:, None]
    image[sky_rows_index, sky_cols_index] = sky_rows[sky_rows_index] * (1 - cloud) + np.float32(236) * cloud
    exposure = (rng.uniform(0.86, 1.1) * (1 + rng.normal(0, 0.03, 3))).astype(np.float32)
    image *= light[..., None]
    image *= exposure
    image += 0.5
    return np.clip(image, 0, 255, out=image).astype(np.uint8)
