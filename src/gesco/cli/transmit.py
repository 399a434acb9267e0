"""``gesco transmit``: one label map (or a synthetic scene) end to end through the link.

Writes into ``--out``: the map, the received map and the map denoiser's output (coloured by the
strongest class), the regenerated image, the original image when one is given, a figure
of them side by side, and ``record.json`` (channel, quality, sigma, complex channel uses, payload sizes
in real values, channel uses and bits, sampler, seconds).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from gesco.cli.common import add_link_options
from gesco.constants import MAP_DENOISER_NAMES

if TYPE_CHECKING:
    import numpy as np

    from gesco.receiver.pipeline import DiffusionReceiver
    from gesco.semantics.maps import SemanticMap


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "transmit",
        help="send one semantic map through the link and regenerate the image",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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
    import numpy as np
    import torch

    from gesco.datasets.label_files import read_label_map
    from gesco.datasets.preprocessing import read_id_map, read_image
    from gesco.datasets.synthetic import SyntheticStreets
    from gesco.semantics.maps import SemanticMap

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
    semantic_map = SemanticMap(
        torch.from_numpy(labels),
        table,
        None if instances is None else torch.from_numpy(instances),
        receiver.config.edge_rule,
    )
    if image is not None and image.shape[:2] != tuple(semantic_map.size):
        raise ValueError(f"image size {image.shape[:2]} differs from the label map size {semantic_map.size}")
    return semantic_map, image


def run(args: argparse.Namespace) -> int:
    import time
    from dataclasses import asdict

    import torch

    from gesco.baselines.accounting import payload_sizes
    from gesco.cli.common import (
        build_link_channel,
        channel_label,
        channel_quality,
        channel_settings,
        sampler_config,
        write_png,
    )
    from gesco.evaluation.figures import condition_to_rgb, image_to_rgb, save_grid
    from gesco.io import output_folder, write_json
    from gesco.link import Link
    from gesco.pretrained import resolve
    from gesco.receiver.pipeline import DiffusionReceiver
    from gesco.receiver.receiver import Receiver

    receiver = DiffusionReceiver.from_pretrained(resolve(args.model))
    semantic_map, image = _load_input(args, receiver)
    quality = channel_quality(args)
    sampler = sampler_config(args, receiver)
    map_denoiser = args.map_denoiser or receiver.config.map_denoiser
    channel = build_link_channel(args)
    link = Link(channel=channel, receiver=Receiver(receiver, map_denoiser=map_denoiser))

    # the pictures and record.json are built aside and moved into --out together (record.json last), so a
    # failed run leaves no set that looks complete; an unwritable --out fails here, before sampling
    with output_folder(args.out, last=["record.json"]) as staging:
        started = time.perf_counter()
        out = link(
            semantic_map, quality, generator=torch.Generator().manual_seed(args.seed), sampler=sampler, progress=True
        )
        seconds = time.perf_counter() - started

        table = receiver.table
        pictures = {
            "map": semantic_map.colorize().permute(0, 2, 3, 1)[0].numpy(),
            "received": condition_to_rgb(out.received.payload.values, table)[0],
            # a learned map denoiser is named by a path: its file name is "condition-learned"
            f"condition-{map_denoiser if map_denoiser in MAP_DENOISER_NAMES else 'learned'}": condition_to_rgb(
                out.condition, table
            )[0],
            "regenerated": image_to_rgb(out.images)[0],
        }
        if image is not None:
            pictures = {"original": image, **pictures}
        for name, picture in pictures.items():
            write_png(staging / f"{name}.png", picture)
        sigma = float(out.received.sigma[0])
        save_grid(
            staging / "figure.png",
            [list(pictures.values())],
            list(pictures),
            title=f"gesco transmit: {channel_label(args.channel, channel)}, {quality.describe()} (sigma {sigma:.3f}),"
            f"\nmap denoiser {map_denoiser}, {sampler.sampler} {sampler.steps} steps, guidance {sampler.guidance:g}",
        )
        (sizes,) = payload_sizes(semantic_map, None if image is None else image[None])
        record = {
            "quality": {"kind": quality.kind, "value": quality.values[0]},
            "sigma": sigma,
            "channel": args.channel,
            "channel_settings": channel_settings(channel),
            "map_denoiser": map_denoiser,
            "present_classes": [table.names[i] for i in out.payload.present_ids(0)],
            "complex_channel_uses": int(out.received.complex_channel_uses[0]),
            "payload_sizes": {**asdict(sizes), "per_pixel": sizes.per_pixel()},
            "sampler": sampler.to_dict(),
            "seconds": round(seconds, 3),
            "model": str(args.model),
            "seed": args.seed,
        }
        write_json(staging / "record.json", record)
    print(
        f"wrote {args.out}/figure.png and record.json: sigma {sigma:.3f}, "
        f"{int(out.received.complex_channel_uses[0]) / sizes.pixels:.2f} complex channel uses per pixel, "
        f"sampled in {seconds:.1f} s"
    )
    return 0
