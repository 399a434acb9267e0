"""Speed and class statistics of the synthetic street scenes, printed as JSON.

Measures scenes per second on one core (numpy kept to one thread) at 64 x 128 and 128 x 256, by
wall clock and by this process' CPU time (which other jobs on a shared machine do not inflate),
and the pixel frequency of each class (and the share of scenes it appears in) over 1000 scenes.

    python benchmarks/synthetic.py [--timed 300] [--scenes 1000]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core: set before numpy loads its BLAS

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from gesco.datasets import SYNTHETIC_CLASSES, SyntheticStreets  # noqa: E402


def scenes_per_second(height: int, width: int, count: int) -> tuple[float, float]:
    """Scenes per second of wall-clock time and of this process' CPU time (robust to a busy machine)."""
    streets = SyntheticStreets(height, width)
    streets.scene(0)  # warm-up
    wall, cpu = time.perf_counter(), time.process_time()
    for seed in range(count):
        streets.scene(seed)
    return count / (time.perf_counter() - wall), count / (time.process_time() - cpu)


def class_statistics(count: int) -> tuple[dict[str, float], dict[str, float]]:
    streets = SyntheticStreets(64, 128)
    pixels = np.zeros(256, np.int64)
    present = np.zeros(256, np.int64)
    for seed in range(count):
        counts = np.bincount(streets.scene(seed).labels.ravel(), minlength=256)
        pixels += counts
        present += counts > 0
    frequency = {name: round(float(pixels[i] / pixels.sum()), 5) for i, name in SYNTHETIC_CLASSES.items()}
    presence = {name: round(float(present[i] / count), 3) for i, name in SYNTHETIC_CLASSES.items()}
    return frequency, presence


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timed", type=int, default=300, help="scenes timed per resolution")
    parser.add_argument("--scenes", type=int, default=1000, help="scenes for the class statistics")
    args = parser.parse_args()
    frequency, presence = class_statistics(args.scenes)
    speed = {f"{h}x{w}": scenes_per_second(h, w, args.timed) for h, w in ((64, 128), (128, 256))}
    report = {
        "scenes_per_s": {size: round(wall, 1) for size, (wall, _) in speed.items()},
        "scenes_per_cpu_s": {size: round(cpu, 1) for size, (_, cpu) in speed.items()},
        "class_pixel_frequency": frequency,
        "class_scene_presence": presence,
        "scenes": args.scenes,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
