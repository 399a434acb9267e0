"""Load on ``gesco serve``: concurrent clients on loopback against the same receiver's offline batch throughput.

Starts ``gesco serve`` in its own process (API only), measures the receiver's offline throughput in this
process first (batches of ``--max-batch``, the same sampler), then runs each client count in turn: every client
sends ``--requests`` messages one after the other (or until ``--seconds`` pass) and checks that each answer is its
own image: the tag it sent, and of all the expected images (computed offline, one per scene) the nearest is its
own. Prints one JSON object: images/s against offline, p50 / p99 latency, peak server RSS, errors, mismatches.

    python benchmarks/serve_load.py --steps 4 --clients 1 8 32 --requests 2

Not a timed test: numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import torch

from gesco.channel.quality import ChannelQuality
from gesco.channel.registry import build_channel
from gesco.datasets.synthetic import SyntheticStreets
from gesco.images import image_to_rgb
from gesco.pretrained import resolve
from gesco.receiver.map_denoisers import build_map_denoiser
from gesco.receiver.noise_level import received_sigma
from gesco.receiver.pipeline import DiffusionReceiver
from gesco.semantics.maps import SemanticMap
from gesco.serve.client import ServerAnswerError, answer_image, post_message, transmit
from gesco.serve.wire import decode


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def messages(receiver: DiffusionReceiver, count: int, quality: ChannelQuality) -> list[bytes]:
    """One wire message per scene; message i carries tag i and is regenerated from seed i."""
    height, width = receiver.config.image_size
    scenes = SyntheticStreets(height, width)
    out = []
    for i in range(count):
        scene = scenes.scene(1_000_000 + i)
        semantic_map = SemanticMap(
            torch.from_numpy(scene.labels.astype(np.int64)),
            receiver.table,
            torch.from_numpy(scene.instances.astype(np.int64)),
            receiver.config.edge_rule,
        )
        message, _ = transmit(semantic_map, build_channel("awgn"), quality, channel_name="awgn", seed=i, tag=i)
        out.append(message)
    return out


def offline(receiver: DiffusionReceiver, sampler, data: list[bytes], batch: int) -> tuple[np.ndarray, float]:
    """The expected images of ``data`` (as the server makes them: the receiver's map denoiser, x_T from the
    request's seed) and the offline images/s of the whole path in batches of ``batch``."""
    denoiser = build_map_denoiser(receiver.config.map_denoiser)
    height, width = receiver.config.image_size
    images = []
    started = time.perf_counter()
    for first in range(0, len(data), batch):
        received = [decode(message).to_received() for message in data[first : first + batch]]
        condition = torch.cat([denoiser(r) for r in received])
        sigma = torch.cat([received_sigma(r, "channel") for r in received])
        x_T = torch.cat(
            [
                torch.randn(1, 3, height, width, generator=torch.Generator().manual_seed(first + i))
                for i in range(len(received))
            ]
        )
        images.append(image_to_rgb(receiver(condition, x_T=x_T, sampler=sampler, sigma=sigma)))
    return np.concatenate(images), len(data) / (time.perf_counter() - started)


def peak_rss(pid: int) -> int:
    """The process's peak resident set (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def load(url: str, data: list[bytes], expected: np.ndarray, clients: int, requests: int, seconds: float) -> dict:
    latencies, errors, mismatched = [], [], 0
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    flat = expected.reshape(len(expected), -1).astype(np.float32)

    def client(index: int) -> None:
        nonlocal mismatched
        for k in range(requests):
            if time.monotonic() > deadline:
                return
            tag = (index * requests + k) % len(data)
            started = time.perf_counter()
            try:
                answer = post_message(f"{url}/v1/regenerate", data[tag], seed=tag, timeout=seconds + 600)
            except (ServerAnswerError, OSError) as err:
                with lock:
                    errors.append(str(err)[:200])
                continue
            latency = time.perf_counter() - started
            image = answer_image(answer).reshape(-1).astype(np.float32)
            nearest = int(np.abs(flat - image).mean(axis=1).argmin())
            with lock:
                latencies.append(latency)
                mismatched += answer["tag"] != str(tag) or nearest != tag

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    return {
        "clients": clients,
        "images": len(latencies),
        "seconds": round(wall, 2),
        "images_per_second": round(len(latencies) / wall, 3),
        "latency_p50_s": round(float(np.percentile(latencies, 50)), 3) if latencies else None,
        "latency_p99_s": round(float(np.percentile(latencies, 99)), 3) if latencies else None,
        "errors": len(errors),
        "error_examples": errors[:3],
        "mismatched": mismatched,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="synthetic-streets-64x128")
    parser.add_argument("--steps", type=int, default=4, help="sampler steps (a reduced sampler keeps this short)")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--requests", type=int, default=2, help="requests per client")
    parser.add_argument("--seconds", type=float, default=300, help="no client starts a request after this long")
    parser.add_argument(
        "--max-batch", type=int, default=8, help="the server's --max-batch (its default 8) and the offline batch"
    )
    parser.add_argument("--psnr", type=float, default=10)
    args = parser.parse_args()

    receiver = DiffusionReceiver.from_pretrained(resolve(args.model))
    sampler = receiver.config.sampler.replace(steps=args.steps)
    data = messages(receiver, max(args.clients) * args.requests, ChannelQuality.psnr_label(args.psnr))
    expected, offline_rate = offline(receiver, sampler, data, args.max_batch)

    port = free_port()
    command = [sys.executable, "-m", "gesco.cli.main", "serve", "--model", args.model, "--no-page"]
    command += ["--port", str(port), "--steps", str(args.steps), "--max-batch", str(args.max_batch)]
    command += ["--max-queue", str(max(64, max(args.clients))), "--log-level", "warning"]
    server = subprocess.Popen(command, env={**os.environ, "GESCO_SERVE_TOKEN": ""})
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(1200):
            try:
                urllib.request.urlopen(f"{url}/healthz", timeout=2).close()
                break
            except OSError:
                time.sleep(0.5)
        post_message(f"{url}/v1/regenerate", data[0], seed=0)  # warm-up
        levels = [load(url, data, expected, c, args.requests, args.seconds) for c in args.clients]
        rss = peak_rss(server.pid)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(120)
    for level in levels:
        level["vs_offline"] = round(level["images_per_second"] / offline_rate, 3)
    print(
        json.dumps(
            {
                "model": args.model,
                "sampler": sampler.to_dict(),
                "offline_images_per_second": round(offline_rate, 3),
                "offline_batch": args.max_batch,
                "server_peak_rss_mb": round(rss / 2**20, 1),
                "levels": levels,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
