"""``gesco sample``: regenerate images from a folder of label maps sent through the channel.

Label maps are the PNGs under ``--labels`` (searched recursively, sorted by path); where
Cityscapes ``*_gtFine_labelIds.png`` files are present only those are used, each with its
``*_gtFine_instanceIds.png`` sibling. Otherwise ``--instances DIR`` pairs instance maps by
sorted order. Each image is written as ``OUT/<label file name>.png`` (Cityscapes suffix dropped); ``OUT/record.json``
lists the settings and timings.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gesco.cli.backend_options import add_backend_options
from gesco.cli.common import add_link_options

CITYSCAPES_LABELS, CITYSCAPES_INSTANCES = "_gtFine_labelIds.png", "_gtFine_instanceIds.png"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sample",
        help="regenerate images from label maps sent through the channel",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", required=True, help="receiver folder, or a shipped model's name")
    parser.add_argument("--labels", type=Path, required=True, help="folder of label-map PNGs")
    parser.add_argument("--instances", type=Path, help="folder of instance-map PNGs, paired by sorted order")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--batch-size", type=int, default=4)
    add_link_options(parser)
    add_backend_options(parser)
    parser.set_defaults(func=run)


def find_label_files(labels: Path, instances: Path | None) -> list[tuple[Path, Path | None]]:
    """(label file, instance file or None) pairs, in sorted order."""
    if not labels.is_dir():
        raise FileNotFoundError(f"--labels {labels} is not a folder")
    pngs = sorted(labels.rglob("*.png"))
    cityscapes = [p for p in pngs if p.name.endswith(CITYSCAPES_LABELS)]
    if cityscapes:
        pairs = []
        for path in cityscapes:
            sibling = path.with_name(path.name.replace(CITYSCAPES_LABELS, CITYSCAPES_INSTANCES))
            pairs.append((path, sibling if sibling.is_file() else None))
        return pairs
    if not pngs:
        raise FileNotFoundError(f"no PNG label maps under {labels}")
    if instances is None:
        return [(p, None) for p in pngs]
    instance_files = sorted(instances.rglob("*.png"))
    if len(instance_files) != len(pngs):
        raise ValueError(
            f"{len(pngs)} label maps under {labels} but {len(instance_files)} instance maps under {instances}"
        )
    return list(zip(pngs, instance_files, strict=True))


def run(args: argparse.Namespace) -> int:
    import time

    import numpy as np
    import torch
    from tqdm import tqdm

    from gesco.cli.backend_options import apply_backend, backend_record, backend_sampler, check_backend_options
    from gesco.cli.common import build_link_channel, channel_quality, channel_settings, sampler_config, write_png
    from gesco.datasets.label_files import read_label_map
    from gesco.datasets.preprocessing import read_id_map
    from gesco.evaluation.figures import image_to_rgb
    from gesco.io import output_folder, write_json
    from gesco.link import Link
    from gesco.pretrained import resolve
    from gesco.receiver.pipeline import DiffusionReceiver
    from gesco.receiver.receiver import Receiver
    from gesco.semantics.maps import SemanticMap

    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be positive, got {args.batch_size}")
    check_backend_options(args)
    receiver = DiffusionReceiver.from_pretrained(resolve(args.model))
    pairs = find_label_files(args.labels, args.instances)
    # the backend export is the slow part: only once the inputs are known to be there
    receiver = apply_backend(args, receiver)
    table = receiver.table
    quality = channel_quality(args)
    sampler = backend_sampler(args, sampler_config(args, receiver))
    map_denoiser = args.map_denoiser or receiver.config.map_denoiser
    channel = build_link_channel(args)
    link = Link(channel=channel, receiver=Receiver(receiver, map_denoiser=map_denoiser))
    # images and record.json are built aside and moved into --out together (record.json last)
    with output_folder(args.out, last=["record.json"]) as staging:
        generator = torch.Generator().manual_seed(args.seed)
        started = time.perf_counter()
        written, sigmas = [], []
        for first in tqdm(range(0, len(pairs), args.batch_size), desc="sample", unit="batch"):
            chunk = pairs[first : first + args.batch_size]
            labels = torch.from_numpy(np.stack([read_label_map(p, table) for p, _ in chunk]))
            with_instances = all(i is not None for _, i in chunk)
            instances = torch.from_numpy(np.stack([read_id_map(i) for _, i in chunk])) if with_instances else None
            out = link(
                SemanticMap(labels, table, instances, receiver.config.edge_rule),
                quality,
                generator=generator,
                sampler=sampler,
            )
            sigmas += out.received.sigma.tolist()
            for (path, _), image in zip(chunk, image_to_rgb(out.images), strict=True):
                name = path.name.removesuffix(CITYSCAPES_LABELS).removesuffix(".png")
                written.append(write_png(staging / f"{name}.png", image))
        seconds = time.perf_counter() - started
        record = {
            "quality": {"kind": quality.kind, "value": quality.values[0]},
            "mean_sigma": float(np.mean(sigmas)),
            "channel": args.channel,
            "channel_settings": channel_settings(channel),
            "map_denoiser": map_denoiser,
            "sampler": sampler.to_dict(),
            **backend_record(args, sampler),
            "images": len(written),
            "seconds": round(seconds, 3),
            "seconds_per_image": round(seconds / len(written), 3),
            "model": str(args.model),
            "seed": args.seed,
        }
        write_json(staging / "record.json", record)
    print(f"wrote {len(written)} images to {args.out} ({seconds / len(written):.2f} s per image)")
    return 0
