"""``gesco transmit``: one label map (or a synthetic scene) end to end through the link.

Writes into ``--out``: the map, the received map and its FDS output (coloured by the
strongest class), the regenerated image, the original image when one is given, a figure
of them side by side, and ``record.json`` (PSNR, sigma, payload bits, sampler, steps, seconds).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from gesco.cli.common import add_link_options, build_channel, channel_quality, sampler_config, write_png
from gesco.datasets.label_files import read_label_map
from gesco.datasets.preprocessing import read_id_map, read_image
from gesco.datasets.synthetic import SyntheticStreets
from gesco.evaluation.figures import condition_to_rgb, image_to_rgb, save_grid
from gesco.io import atomic_write_text
from gesco.pretrained import resolve
from gesco.receiver.pipeline import DiffusionReceiver
from gesco.receiver.receiver import Receiver
from gesco.semantics.bits import payload_bits
from gesco.semantics.maps import SemanticMap
from gesco.semantics.transmitter import Transmitter


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("transmit", help="send one semantic map through the link and regenerate the image",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="receiver folder (from gesco train), or a shipped model's name")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--labels", type=Path, help="label map PNG, as stored by the model's data set")
    source.add_argument("--synthetic", type=int, metavar="SEED", help="a synthetic street scene of this seed")
    parser.add_argument("--instances", type=Path, help="instance map PNG beside --labels (for the edge channel)")
    parser.add_argument("--image", type=Path, help="the original image, for the payload comparison and the figure")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    add_link_options(parser)
    parser.set_defaults(func=run)


def _load_input(args: argparse.Namespace, receiver: DiffusionReceiver) -> tuple[SemanticMap, np.ndarray | None]:
    table = receiver.table
    if args.synthetic is not None:
        if table.name != "cityscapes":
            raise ValueError(f"synthetic scenes use Cityscapes classes; this model uses {table.name}")
        height, width = receiver.config.image_size
        scene = SyntheticStreets(height, width).scene(args.synthetic)
        labels, instances, image = scene.labels.astype(np.int64), scene.instances.astype(np.int64), scene.image
    else:
        labels = read_label_map(args.labels, table)
        instances = None if args.instances is None else read_id_map(args.instances)
        image = None if args.image is None else np.asarray(read_image(args.image))
    semantic_map = SemanticMap(torch.from_numpy(labels), table,
                               None if instances is None else torch.from_numpy(instances),
                               receiver.config.edge_rule)
    if image is not None and image.shape[:2] != tuple(semantic_map.size):
        raise ValueError(f"image size {image.shape[:2]} differs from the label map size {semantic_map.size}")
    return semantic_map, image


def run(args: argparse.Namespace) -> int:
    receiver = DiffusionReceiver.from_pretrained(resolve(args.model))
    semantic_map, image = _load_input(args, receiver)
    quality = channel_quality(args)
    sampler = sampler_config(args, receiver)
    generator = torch.Generator().manual_seed(args.seed)

    payload = Transmitter()(semantic_map)
    received = build_channel(args)(payload, generator=generator, **quality)
    started = time.perf_counter()
    output = Receiver(lambda condition, generator: receiver(condition, generator=generator, sampler=sampler,
                                                           progress=True),
                      use_fds=not args.no_fds)(received, generator=generator)
    seconds = time.perf_counter() - started

    table = receiver.table
    pictures = {
        "map": semantic_map.colorize().permute(0, 2, 3, 1)[0].numpy(),
        "received": condition_to_rgb(received.payload.values, table)[0],
        "fds" if not args.no_fds else "condition": condition_to_rgb(output.condition, table)[0],
        "regenerated": image_to_rgb(output.images)[0],
    }
    if image is not None:
        pictures = {"original": image, **pictures}
    for name, picture in pictures.items():
        write_png(args.out / f"{name}.png", picture)
    sigma = float(received.sigma[0])
    save_grid(args.out / "figure.png", [list(pictures.values())], list(pictures),
              title=f"gesco transmit: {', '.join(f'{k} {v:g}' for k, v in quality.items())} (sigma {sigma:.3f}), "
                    f"{sampler.sampler} {sampler.steps} steps, guidance {sampler.guidance:g}")
    (bits,) = payload_bits(semantic_map, None if image is None else image[None])
    record = {
        **quality,
        "sigma": sigma,
        "channel": args.channel,
        "fds": not args.no_fds,
        "present_classes": [table.names[i] for i in payload.present_ids(0)],
        "payload_bits": {**asdict(bits), "analog_bits": bits.analog_bits, "per_pixel": bits.per_pixel()},
        "sampler": sampler.sampler,
        "steps": sampler.steps,
        "guidance": sampler.guidance,
        "seconds": round(seconds, 3),
        "model": str(args.model),
        "seed": args.seed,
    }
    atomic_write_text(args.out / "record.json", json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out}/figure.png and record.json: sigma {sigma:.3f}, "
          f"{bits.per_pixel()['analog_map']:.2f} channel uses/pixel, sampled in {seconds:.1f} s")
    return 0
