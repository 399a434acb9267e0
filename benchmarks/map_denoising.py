"""Map denoising and noise estimation on held-out synthetic scenes, printed as JSON.

For each PSNR label: the mIoU of the argmax of the received map after FDS and after the learned map denoiser
(told the channel's sigma, and told its blind estimate), against the transmitted map; and the blind noise
estimate's error against the channel's true sigma (mean and max absolute error). Maps go through the link
(transmitter -> AWGN -> map denoiser) with a seeded generator per scene, so all denoisers see the same
received maps.
Usage: python benchmarks/map_denoising.py [--n 200] [--denoiser map-denoiser-synthetic-streets-64x128]
    [--first-seed 1000000]  (monitor a training run on tuning seeds, e.g. 900000; report on the held-out ones)
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from gesco.channel import ChannelQuality
from gesco.constants import EVALUATION_SEED_OFFSET
from gesco.datasets import SyntheticStreetsDataset, collate
from gesco.evaluation.metrics import EvaluationClasses, SegmentationConfusion
from gesco.link import Link
from gesco.pretrained import MAP_DENOISER, resolve
from gesco.receiver.learned_denoiser import LearnedMapDenoiser
from gesco.receiver.noise_level import estimate_sigma
from gesco.receiver.receiver import Receiver
from gesco.semantics import SemanticMap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--psnr", type=float, nargs="+", default=[100, 10, 5, 1])
    parser.add_argument("--denoiser", default=MAP_DENOISER)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--first-seed", type=int, default=EVALUATION_SEED_OFFSET)
    args = parser.parse_args()
    denoiser = LearnedMapDenoiser.from_pretrained(resolve(args.denoiser))
    table = denoiser.table
    classes = EvaluationClasses.from_table(table)
    dataset = SyntheticStreetsDataset(args.n, args.first_seed, height=64, width=128)
    links = {
        "fds": Link(receiver=Receiver(None, map_denoiser="fds")),
        "learned": Link(receiver=Receiver(None, map_denoiser=denoiser)),
        # the same network told the blind estimate instead of the channel's sigma: the cost of not knowing it
        "learned_blind_sigma": Link(receiver=Receiver(None, map_denoiser=denoiser, sigma_source="blind")),
    }
    report: dict = {
        "scenes": args.n,
        "first_seed": args.first_seed,
        "denoiser": str(args.denoiser),
        "miou": {},
        "blind_sigma": {},
    }
    started = time.perf_counter()
    for psnr in args.psnr:
        confusions = {name: SegmentationConfusion(classes) for name in links}
        errors = []
        for first in range(0, args.n, args.batch_size):
            batch = collate([dataset[i] for i in range(first, min(first + args.batch_size, args.n))])
            semantic_map = SemanticMap(batch.labels, table, batch.instances)
            seeds = range(first, first + batch.labels.shape[0])
            for name, link in links.items():
                with torch.no_grad():
                    out = link(
                        semantic_map,
                        ChannelQuality.psnr_label(psnr),
                        generator=[torch.Generator().manual_seed(1000 * int(psnr) + s) for s in seeds],
                    )
                confusions[name].update(out.condition[:, : table.num_classes].argmax(1), batch.labels)
            payload = out.received.payload
            estimate = estimate_sigma(payload.values, payload.transmitted)
            errors.append(estimate - out.received.sigma)
        error = torch.cat(errors)
        sigma = float(out.received.sigma[0])
        report["miou"][f"{psnr:g}"] = {name: round(c.compute().miou, 4) for name, c in confusions.items()}
        report["blind_sigma"][f"{psnr:g}"] = {
            "sigma": sigma,
            "mean_estimate": round(sigma + float(error.mean()), 4),
            "mean_abs_error": round(float(error.abs().mean()), 4),
            "max_abs_error": round(float(error.abs().max()), 4),
        }
    report["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
