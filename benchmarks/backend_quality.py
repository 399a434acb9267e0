"""Quality of the exported UNet paths against the fp32 torch UNet: segmenter mIoU of a receiver's images.

Tuning scenes (synthetic seeds from 900,200: inside the training range, disjoint from the int8 calibration scenes
900,000+ of ``CalibrationConfig`` and from the held-out evaluation seeds 1,000,000+) go through the transmitter,
the AWGN channel at each PSNR label and FDS once; every path then regenerates them with the receiver's own sampler
from the same x_T and the same sampler noise. Printed as JSON per path and PSNR: the shipped segmenter's mIoU
against the transmitted maps, the share of pixels it labels as on the fp32 torch images, the mean pixel change in
grey levels, and the sampling seconds.

Usage: python benchmarks/backend_quality.py [--model synthetic-streets-64x128] [--scenes 16] [--psnr 100 10 5 1]
    [--paths openvino-int8 onnxruntime-int8 openvino-bf16] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

import gesco.pretrained
from gesco.channel.awgn import AWGNChannel
from gesco.channel.quality import ChannelQuality
from gesco.datasets.base import collate
from gesco.datasets.synthetic import SyntheticStreetsDataset
from gesco.evaluation.metrics import EvaluationClasses, set_miou
from gesco.receiver.backends import with_backend
from gesco.receiver.pipeline import DiffusionReceiver
from gesco.receiver.receiver import Receiver
from gesco.semantics.maps import SemanticMap
from gesco.semantics.transmitter import Transmitter
from gesco.weights_folder import model_folder

FIRST_SEED = 900_200


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=gesco.pretrained.GESCO_RECEIVER, help="receiver folder or shipped name")
    parser.add_argument("--scenes", type=int, default=16)
    parser.add_argument("--first-seed", type=int, default=FIRST_SEED)
    parser.add_argument("--psnr", type=float, nargs="+", default=[100.0, 10.0, 5.0, 1.0])
    parser.add_argument("--paths", nargs="+", default=["openvino-int8", "onnxruntime-int8", "openvino-bf16"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--backend-cache", default=str(Path(tempfile.gettempdir()) / "gesco-benchmark-backends"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    receiver = DiffusionReceiver.from_pretrained(model_folder(args.model))
    segmenter = gesco.pretrained.load(gesco.pretrained.SEGMENTER)
    height, width = receiver.config.image_size
    dataset = SyntheticStreetsDataset(args.scenes, args.first_seed, height=height, width=width)
    batch = collate([dataset[i] for i in range(args.scenes)])
    payload = Transmitter()(SemanticMap(batch.labels, receiver.table, batch.instances, receiver.config.edge_rule))
    map_stage = Receiver(None, map_denoiser=receiver.config.map_denoiser)
    generator = torch.Generator().manual_seed(0)
    sent = []  # per PSNR: (condition, sigma, x_T), shared by every path
    for psnr in args.psnr:
        received = AWGNChannel()(payload, ChannelQuality.psnr_label(psnr), generator=generator)
        x_T = torch.randn(args.scenes, 3, height, width, generator=generator)
        sent.append((map_stage(received).condition, received.sigma, x_T))

    classes = EvaluationClasses.from_table(receiver.table)
    paths = {"torch-fp32": receiver}
    for path in args.paths:
        backend, precision = path.split("-")
        paths[path] = with_backend(receiver, backend=backend, precision=precision, cache_dir=args.backend_cache)
    sampler = receiver.config.sampler.replace(autocast_dtype="float32")
    report, reference = {}, {}
    for name, generator_path in paths.items():
        rows, started = {}, time.perf_counter()
        for psnr, (condition, sigma, x_T) in zip(args.psnr, sent, strict=True):
            images = generator_path(
                condition, x_T=x_T, sigma=sigma, sampler=sampler, generator=torch.Generator().manual_seed(1)
            )
            labels = segmenter.predict(images)
            row = {"miou": round(set_miou(labels, batch.labels, classes), 4)}
            if name == "torch-fp32":
                reference[psnr] = (images, labels)
            else:
                reference_images, reference_labels = reference[psnr]
                row["label_agreement_with_torch_fp32"] = round(float((labels == reference_labels).float().mean()), 4)
                grey = (images.clamp(-1, 1) - reference_images.clamp(-1, 1)).abs() * 127.5
                row["mean_abs_diff_grey_levels"] = round(float(grey.mean()), 2)
            rows[f"psnr_{psnr:g}"] = row
        mean = sum(row["miou"] for row in rows.values()) / len(rows)
        report[name] = {
            "by_psnr": rows,
            "mean_miou": round(mean, 4),
            "sampling_seconds": round(time.perf_counter() - started, 1),
        }
    for result in report.values():
        result["mean_miou_change_vs_torch_fp32_points"] = round(
            100 * (result["mean_miou"] - report["torch-fp32"]["mean_miou"]), 2
        )
    print(
        json.dumps(
            {
                "benchmark": "a receiver's exported UNet paths against its fp32 torch UNet",
                "model": args.model,
                "scenes": args.scenes,
                "first_seed": args.first_seed,
                "sampler": f"{sampler.sampler} {sampler.steps} steps, guidance {sampler.guidance:g}",
                "threads": args.threads,
                "paths": report,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
