"""gesco's detector and depth network on the real images of held-out synthetic scenes, printed as JSON.

This is the ceiling that ``gesco evaluate --detector/--depth`` reports beside every method: AP50 (all boxes, and
without boxes under ``--min-area`` px^2), recall and AP50 per class, localisation error; depth AbsRel and delta1
(ground truth up to the evaluation's maximum depth), beside two guesses that never look at the image.
``--riders`` scores scenes with cyclists (``SyntheticStreets(riders=True)``), the same seeds.
Usage: python benchmarks/geometry_models.py --detector runs/detector/model [--depth runs/depth/model] [--n 200]
    [--riders]
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from torch.utils.data import DataLoader

from gesco.constants import EVALUATION_SEED_OFFSET, GEOMETRY_TRAINING_SEED_OFFSET
from gesco.datasets import SyntheticStreetsDataset
from gesco.datasets.base import collate
from gesco.evaluation.depth_network import GescoDepthNet
from gesco.evaluation.depth_training import evaluate_depth
from gesco.evaluation.detector import GescoDetector
from gesco.evaluation.detector_training import evaluate_detector
from gesco.evaluation.geometry_scoring import DEFAULT_MAX_DEPTH_M
from gesco.evaluation.objects_depth import DepthMeter
from gesco.pretrained import resolve
from gesco.semantics.classes import class_table


def detection_record(scores) -> dict:
    names = class_table("cityscapes").names
    return {
        "ap50": scores.map50,
        "localisation_px": scores.localisation_px,
        "per_class": {
            names[class_id]: {"ap50": c.ap50, "recall": c.recall, "boxes": c.num_targets}
            for class_id, c in scores.per_class.items()
        },
    }


def scene_depths(dataset) -> torch.Tensor:
    return torch.cat([batch.depth for batch in DataLoader(dataset, batch_size=50, collate_fn=collate)])


def depth_guesses(dataset) -> dict:
    """What a depth network must beat: AbsRel and delta1 of guesses that never look at the image, both taken from
    200 training scenes: their median depth everywhere, and the median depth of each image row (the ground
    plane's depth, the best guess from the position alone)."""
    train = scene_depths(SyntheticStreetsDataset(200, GEOMETRY_TRAINING_SEED_OFFSET))
    # unknown depth (0) is left out; the far sky counts as the farthest scored depth
    known = torch.where(train > 0, train.clamp(max=DEFAULT_MAX_DEPTH_M), torch.nan)
    target = scene_depths(dataset)
    guesses = {
        "median_depth": torch.full_like(target, float(known.nanmedian())),
        "row_median_depth": known.nanmedian(dim=0).values.nanmedian(dim=1).values[:, None].expand_as(target),
    }
    report = {}
    for name, guess in guesses.items():
        meter = DepthMeter(max_depth=DEFAULT_MAX_DEPTH_M)
        meter.update(guess, target)
        scores = meter.result()
        report[name] = {"abs_rel": scores.abs_rel, "delta1": scores.delta1}
    return report


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detector", help="a gesco detector folder or shipped name")
    parser.add_argument("--depth", help="a gesco depth network folder or shipped name")
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--first-seed", type=int, default=EVALUATION_SEED_OFFSET)
    parser.add_argument("--min-area", type=float, default=16.0)
    parser.add_argument("--riders", action="store_true", help="scenes with cyclists (rider and bicycle classes)")
    args = parser.parse_args()
    if args.detector is None and args.depth is None:
        parser.error("give --detector, --depth or both")
    dataset = SyntheticStreetsDataset(args.n, args.first_seed, riders=args.riders)
    report: dict = {"scenes": args.n, "first_seed": args.first_seed, "riders": args.riders}
    started = time.perf_counter()
    if args.detector:
        detector = GescoDetector.from_pretrained(resolve(args.detector))
        without_small = evaluate_detector(detector, dataset, min_area=args.min_area)
        report["detector"] = {
            "all_boxes": detection_record(evaluate_detector(detector, dataset)),
            f"min_area_{args.min_area:g}": detection_record(without_small),
        }
    if args.depth:
        scores = evaluate_depth(GescoDepthNet.from_pretrained(resolve(args.depth)), dataset)
        report["depth"] = {"abs_rel": scores.abs_rel, "delta1": scores.delta1, "guesses": depth_guesses(dataset)}
    report["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
