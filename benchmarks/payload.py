"""Payload sizes on the synthetic street scenes, printed as JSON.

For each resolution, the mean per pixel over ``--n`` scenes (seeds from ``--seed``) of every size
``gesco.baselines.accounting.payload_sizes`` counts, each in its own unit: the paper's analog map in real
values and complex channel uses, the side information, the lossless map code and the PNG and JPEG
(quality 75) of the image in bits.
Usage: python benchmarks/payload.py [--n 200] [--sizes 64x128 256x512]
"""

from __future__ import annotations

import argparse
import json
import statistics

import torch

from gesco.baselines.accounting import payload_sizes
from gesco.datasets import SyntheticStreets
from gesco.semantics import SemanticMap, class_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1_000_000)
    parser.add_argument("--sizes", nargs="+", default=["64x128", "256x512"])
    args = parser.parse_args()
    table = class_table("cityscapes")
    report = {"scenes": args.n, "first_seed": args.seed, "jpeg_quality": 75, "per_pixel": {}}
    for size in args.sizes:
        height, width = (int(v) for v in size.split("x"))
        streets = SyntheticStreets(height, width)
        per_pixel: dict[str, list[float]] = {}
        for seed in range(args.seed, args.seed + args.n):
            scene = streets.scene(seed)
            semantic_map = SemanticMap(
                torch.from_numpy(scene.labels).long(), table, torch.from_numpy(scene.instances).long()
            )
            (sizes,) = payload_sizes(semantic_map, scene.image[None])
            for name, value in sizes.per_pixel().items():
                per_pixel.setdefault(name, []).append(value)
        report["per_pixel"][size] = {name: round(statistics.mean(v), 4) for name, v in per_pixel.items()}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
