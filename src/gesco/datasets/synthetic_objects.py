"""Objects of the synthetic street: cars, persons, cyclists, poles with signs and traffic lights, trees.

Each object holds world geometry only (metres, see :class:`~gesco.datasets.synthetic_canvas.Camera`)
and paints itself onto a :class:`~gesco.datasets.synthetic_canvas.Canvas` inside its bounding
window, opening its own material slots. The layout paints objects far to near, so nearer objects
occlude farther ones. Small parts get a minimum size in pixels (thin structures at least
``canvas.thin_px`` wide) so that a small segmenter can still learn them at 64 x 128.

Depth follows the geometry: flat figures (persons, poles with their signs and lights, trees, a car's
face) lie at the depth of their ground contact point, a car's side recedes column by column. Cars,
persons, riders, bicycles, poles, signs and traffic lights each open a boxed object (:meth:`Canvas.new_box`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gesco.datasets.synthetic_canvas import (
    BICYCLE,
    CAR,
    FACES_LEFT,
    FACES_RIGHT,
    PERSON,
    POLE,
    RIDER,
    TRAFFIC_LIGHT,
    TRAFFIC_SIGN,
    VEGETATION,
    Camera,
    Canvas,
    bar_span,
    pixel_span,
)


def _window(canvas: Canvas, x0: float, x1: float, y0: float, y1: float):
    """Pixel window covering image box [x0, x1) x [y0, y1) and its pixel-centre coordinates."""
    cols = pixel_span(x0, x1, canvas.width)
    rows = pixel_span(y0, y1, canvas.height)
    xc = np.arange(*cols) + 0.5
    yc = np.arange(*rows) + 0.5
    return rows, cols, xc[None, :], yc[:, None]


@dataclass(frozen=True)
class Car:
    """A car as a box: the face toward the camera at depth ``z_m`` plus the visible side."""

    x_m: float
    z_m: float
    width_m: float
    height_m: float
    length_m: float
    seen_from_behind: bool

    @property
    def depth(self) -> float:
        return self.z_m

    def paint(self, canvas: Canvas, cam: Camera) -> None:
        instance = canvas.new_instance(CAR)
        lamp = "tail_light" if self.seen_from_behind else "head_light"
        materials = [canvas.new_material(k) for k in ("car_body", "car_glass", "tyre", lamp, "plate")]
        owner = canvas.new_box(CAR)
        self._paint_side(canvas, cam, materials, instance, owner)
        self._paint_face(canvas, cam, materials, instance, owner)

    def _paint_side(self, canvas: Canvas, cam: Camera, materials: list[int], instance: int, owner: int) -> None:
        w, h, length, z = self.width_m, self.height_m, self.length_m, self.z_m
        side_x = self.x_m - w / 2 if self.x_m > 0 else self.x_m + w / 2
        if abs(side_x) < 0.3:  # straight ahead: the side is edge-on
            return
        xa, xb = sorted((cam.x_of(side_x, z), cam.x_of(side_x, z + length)))
        ytop = cam.y_of(h, z + length)
        rows, cols, xc, yc = _window(canvas, xa, xb, min(ytop, cam.y_of(h, z)), cam.y_of(0.0, z))
        if xc.size == 0 or yc.size == 0:
            return
        zc = cam.focal * side_x / (xc - cam.center_x)  # depth of the side plane in each column
        y_m = cam.height_m - (yc - cam.horizon) * zc / cam.focal
        v = y_m / h
        t = (zc - z) / length  # 0 at the face, 1 at the far end
        slope = 0.12 * (v - 0.62) / 0.38
        body = (v >= 0.2) & (v < 0.62)
        cabin = (v >= 0.62) & (v < 1.0) & (t > 0.2 + slope) & (t < 0.8 - slope)
        glass = cabin & (v > 0.68) & (v < 0.94) & (t > 0.26 + slope) & (t < 0.74 - slope)
        radius = 0.34
        wheel = np.zeros_like(body)
        for tw in (0.17, 0.83):
            wheel |= (zc - (z + tw * length)) ** 2 + (y_m - radius) ** 2 < radius**2
        parts = np.where(body | cabin, 1, 0)
        parts[glass] = 2
        parts[wheel] = 3
        parts[:, ((t < 0) | (t > 1))[0]] = 0
        facing = FACES_LEFT if side_x > 0 else FACES_RIGHT
        canvas.paint(rows, cols, parts, materials, CAR, depth=zc, facing=facing, instance=instance, owner=owner)

    def _paint_face(self, canvas: Canvas, cam: Camera, materials: list[int], instance: int, owner: int) -> None:
        w, h, z = self.width_m, self.height_m, self.z_m
        x0, x1 = cam.x_of(self.x_m - w / 2, z), cam.x_of(self.x_m + w / 2, z)
        bottom = cam.y_of(0.0, z)
        rows, cols, xc, yc = _window(canvas, x0, x1, cam.y_of(h, z), bottom)
        u = (xc - x0) / (x1 - x0)
        du = np.abs(u - 0.5)
        v = (bottom - yc) / (cam.px_per_m(z) * h)
        inset = 0.06 + 0.1 * (v - 0.62) / 0.38
        body = (v >= 0.2) & (v < 0.62)
        cabin = (v >= 0.62) & (v < 1.0) & (du < 0.5 - inset)
        glass = cabin & (v > 0.68) & (v < 0.94) & (du < 0.43 - inset)
        wheel = (v < 0.3) & (du > 0.3)
        lamp = (v > 0.47) & (v < 0.58) & (du > 0.33)
        plate = (v > 0.27) & (v < 0.37) & (du < 0.13)
        parts = np.where(body | cabin, 1, 0)
        parts[glass] = 2
        parts[wheel] = 3
        parts[lamp & body] = 4
        parts[plate & body] = 5
        canvas.paint(rows, cols, parts, materials, CAR, depth=z, instance=instance, owner=owner)


@dataclass(frozen=True)
class Person:
    """A pedestrian facing or leaving the camera, drawn as a flat figure at depth ``z_m``."""

    x_m: float
    z_m: float
    height_m: float
    stride: float  # 0 standing .. 1 mid-step

    @property
    def depth(self) -> float:
        return self.z_m

    def paint(self, canvas: Canvas, cam: Camera) -> None:
        k = cam.px_per_m(self.z_m)
        h = self.height_m
        cx, foot = cam.x_of(self.x_m, self.z_m), cam.y_of(0.0, self.z_m)
        rows, cols, xc, yc = _window(canvas, cx - 0.4 * k - 1, cx + 0.4 * k + 1, foot - h * k, foot)
        u = np.abs(xc - cx) / k  # metres from the body axis
        y_m = (foot - yc) / k
        head_r = max(0.12, 1.0 / k)
        torso_half = max(0.19, 1.0 / k)
        leg_half = max(0.075, 0.55 / k)
        head = u**2 + (y_m - (h - head_r)) ** 2 < head_r**2
        hair = head & (y_m > h - 0.8 * head_r)
        neck_taper = 0.08 * np.clip((y_m - (h - 0.36)) / 0.12, 0.0, 1.0)
        torso = (y_m >= 0.5 * h) & (y_m < h - 2 * head_r + 0.02) & (u < torso_half - neck_taper)
        arms = (y_m >= 0.43 * h) & (y_m < 0.8 * h) & (u >= torso_half) & (u < torso_half + 0.06)
        spread = 0.05 + self.stride * 0.13 * (0.5 * h - y_m) / (0.5 * h)
        legs = (y_m < 0.5 * h) & (y_m >= 0) & (np.abs(u - spread) < leg_half)
        shoes = legs & (y_m < 0.05 * h + 0.5 / k)
        parts = np.zeros(np.broadcast_shapes(u.shape, y_m.shape), np.int64)
        parts[torso | arms] = 1
        parts[legs] = 2
        parts[shoes] = 3
        parts[head] = 4
        parts[hair] = 5
        kinds = ("shirt", "trousers", "shoes", "skin", "hair")
        materials = [canvas.new_material(kind) for kind in kinds]
        instance, owner = canvas.new_instance(PERSON), canvas.new_box(PERSON)
        canvas.paint(rows, cols, parts, materials, PERSON, depth=self.z_m, instance=instance, owner=owner)


def _near_segments(
    u: np.ndarray, y: np.ndarray, segments: list[tuple[tuple[float, float], tuple[float, float]]], half_width: float
) -> np.ndarray:
    """Points ``(u, y)`` (m) closer than ``half_width`` to any of the segments ``((u0, y0), (u1, y1))``."""
    near = np.zeros(np.broadcast_shapes(u.shape, y.shape), bool)
    for (u0, y0), (u1, y1) in segments:
        du, dy = u1 - u0, y1 - y0
        t = np.clip(((u - u0) * du + (y - y0) * dy) / max(du * du + dy * dy, 1e-12), 0.0, 1.0)
        near |= (u - u0 - t * du) ** 2 + (y - y0 - t * dy) ** 2 < half_width**2
    return near


@dataclass(frozen=True)
class Cyclist:
    """A person riding a bicycle, as a flat figure at depth ``z_m``: seen from the side (``heading`` +1 rides to
    the right, -1 to the left) while crossing, or head-on / from behind (``heading`` 0) while riding along the street.

    Cityscapes labels the two apart: the person is a *rider* (class 25), the bicycle a *bicycle* (class 33), each
    an instance with its own box; where the rider covers the bicycle, the pixels are the rider's.
    """

    x_m: float
    z_m: float
    height_m: float  # of the rider standing; seated, the head tops out near 0.95 of it
    heading: int  # -1, 0 or +1
    pedal: float  # crank angle, radians

    def __post_init__(self) -> None:
        if self.heading not in (-1, 0, 1):
            raise ValueError(f"a cyclist's heading is -1 (left), 0 (head-on) or +1 (right), got {self.heading!r}")

    @property
    def depth(self) -> float:
        return self.z_m

    def paint(self, canvas: Canvas, cam: Camera) -> None:
        k = cam.px_per_m(self.z_m)
        cx, foot = cam.x_of(self.x_m, self.z_m), cam.y_of(0.0, self.z_m)
        reach = 1.0 if self.heading else 0.45  # half the figure's width, m
        rows, cols, xc, yc = _window(canvas, cx - reach * k - 1, cx + reach * k + 1, foot - self.height_m * k, foot)
        u = (xc - cx) / k  # metres from the figure's axis, to the right
        y_m = (foot - yc) / k
        thin = 0.5 / k  # half a pixel: every bar stays at least a pixel wide
        bike, rider = self._bicycle(u, y_m, thin), self._rider(u, y_m, thin)
        bike_materials = [canvas.new_material(kind, added=True) for kind in ("bike_frame", "tyre")]
        owner = canvas.new_box(BICYCLE)
        instance = canvas.new_instance(BICYCLE)
        canvas.paint(rows, cols, bike, bike_materials, BICYCLE, depth=self.z_m, instance=instance, owner=owner)
        rider_materials = [canvas.new_material(kind, added=True) for kind in ("shirt", "trousers", "skin", "helmet")]
        owner, instance = canvas.new_box(RIDER), canvas.new_instance(RIDER)
        canvas.paint(rows, cols, rider, rider_materials, RIDER, depth=self.z_m, instance=instance, owner=owner)

    def _bicycle(self, u: np.ndarray, y_m: np.ndarray, thin: float) -> np.ndarray:
        """Parts of the bicycle: 1 frame and handlebar, 2 tyres."""
        d, r = self.heading, 0.34
        parts = np.zeros(np.broadcast_shapes(u.shape, y_m.shape), np.int64)
        if d:
            hub_rear, hub_front, crank, seat, head = (
                (-0.55 * d, r),
                (0.55 * d, r),
                (0.0, 0.3),
                (-0.12 * d, 0.82),
                (0.42 * d, 0.85),
            )
            frame = [
                (hub_rear, crank),
                (crank, seat),
                (seat, head),
                (crank, head),
                (hub_rear, seat),
                (head, hub_front),
                (head, (0.38 * d, 1.0)),
            ]
            parts[_near_segments(u, y_m, frame, max(0.025, thin))] = 1
            for hub_u, _ in (hub_rear, hub_front):
                ring = np.abs(np.sqrt((u - hub_u) ** 2 + (y_m - r) ** 2) - r) < max(0.045, thin)
                parts[ring] = 2
        else:
            parts[_near_segments(u, y_m, [((-0.3, 1.0), (0.3, 1.0)), ((0.0, 0.68), (0.0, 1.0))], max(0.025, thin))] = 1
            parts[_near_segments(u, y_m, [((0.0, 0.0), (0.0, 2 * r))], max(0.03, thin))] = 2
        return parts

    def _rider(self, u: np.ndarray, y_m: np.ndarray, thin: float) -> np.ndarray:
        """Parts of the rider: 1 torso and arms (shirt), 2 legs, 3 face, 4 helmet."""
        d, s = self.heading, self.height_m / 1.75
        lift = 0.12 * np.sin(self.pedal)  # one foot up, the other down
        parts = np.zeros(np.broadcast_shapes(u.shape, y_m.shape), np.int64)
        if d:
            hip, shoulder, head = (-0.1 * d, 0.92 * s), (0.16 * d, 1.42 * s), (0.27 * d, 1.6 * s)
            hands, knee = (0.4 * d, 1.0), (0.18 * d, 0.72 * s)
            legs = [
                (hip, knee),
                (knee, (0.05 * d, 0.3 + lift)),
                (hip, (0.1 * d, 0.62 * s)),
                ((0.1 * d, 0.62 * s), (-0.05 * d, 0.3 - lift)),
            ]
            parts[_near_segments(u, y_m, legs, max(0.075, thin))] = 2
            parts[_near_segments(u, y_m, [(hip, shoulder)], max(0.16, thin))] = 1
            parts[_near_segments(u, y_m, [(shoulder, hands)], max(0.05, thin))] = 1
        else:
            head = (0.0, 1.55 * s)
            legs = [((-0.1, 0.92 * s), (-0.15, 0.3 + lift)), ((0.1, 0.92 * s), (0.15, 0.3 - lift))]
            parts[_near_segments(u, y_m, legs, max(0.075, thin))] = 2
            parts[(np.abs(u) < max(0.19, thin)) & (y_m >= 0.88 * s) & (y_m < 1.42 * s)] = 1
            arms = [((-0.2, 1.38 * s), (-0.28, 1.0)), ((0.2, 1.38 * s), (0.28, 1.0))]
            parts[_near_segments(u, y_m, arms, max(0.05, thin))] = 1
        head_r = max(0.12 * s, 2 * thin)
        in_head = (u - head[0]) ** 2 + (y_m - head[1]) ** 2 < head_r**2
        parts[in_head] = 3
        parts[in_head & (y_m > head[1] - 0.2 * head_r)] = 4
        return parts


SIGN_SCHEMES = {
    # scheme -> (outer material, inner material, symbol material or None, shape)
    "prohibition": ("sign_red", "sign_white", None, "circle"),
    "mandatory": ("sign_blue", "sign_blue", "sign_white", "circle"),
    "warning": ("sign_red", "sign_white", "sign_dark", "triangle"),
    "priority": ("sign_white", "sign_yellow", None, "diamond"),
    "information": ("sign_blue", "sign_blue", "sign_white", "rectangle"),
    "stop": ("sign_red", "sign_red", "sign_white", "octagon"),
}


@dataclass(frozen=True)
class Sign:
    """A traffic sign panel centred at height ``center_m`` on its pole."""

    scheme: str
    center_m: float
    size_m: float

    def paint(self, canvas: Canvas, cam: Camera, x_m: float, z_m: float) -> None:
        scale = canvas.width / 128
        half = max(self.size_m * cam.px_per_m(z_m), 5 * scale) / 2
        cx, cy = cam.x_of(x_m, z_m), cam.y_of(self.center_m, z_m)
        rows, cols, xc, yc = _window(canvas, cx - half, cx + half, cy - half, cy + half)
        a, b = (xc - cx) / half, (yc - cy) / half  # [-1, 1], b grows downwards
        outer, inner, symbol, shape = SIGN_SCHEMES[self.scheme]

        def inside(shrink: float) -> np.ndarray:
            aa, bb = a / shrink, b / shrink
            if shape == "circle":
                return aa**2 + bb**2 < 1
            if shape == "octagon":
                return (np.abs(aa) < 0.95) & (np.abs(bb) < 0.95) & (np.abs(aa) + np.abs(bb) < 1.35)
            if shape == "triangle":
                return (bb < 0.8) & (np.abs(aa) < (bb + 1.0) / 1.8 * 1.0)
            if shape == "diamond":
                return np.abs(aa) + np.abs(bb) < 1
            return (np.abs(aa) < 1) & (np.abs(bb) < 0.62)

        parts = np.where(inside(1.0), 1, 0)
        parts[inside(0.62) & (parts == 1)] = 2
        if symbol is not None:
            parts[(np.abs(a) < 0.45) & (np.abs(b) < 0.16) & (parts > 0)] = 3
        names = (outer, inner, symbol or inner)
        materials = [canvas.new_material(kind) for kind in names]
        canvas.paint(rows, cols, parts, materials, TRAFFIC_SIGN, depth=z_m, owner=canvas.new_box(TRAFFIC_SIGN))


@dataclass(frozen=True)
class TrafficLight:
    """A three-lamp traffic light whose housing is centred at ``center_x_offset_m`` from its pole."""

    center_m: float
    center_x_offset_m: float
    lit: int  # 0 red, 1 amber, 2 green

    def paint(self, canvas: Canvas, cam: Camera, x_m: float, z_m: float) -> None:
        scale = canvas.width / 128
        k = cam.px_per_m(z_m)
        half_w = max(0.36 * k, 3.2 * scale) / 2
        half_h = max(1.0 * k, 8 * scale) / 2
        cx, cy = cam.x_of(x_m + self.center_x_offset_m, z_m), cam.y_of(self.center_m, z_m)
        rows, cols, xc, yc = _window(canvas, cx - half_w, cx + half_w, cy - half_h, cy + half_h)
        a = (xc - cx) / half_w
        b = (yc - (cy - half_h)) / (2 * half_h) * 3  # 0..3 top to bottom, one unit per lamp
        parts = np.ones(np.broadcast_shapes(a.shape, b.shape), np.int64)
        for lamp in range(3):
            disk = (a / 0.72) ** 2 + ((b - lamp - 0.5) / 0.4) ** 2 < 1
            parts[disk] = 2 + (lamp == self.lit)
        colour = ("lamp_red", "lamp_amber", "lamp_green")[self.lit]
        materials = [canvas.new_material(kind) for kind in ("light_housing", "lamp_off", colour)]
        canvas.paint(rows, cols, parts, materials, TRAFFIC_LIGHT, depth=z_m, owner=canvas.new_box(TRAFFIC_LIGHT))


@dataclass(frozen=True)
class Pole:
    """A pole on the sidewalk, optionally with an arm over the road, a sign and a traffic light."""

    x_m: float
    z_m: float
    height_m: float
    arm_m: float = 0.0  # signed length of a horizontal arm at the top (0: none)
    sign: Sign | None = None
    light: TrafficLight | None = None

    @property
    def depth(self) -> float:
        return self.z_m

    def paint(self, canvas: Canvas, cam: Camera) -> None:
        k = cam.px_per_m(self.z_m)
        width = max(canvas.thin_px, 0.16 * k)
        cols = bar_span(cam.x_of(self.x_m, self.z_m), width, canvas.width)
        rows = pixel_span(cam.y_of(self.height_m, self.z_m), cam.y_of(0.0, self.z_m), canvas.height)
        lit = canvas.new_material("pole")
        materials = [lit, canvas.shaded_material(lit, 0.62)]
        # A round pole: lit on its left half, shaded on its right, a cue thin poles can be told by.
        halves = np.where(np.arange(cols[1] - cols[0]) < (cols[1] - cols[0] + 1) // 2, 1, 2)
        parts = np.broadcast_to(halves, (rows[1] - rows[0], cols[1] - cols[0]))
        owner = canvas.new_box(POLE)  # the arm is part of the pole's box
        canvas.paint(rows, cols, parts, materials, POLE, depth=self.z_m, owner=owner)
        material = materials[:1]
        if self.arm_m:
            arm_rows = bar_span(cam.y_of(self.height_m, self.z_m) + width / 2, width, canvas.height)
            xa, xb = sorted((cam.x_of(self.x_m, self.z_m), cam.x_of(self.x_m + self.arm_m, self.z_m)))
            arm_cols = pixel_span(xa, xb, canvas.width)
            shape = (arm_rows[1] - arm_rows[0], arm_cols[1] - arm_cols[0])
            canvas.paint(arm_rows, arm_cols, np.ones(shape, np.int64), material, POLE, depth=self.z_m, owner=owner)
        if self.sign is not None:
            self.sign.paint(canvas, cam, self.x_m, self.z_m)
        if self.light is not None:
            self.light.paint(canvas, cam, self.x_m, self.z_m)


@dataclass(frozen=True)
class Tree:
    """A street tree: a trunk and a bumpy elliptic canopy, all labelled vegetation."""

    x_m: float
    z_m: float
    crown_center_m: float
    crown_radius_m: float
    bump_phase: tuple[float, float]

    @property
    def depth(self) -> float:
        return self.z_m

    def paint(self, canvas: Canvas, cam: Camera) -> None:
        k = cam.px_per_m(self.z_m)
        r, ry = self.crown_radius_m, 1.15 * self.crown_radius_m
        cx = cam.x_of(self.x_m, self.z_m)
        top = cam.y_of(self.crown_center_m + 1.2 * ry, self.z_m)
        rows, cols, xc, yc = _window(canvas, cx - 1.2 * r * k, cx + 1.2 * r * k, top, cam.y_of(0.0, self.z_m))
        u = (xc - cx) / k
        y_m = (cam.y_of(0.0, self.z_m) - yc) / k
        dy = (y_m - self.crown_center_m) / ry
        angle = np.arctan2(dy, u / r)
        bumps = 1 + 0.1 * np.sin(5 * angle + self.bump_phase[0]) + 0.07 * np.sin(9 * angle + self.bump_phase[1])
        crown = (u / r) ** 2 + dy**2 < bumps**2
        trunk = (np.abs(u) < max(0.15, canvas.thin_px / 2 / k)) & (y_m < self.crown_center_m)
        parts = np.where(trunk, 1, 0)
        parts[crown] = 2
        materials = [canvas.new_material("trunk"), canvas.new_material("foliage")]
        canvas.paint(rows, cols, parts, materials, VEGETATION, depth=self.z_m)
