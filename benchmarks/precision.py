"""float32 against bfloat16 autocast for the shipped receiver: speed, epsilon drift and image drift, as JSON.

The numbers behind ``autocast_dtype="auto"`` (``gesco.receiver.guidance.default_autocast_name``), in one run:

- one guided forward (the conditional and unconditional pass as one batch of 2, as the sampler runs it) of the
  shipped GESCO receiver at its 64x128 size, median seconds in each precision;
- the drift of the network's epsilon: max and mean absolute difference between the two precisions on held-out
  scenes noised to timesteps 999, 500, 100 and 10, for the conditional output and for the guided one (guidance
  scale of the model, which multiplies the difference of the two passes), beside the epsilon's own std;
- what reaches the user: the model's own sampler from the same x_T and noise in both precisions, the largest
  pixel difference in grey levels, the share of pixels the shipped segmenter labels alike, and the mIoU of each
  set against the transmitted maps (the mIoU of ``gesco evaluate`` and ``gesco demo``).

Usage: python benchmarks/precision.py [--scenes 4] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch

import gesco.pretrained
from gesco.constants import EVALUATION_SEED_OFFSET
from gesco.datasets.base import collate
from gesco.datasets.synthetic import SyntheticStreetsDataset
from gesco.evaluation.metrics import EvaluationClasses, set_miou
from gesco.receiver.diffusion import GaussianDiffusion
from gesco.receiver.guidance import call_denoiser, default_autocast_name, guided_output
from gesco.receiver.sampling import sample
from gesco.semantics.maps import SemanticMap
from gesco.semantics.transmitter import Transmitter

PRECISIONS = {"float32": None, "bfloat16": torch.bfloat16}
TIMESTEPS = (999, 500, 100, 10)


def clean_conditions(receiver, batch) -> torch.Tensor:
    """The transmitted maps of a batch as conditioning maps (no channel noise): untransmitted channels 0."""
    semantic_map = SemanticMap(batch.labels, receiver.table, batch.instances, receiver.config.edge_rule)
    payload = Transmitter()(semantic_map)
    return payload.values * payload.transmitted[:, :, None, None].to(payload.values.dtype)


def forward_seconds(model, x, t, y, dtype, repeats: int) -> float:
    call_denoiser(model, x, t, y, autocast_dtype=dtype)  # warm-up: first calls allocate and pick kernels
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call_denoiser(model, x, t, y, autocast_dtype=dtype)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=int, default=4, help="held-out synthetic scenes (default 4)")
    parser.add_argument("--repeats", type=int, default=5, help="timed forwards per precision (default 5)")
    args = parser.parse_args()
    if args.scenes < 1 or args.repeats < 1:
        raise SystemExit("--scenes and --repeats must be positive")
    receiver = gesco.pretrained.load(gesco.pretrained.GESCO_RECEIVER)
    segmenter = gesco.pretrained.load(gesco.pretrained.SEGMENTER)
    model, config = receiver.unet.eval(), receiver.config
    height, width = config.image_size
    dataset = SyntheticStreetsDataset(args.scenes, EVALUATION_SEED_OFFSET, height=height, width=width)
    batch = collate([dataset[i] for i in range(args.scenes)])
    y = clean_conditions(receiver, batch)
    generator = torch.Generator().manual_seed(0)

    # 1. One guided forward (batch of 2: conditional + unconditional) of one image.
    x1, t1 = torch.randn(1, 3, height, width, generator=generator), torch.full((1,), 500)
    pair = (torch.cat([x1, x1]), torch.cat([t1, t1]), torch.cat([y[:1], torch.zeros_like(y[:1])]))
    seconds = {name: forward_seconds(model, *pair, dtype, args.repeats) for name, dtype in PRECISIONS.items()}

    # 2. Epsilon drift on noised held-out images.
    process = GaussianDiffusion(config.diffusion)
    scale = config.sampler.guidance
    drift = {}
    for step in TIMESTEPS:
        t = torch.full((args.scenes,), step)
        x_t = process.q_sample(batch.image, t, torch.randn(batch.image.shape, generator=generator))
        eps = {name: call_denoiser(model, x_t, t, y, autocast_dtype=dtype)[:, :3] for name, dtype in PRECISIONS.items()}
        guided = {
            name: guided_output(model, x_t, t, y, scale=scale, autocast_dtype=dtype)[:, :3]
            for name, dtype in PRECISIONS.items()
        }
        difference, guided_difference = (
            (eps["bfloat16"] - eps["float32"]).abs(),
            (guided["bfloat16"] - guided["float32"]).abs(),
        )
        drift[str(step)] = {
            "eps_std_fp32": round(float(eps["float32"].std()), 4),
            "eps_max_abs_diff": round(float(difference.max()), 5),
            "eps_mean_abs_diff": round(float(difference.mean()), 5),
            "guided_eps_max_abs_diff": round(float(guided_difference.max()), 5),
            "guided_eps_mean_abs_diff": round(float(guided_difference.mean()), 5),
        }

    # 3. Whole samples with the model's own sampler: same x_T, same per-step noise.
    x_T = torch.randn(batch.image.shape, generator=generator)
    images, sampling_seconds = {}, {}
    for name in PRECISIONS:
        started = time.perf_counter()
        images[name] = sample(
            model,
            y,
            config.sampler.replace(autocast_dtype=name),
            diffusion=config.diffusion,
            generator=torch.Generator().manual_seed(1),
            x_T=x_T,
            progress=False,
        ).sample
        sampling_seconds[name] = time.perf_counter() - started
    grey = (images["bfloat16"].clamp(-1, 1) - images["float32"].clamp(-1, 1)).abs() * 127.5
    classes = EvaluationClasses.from_table(receiver.table)
    labels = {name: segmenter.predict(image) for name, image in images.items()}
    print(
        json.dumps(
            {
                "benchmark": "shipped receiver, float32 vs bfloat16 autocast",
                "model": gesco.pretrained.GESCO_RECEIVER,
                "image_size": [height, width],
                "torch": torch.__version__,
                "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                "auto_on_this_cpu": default_autocast_name("cpu"),
                "threads": torch.get_num_threads(),
                "cpu_count": os.cpu_count(),
                "guided_forward_seconds": {name: round(s, 4) for name, s in seconds.items()},
                "guided_forward_speedup_bf16": round(seconds["float32"] / seconds["bfloat16"], 2),
                "eps_drift_by_timestep": drift,
                "sampler": f"{config.sampler.sampler} {config.sampler.steps} steps, guidance {scale:g}",
                "scenes": args.scenes,
                "sampling_seconds": {name: round(s, 2) for name, s in sampling_seconds.items()},
                "image_max_abs_diff_grey_levels": round(float(grey.max()), 2),
                "image_mean_abs_diff_grey_levels": round(float(grey.mean()), 3),
                "segmenter_label_agreement": round(float((labels["bfloat16"] == labels["float32"]).float().mean()), 4),
                "miou_vs_transmitted_map": {
                    name: round(set_miou(labels[name], batch.labels, classes), 4) for name in images
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
