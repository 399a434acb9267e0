"""``gesco send``: the transmitter in its own process, talking to ``gesco serve``.

A label map PNG (or a synthetic scene) -> the transmitter's payload -> the simulated channel at the chosen quality
-> a wire message -> POST to the server -> writes into ``--out``: ``regenerated.png`` (what came back),
``received.png`` (the received map, coloured by its strongest class) and ``answer.json`` (the server's metadata:
sigma, map denoiser, sampler, seconds, batch size).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from gesco.cli.common import add_channel_options


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "send",
        help="send a semantic map through the channel to a gesco serve receiver",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--server", default="http://127.0.0.1:8000", help="the server's base URL")
    parser.add_argument("--token", default=os.environ.get("GESCO_SERVE_TOKEN"), help="bearer token (or env var)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--labels", type=Path, help="label map PNG, as stored by the served model's data set")
    source.add_argument("--synthetic", type=int, metavar="SEED", help="a synthetic street scene of this seed")
    parser.add_argument("--instances", type=Path, help="instance map PNG beside --labels (for the edge channel)")
    add_channel_options(parser)
    parser.add_argument("--seed", type=int, default=0, help="seed of the channel noise and the receiver's x_T")
    parser.add_argument("--tag", type=int, default=0, help="request id the server echoes (0 .. 2^64-1)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for the answer")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from gesco.cli.common import build_link_channel, channel_quality, write_png
    from gesco.datasets.label_files import read_label_map
    from gesco.datasets.preprocessing import read_id_map
    from gesco.datasets.synthetic import SyntheticStreets
    from gesco.evaluation.figures import condition_to_rgb
    from gesco.io import write_json
    from gesco.semantics.classes import class_table
    from gesco.semantics.maps import SemanticMap
    from gesco.serve.client import answer_image, get_json, post_message, transmit

    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {args.seed}")
    server = args.server.rstrip("/")
    health = get_json(f"{server}/healthz", timeout=args.timeout)
    table, (height, width) = class_table(health["table"]), health["image_size"]
    if args.synthetic is not None:
        scene = SyntheticStreets(height, width).scene(args.synthetic)
        labels, instances = scene.labels.astype(np.int64), scene.instances.astype(np.int64)
    else:
        labels = read_label_map(args.labels, table)
        instances = None if args.instances is None else read_id_map(args.instances)
        if labels.shape != (height, width):
            raise ValueError(f"{args.labels} is {labels.shape[0]}x{labels.shape[1]}; the server takes {height}x{width}")
    semantic_map = SemanticMap(
        torch.from_numpy(labels), table, None if instances is None else torch.from_numpy(instances)
    )
    message, received = transmit(
        semantic_map,
        build_link_channel(args),
        channel_quality(args),
        channel_name=args.channel,
        seed=args.seed,
        tag=args.tag,
    )
    answer = post_message(f"{server}/v1/regenerate", message, seed=args.seed, token=args.token, timeout=args.timeout)
    if answer["tag"] != str(args.tag):
        raise ValueError(f"the server answered request {answer['tag']}, not this one ({args.tag})")
    write_png(args.out / "regenerated.png", answer_image(answer))
    write_png(args.out / "received.png", condition_to_rgb(received.payload.values, table)[0])
    metadata = {key: value for key, value in answer.items() if key != "image_png"}
    write_json(args.out / "answer.json", {**metadata, "message_bytes": len(message), "server": server})
    print(
        f"sent {len(message)} bytes over {args.channel}; the server regenerated the image in {answer['seconds']:.2f} s "
        f"(sigma {answer['sigma']:.3f}, batch of {answer['batch_size']}): wrote {args.out}/regenerated.png"
    )
    return 0
