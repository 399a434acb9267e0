"""Geometry of a synthetic street scene: camera, ground, façades, and where the objects stand.

Everything is placed in world metres and projected with a one-point perspective
:class:`~gesco.datasets.synthetic_canvas.Camera`, so the scene looks the same at any resolution.
Drawing order is back to front: sky (the canvas' background), ground, far façades, side façades
and hedges, then the objects sorted far to near.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gesco.datasets.synthetic_canvas import (
    BUILDING,
    FACES_LEFT,
    FACES_RIGHT,
    FRONTAL,
    GROUND,
    ROAD,
    SIDEWALK,
    SKY_DEPTH_M,
    TERRAIN,
    VEGETATION,
    Camera,
    Canvas,
    pixel_span,
)
from gesco.datasets.synthetic_objects import SIGN_SCHEMES, Car, Cyclist, Person, Pole, Sign, TrafficLight, Tree

FAR_M = 400.0  # façades and hedges run to this depth: close enough to the horizon


@dataclass(frozen=True)
class Street:
    """Cross-section of the street in world X (m): road [left, right], sidewalks, roadside zones."""

    road_left: float
    road_right: float
    lane_width: float
    sidewalk: tuple[float, float]  # widths, left then right
    verge: tuple[float, float]  # grass strip behind each sidewalk
    zones: tuple[str, str]  # "buildings", "hedge" or "open", left then right

    def facade_x(self, side: int) -> float:
        """X of the vertical plane that closes the street on ``side`` (0 left, 1 right)."""
        if side == 0:
            return self.road_left - self.sidewalk[0] - self.verge[0]
        return self.road_right + self.sidewalk[1] + self.verge[1]

    def curb_x(self, side: int) -> float:
        return self.road_left if side == 0 else self.road_right


def draw_layout(canvas: Canvas, rng: np.random.Generator, cyclist_rng: np.random.Generator | None = None) -> Camera:
    """Draw one random street scene onto ``canvas``; returns its camera.

    With ``cyclist_rng``, cyclists are placed too, from that stream alone: everything else stays where the same
    ``rng`` puts it without them.
    """
    h, w = canvas.height, canvas.width
    cam = Camera(
        focal=w * rng.uniform(0.42, 0.56),
        horizon=h * rng.uniform(0.36, 0.47),
        center_x=w * rng.uniform(0.4, 0.6),
    )
    lanes = int(rng.choice([2, 2, 3, 4]))
    lane_width = rng.uniform(2.9, 3.5)
    camera_lane = rng.integers(0, lanes)
    road_left = -(camera_lane + rng.uniform(0.3, 0.7)) * lane_width
    zones = tuple(rng.choice(["buildings", "hedge", "open"], p=[0.64, 0.18, 0.18]) for _ in range(2))
    street = Street(
        road_left=road_left,
        road_right=road_left + lanes * lane_width,
        lane_width=lane_width,
        sidewalk=(rng.uniform(1.8, 4.5), rng.uniform(1.8, 4.5)),
        verge=tuple(rng.uniform(1.0, 4.0) if z != "buildings" or rng.random() < 0.3 else 0.0 for z in zones),
        zones=zones,
    )
    _draw_ground(canvas, cam, street, rng)
    if street.zones == ("buildings", "buildings") and rng.random() < 0.5:
        _draw_end_buildings(canvas, cam, street, rng)
    for side in (0, 1):
        zone = street.zones[side]
        if zone == "buildings":
            _draw_building_row(canvas, cam, street.facade_x(side), rng)
        elif zone == "hedge":
            _draw_hedge(canvas, cam, street.facade_x(side), rng.uniform(1.5, 7.0), rng)
        else:
            far_x = (-1, 1)[side] * rng.uniform(30.0, 80.0)
            _draw_hedge(canvas, cam, street.facade_x(side) + far_x, rng.uniform(5.0, 12.0), rng)
    objects = _place_objects(street, cam, w / 128, rng)
    if cyclist_rng is not None:
        cars = [item for item in objects if isinstance(item, Car)]
        objects += _place_cyclists(street, cam, w / 128, cars, cyclist_rng)
    for item in sorted(objects, key=lambda o: -o.depth):
        item.paint(canvas, cam)
    return cam


def _draw_ground(canvas: Canvas, cam: Camera, street: Street, rng: np.random.Generator) -> None:
    """Road with lane markings and curbs, sidewalks, and terrain beyond, all below the horizon."""
    first_row = max(0, int(np.ceil(cam.horizon - 0.5)))
    rows = (first_row, canvas.height)
    yc = (np.arange(*rows) + 0.5 - cam.horizon)[:, None]  # > 0 below the horizon
    px_per_m = yc / cam.height_m  # lateral pixels per metre on each row
    z = cam.focal / px_per_m  # depth of each row
    xc = np.arange(canvas.width)[None, :] + 0.5
    x_m = (xc - cam.center_x) / px_per_m
    thin = canvas.thin_px

    def line(at_m: float, width_m: float) -> np.ndarray:
        """Pixels of a painted line at ``x = at_m``, whole pixels, at least ``thin`` wide."""
        n = np.maximum(thin, np.round(width_m * px_per_m))
        start = np.floor(cam.center_x + at_m * px_per_m - n / 2 + 0.5)
        return (xc >= start) & (xc < start + n)

    road = (x_m >= street.road_left) & (x_m < street.road_right)
    left_walk = (x_m >= street.road_left - street.sidewalk[0]) & (x_m < street.road_left)
    right_walk = (x_m >= street.road_right) & (x_m < street.road_right + street.sidewalk[1])
    curb_px = np.maximum(thin / 2, 0.2 * px_per_m)
    curb = (left_walk & (xc >= cam.center_x + street.road_left * px_per_m - curb_px)) | (
        right_walk & (xc < cam.center_x + street.road_right * px_per_m + curb_px)
    )
    markings = np.zeros_like(road)
    near = z < 60.0  # farther dashes would alias into a grey smear
    lanes = round((street.road_right - street.road_left) / street.lane_width)
    period, duty, phase = rng.uniform(8.0, 12.0), rng.uniform(0.3, 0.5), rng.uniform()
    dashes = ((z / period + phase) % 1.0 < duty) & near
    for i in range(1, lanes):
        solid = i == lanes // 2 and lanes > 2 and rng.random() < 0.5
        markings |= line(street.road_left + i * street.lane_width, 0.12) & (near if solid else dashes)
    if rng.random() < 0.6:
        for edge, inward in ((street.road_left, 0.35), (street.road_right, -0.35)):
            markings |= line(edge + inward, 0.12) & near
    if rng.random() < 0.25:  # a zebra crossing, near enough for its stripes to be >= 2 px wide
        start = rng.uniform(6.0, 0.3 * cam.focal / (canvas.width / 128) - 3.5)
        stripes = ((x_m - street.road_left) % 1.2 < 0.6) & (z >= start) & (z < start + 3.5)
        markings |= stripes
    markings &= road

    material = canvas.new_material
    parts = np.full(road.shape, 4)
    parts[road] = 1
    parts[markings] = 2
    parts[left_walk | right_walk] = 3
    parts[curb] = 5
    labels = np.array([ROAD, ROAD, SIDEWALK, TERRAIN, SIDEWALK], np.uint8)
    kinds = ("road", "lane_marking", "sidewalk", "terrain", "curb")
    materials = np.array([material(k) for k in kinds], np.int16)
    window = slice(*rows)
    canvas.labels[window] = labels[parts - 1]
    canvas.instances[window] = canvas.labels[window]
    canvas.material[window] = materials[parts - 1]
    canvas.facing[window] = GROUND
    canvas.depth[window] = np.minimum(z, SKY_DEPTH_M)
    canvas.ground_x[window] = x_m


def _facade_window(canvas: Canvas, cam: Camera, x_plane: float, z0: float, z1: float, top_m: float):
    """Columns where the vertical plane ``x = x_plane`` has depth in [z0, z1), and their rows.

    Returns the window, the depth of each column (1, n) and the world height of each pixel (m, n).
    """
    xa, xb = sorted((cam.x_of(x_plane, z0), cam.x_of(x_plane, z1)))
    cols = pixel_span(xa, xb, canvas.width)
    xc = np.arange(*cols)[None, :] + 0.5
    if xc.size == 0:
        return None
    zc = cam.focal * x_plane / (xc - cam.center_x)
    rows = pixel_span(float(cam.y_of(top_m, zc).min()), float(cam.y_of(0.0, zc).max()), canvas.height)
    yc = np.arange(*rows)[:, None] + 0.5
    y_m = cam.height_m - (yc - cam.horizon) * zc / cam.focal
    return rows, cols, zc, y_m


@dataclass(frozen=True)
class _Facade:
    """Window grid of one building: floors of ``floor_m`` above a ground floor of shop fronts."""

    height_m: float
    floor_m: float
    spacing_m: float
    window_frac: tuple[float, float]  # window share of each bay (width) and of each floor (height)
    ground_floor_m: float

    @staticmethod
    def random(rng: np.random.Generator) -> _Facade:
        floors = int(rng.integers(2, 8))
        floor_m = rng.uniform(2.9, 3.6)
        ground_floor_m = rng.uniform(3.2, 4.5)
        return _Facade(
            height_m=ground_floor_m + floors * floor_m + rng.uniform(0.3, 1.2),
            floor_m=floor_m,
            spacing_m=rng.uniform(2.4, 4.0),
            window_frac=(rng.uniform(0.35, 0.6), rng.uniform(0.4, 0.6)),
            ground_floor_m=ground_floor_m,
        )

    def parts(self, along_m: np.ndarray, y_m: np.ndarray, detail: np.ndarray) -> np.ndarray:
        """1 wall, 2 window, 3 shop front, 4 roof trim, 0 outside, for wall coordinates (m).

        ``along_m`` runs along the façade, ``detail`` says where the grid is at least a few
        pixels per bay (elsewhere the wall is drawn plain instead of aliasing).
        """
        shape = np.broadcast_shapes(along_m.shape, y_m.shape)
        inside = np.broadcast_to((y_m >= 0) & (y_m < self.height_m), shape)
        parts = np.where(inside, 1, 0)
        bay = (along_m / self.spacing_m) % 1.0
        in_bay = np.abs(bay - 0.5) < self.window_frac[0] / 2
        upper = y_m - self.ground_floor_m
        level = (upper / self.floor_m) % 1.0
        in_floor = (np.abs(level - 0.55) < self.window_frac[1] / 2) & (upper > 0)
        in_floor &= y_m < self.height_m - 0.9
        parts[in_bay & in_floor & detail & inside] = 2
        shop = (y_m > 0.25) & (y_m < self.ground_floor_m - 0.6) & (np.abs(bay - 0.5) < 0.38)
        parts[shop & detail & inside] = 3
        parts[(y_m > self.height_m - 0.45) & inside] = 4
        return parts


def _draw_building_row(canvas: Canvas, cam: Camera, x_plane: float, rng: np.random.Generator) -> None:
    """Buildings of varying height and colour side by side along ``x = x_plane``."""
    scale = canvas.width / 128
    z = rng.uniform(0.5, 2.0)
    while z < FAR_M:
        length = rng.uniform(8.0, 30.0) * (1 + z / 25)  # far ones are few pixels wide
        if rng.random() < 0.1:  # a gap between buildings
            z += rng.uniform(4.0, 12.0)
            continue
        facade = _Facade.random(rng)
        found = _facade_window(canvas, cam, x_plane, z, z + length, facade.height_m)
        if found is not None:
            rows, cols, zc, y_m = found
            along = zc - z
            bay_px = facade.spacing_m * cam.focal * abs(x_plane) / zc**2
            floor_px = facade.floor_m * cam.focal / zc
            detail = (bay_px >= 3.5 * scale) & (floor_px >= 3 * scale)
            parts = facade.parts(along, y_m, detail)
            materials = [canvas.new_material(k) for k in ("wall", "window", "shop_front", "roof_trim")]
            facing = FACES_RIGHT if x_plane < 0 else FACES_LEFT
            canvas.paint(rows, cols, parts, materials, BUILDING, depth=zc, facing=facing)
        z += length


def _draw_end_buildings(canvas: Canvas, cam: Camera, street: Street, rng: np.random.Generator) -> None:
    """Frontal buildings closing the street at a far depth."""
    scale = canvas.width / 128
    z = rng.uniform(70.0, 160.0)
    x, x_end = street.facade_x(0), street.facade_x(1)
    while x < x_end:
        width = min(rng.uniform(8.0, 20.0), x_end - x)
        facade = _Facade.random(rng)
        k = cam.px_per_m(z)
        rows = pixel_span(cam.y_of(facade.height_m, z), cam.y_of(0.0, z), canvas.height)
        cols = pixel_span(cam.x_of(x, z), cam.x_of(x + width, z), canvas.width)
        xc = np.arange(*cols)[None, :] + 0.5
        yc = np.arange(*rows)[:, None] + 0.5
        y_m = cam.height_m - (yc - cam.horizon) / k
        detail = np.array(facade.spacing_m * k >= 3.5 * scale and facade.floor_m * k >= 3 * scale)
        parts = facade.parts((xc - cam.x_of(x, z)) / k, y_m, detail)
        materials = [canvas.new_material(kind) for kind in ("wall", "window", "shop_front", "roof_trim")]
        canvas.paint(rows, cols, parts, materials, BUILDING, depth=z, facing=FRONTAL)
        x += width


def _draw_hedge(canvas: Canvas, cam: Camera, x_plane: float, height_m: float, rng: np.random.Generator) -> None:
    """A wall of greenery along ``x = x_plane`` with a bumpy top: hedges, park trees, far tree lines."""
    top_m = height_m * 1.4
    found = _facade_window(canvas, cam, x_plane, 0.5, FAR_M, top_m)
    if found is None:
        return
    rows, cols, zc, y_m = found
    waves = [(rng.uniform(0.05, 0.4), rng.uniform(0, 2 * np.pi), rng.uniform(0.05, 0.25)) for _ in range(3)]
    top = height_m * (1 + sum(a * np.sin(zc * f + p) for f, p, a in waves) / 1.5)
    parts = np.where((y_m >= 0) & (y_m < np.minimum(top, top_m)), 1, 0)
    facing = FACES_RIGHT if x_plane < 0 else FACES_LEFT
    canvas.paint(rows, cols, parts, [canvas.new_material("foliage")], VEGETATION, depth=zc, facing=facing)


def _spaced(rng: np.random.Generator, count: int, low: float, high: float, gap: float) -> list[float]:
    """Up to ``count`` depths in [low, high) at least ``gap`` apart."""
    picked: list[float] = []
    for z in rng.uniform(low, high, size=count):
        if all(abs(z - other) >= gap for other in picked):
            picked.append(float(z))
    return picked


def _place_objects(street: Street, cam: Camera, scale: float, rng: np.random.Generator) -> list:
    """Cars in lanes and parked at the curbs, pedestrians, poles with signs and lights, trees."""
    objects: list = []
    # People at least ~10 px tall at 128 px width (scaled): z <= focal * 1.75 m / 10 px.
    person_far = cam.focal * 1.75 / (10 * scale)
    lanes = round((street.road_right - street.road_left) / street.lane_width)
    for lane in range(lanes):
        center = street.road_left + (lane + 0.5) * street.lane_width
        oncoming = center < 0 and lanes > 1 and rng.random() < 0.6
        for z in _spaced(rng, int(rng.integers(0, 3)), 5.0, 35.0, 9.0):
            objects.append(_random_car(center + rng.uniform(-0.3, 0.3), z, not oncoming, rng))
    for side in (0, 1):
        inward = 1 if side == 0 else -1
        curb = street.curb_x(side)
        if rng.random() < 0.45:
            for z in _spaced(rng, int(rng.integers(1, 5)), 3.0, 40.0, 5.5):
                objects.append(_random_car(curb + inward * 1.1, z, bool(rng.random() < 0.7), rng))
        walk_in, walk_out = curb - inward * 0.4, curb - inward * street.sidewalk[side] * 0.9
        for z in _spaced(rng, int(rng.integers(0, 4)), 4.0, min(14.0, person_far), 1.0):
            objects.append(Person(rng.uniform(*sorted((walk_in, walk_out))), z, rng.uniform(1.6, 1.95), rng.random()))
        for z in _spaced(rng, int(rng.integers(1, 4)), 5.0, 30.0, 6.0):
            objects.append(_random_pole(curb - inward * 0.5, z, inward, rng))
        if street.zones[side] != "buildings" or rng.random() < 0.4:
            verge = street.verge[side]
            tree_x = curb - inward * (street.sidewalk[side] + verge / 2 if verge else street.sidewalk[side] * 0.75)
            for z in _spaced(rng, int(rng.integers(1, 6)), 4.0, 70.0, 6.0):
                phase = (rng.uniform(0, 2 * np.pi), rng.uniform(0, 2 * np.pi))
                objects.append(Tree(tree_x, z, rng.uniform(3.5, 6.0), rng.uniform(1.5, 3.0), phase))
    if rng.random() < 0.3:  # someone crossing the road
        x = rng.uniform(street.road_left, street.road_right)
        objects.append(Person(x, rng.uniform(6.0, min(14.0, person_far)), rng.uniform(1.6, 1.95), rng.random()))
    return objects


def _place_cyclists(
    street: Street, cam: Camera, scale: float, cars: list[Car], rng: np.random.Generator
) -> list[Cyclist]:
    """Cyclists riding along the street near either curb (seen head-on or from behind), and sometimes one
    crossing it (seen from the side), never inside one of the ``cars``; as near as the pedestrians (at least
    ~10 px tall at 128 px width, so 5 m up to 8-12.5 m away)."""
    far = cam.focal * 1.75 / (10 * scale)
    cyclists = []
    for z in _spaced(rng, int(rng.integers(0, 3)), 5.0, far, 4.0):
        side = int(rng.integers(0, 2))
        x = street.curb_x(side) + (1 if side == 0 else -1) * rng.uniform(0.6, 1.2)
        cyclists.append(Cyclist(x, z, rng.uniform(1.6, 1.95), 0, rng.uniform(0, 2 * np.pi)))
    if rng.random() < 0.3:
        x = rng.uniform(street.road_left, street.road_right)
        heading = 1 if rng.random() < 0.5 else -1
        cyclists.append(Cyclist(x, rng.uniform(5.0, far), rng.uniform(1.6, 1.95), heading, rng.uniform(0, 2 * np.pi)))
    return [c for c in cyclists if not any(_overlaps(c, car) for car in cars)]


def _overlaps(cyclist: Cyclist, car: Car) -> bool:
    """Whether the cyclist's footprint (1.8 m long when crossing, 0.6 m wide head-on) meets the car's."""
    half_width = 0.9 if cyclist.heading else 0.3
    beside = abs(cyclist.x_m - car.x_m) < car.width_m / 2 + half_width
    return beside and car.z_m - 0.5 < cyclist.z_m < car.z_m + car.length_m + 0.5


def _random_car(x_m: float, z_m: float, seen_from_behind: bool, rng: np.random.Generator) -> Car:
    return Car(
        x_m=x_m,
        z_m=z_m,
        width_m=rng.uniform(1.7, 1.95),
        height_m=rng.uniform(1.35, 1.7),
        length_m=rng.uniform(3.9, 4.9),
        seen_from_behind=seen_from_behind,
    )


def _random_pole(x_m: float, z_m: float, inward: int, rng: np.random.Generator) -> Pole:
    """A street-lamp pole, a sign post, or a traffic-light pole (sometimes with an arm)."""
    kind = rng.choice(["lamp", "sign", "light"], p=[0.25, 0.45, 0.3])
    if kind == "sign":
        center = rng.uniform(2.2, 3.0)
        sign = Sign(str(rng.choice(list(SIGN_SCHEMES))), center, rng.uniform(0.6, 0.9))
        return Pole(x_m, z_m, center + rng.uniform(0.1, 0.5), sign=sign)
    if kind == "light":
        height = rng.uniform(3.5, 6.0)
        arm = inward * rng.uniform(1.5, 4.0) if rng.random() < 0.5 else 0.0
        center = height - 0.6 if arm else rng.uniform(2.6, height - 0.5)
        light = TrafficLight(center, arm * 0.85, int(rng.integers(0, 3)))
        sign = Sign(str(rng.choice(list(SIGN_SCHEMES))), rng.uniform(1.8, 2.2), 0.6) if rng.random() < 0.3 else None
        return Pole(x_m, z_m, height, arm_m=arm, light=light, sign=sign)
    return Pole(x_m, z_m, rng.uniform(5.0, 8.0), arm_m=inward * rng.uniform(0.8, 1.8))
