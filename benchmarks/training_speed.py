"""Training throughput, and the loss reached in a fixed wall time, of the receiver under each CPU option (JSON).

Every variant trains the shipped receiver's architecture (with noise-level conditioning) from the same random
initialisation, on the same synthetic batches through the link's channel mode with FDS, for the same wall
time. Then the plain epsilon MSE is measured on one fixed held-out set (its images, timesteps, noise and
channel noise drawn once), in float32, so that every variant, min-SNR weighted or not, is scored alike.
All variants run in one process, so their ratios are comparable on this shared machine:

- precision: float32 or bfloat16 autocast;
- memory format: contiguous or channels_last;
- threads: 1 or 2 intra-op threads;
- a lighter SPADE (hidden width 16 instead of 32);
- loss weighting: uniform or min-SNR-5.

Usage: python benchmarks/training_speed.py [--seconds 90] [--batch-size 8]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
import time

import torch

from gesco.datasets import SyntheticStreetsDataset, collate
from gesco.pretrained import GESCO_RECEIVER, load
from gesco.receiver.diffusion import GaussianDiffusion
from gesco.receiver.noise_level import NoiseConditioned
from gesco.receiver.unet import GescoUNet
from gesco.semantics import SemanticMap
from gesco.training.conditioning import noisy_condition

# Training scenes come from the training seeds; the held-out set from far above them.
HELD_OUT_SEED = 2_000_000
SIGMAS = (0.0, 0.0, 0.2, 0.36, 0.6, 0.9, 1.2)


@dataclasses.dataclass(frozen=True)
class Variant:
    bf16: bool = True
    channels_last: bool = False
    threads: int = 2
    spade_hidden_channels: int = 32
    loss_weighting: str = "uniform"


VARIANTS = {
    "fp32": Variant(bf16=False),
    "bf16": Variant(),
    "bf16+channels_last": Variant(channels_last=True),
    "bf16, 1 thread": Variant(threads=1),
    "bf16, SPADE hidden 16": Variant(spade_hidden_channels=16),
    "bf16, min-SNR-5": Variant(loss_weighting="min_snr"),
}


def conditioned_batch(dataset, start: int, size: int, generator: torch.Generator):
    batch = collate([dataset[i] for i in range(start, start + size)])
    semantic_map = SemanticMap(batch.labels, "cityscapes", batch.instances)
    condition, sigma = noisy_condition(semantic_map, mode="channel", sigmas=SIGMAS, generator=generator)
    return batch.image, condition, sigma


def held_out_set(size: int, base_diffusion: GaussianDiffusion):
    generator = torch.Generator().manual_seed(1)
    dataset = SyntheticStreetsDataset(size, HELD_OUT_SEED, height=64, width=128)
    images, condition, sigma = conditioned_batch(dataset, 0, size, generator)
    t = base_diffusion.sample_timesteps(size, generator=generator)
    noise = torch.randn(images.shape, generator=generator)
    return images, condition, sigma, t, noise


@torch.no_grad()
def held_out_mse(model, diffusion: GaussianDiffusion, held_out, chunk: int = 8) -> float:
    model.eval()
    mse = [
        diffusion.training_loss(NoiseConditioned(model, s), x, t, y, noise=n).mse
        for x, y, s, t, n in zip(*(part.split(chunk) for part in held_out), strict=True)
    ]
    model.train()
    return float(torch.cat(mse).mean())


def train_for(variant: Variant, *, seconds: float, batch_size: int, held_out) -> dict:
    torch.set_num_threads(variant.threads)
    base = load(GESCO_RECEIVER)
    config = base.unet.config.replace(noise_conditioning=True, spade_hidden_channels=variant.spade_hidden_channels)
    diffusion = GaussianDiffusion(base.config.diffusion.replace(loss_weighting=variant.loss_weighting))
    torch.manual_seed(0)
    model = GescoUNet(config).train()
    memory_format = torch.channels_last if variant.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-4)
    dataset = SyntheticStreetsDataset(100_000, 0, height=64, width=128)
    generator = torch.Generator().manual_seed(0)
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if variant.bf16 else contextlib.nullcontext
    steps = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        images, condition, sigma = conditioned_batch(dataset, steps * batch_size, batch_size, generator)
        images, condition = (x.contiguous(memory_format=memory_format) for x in (images, condition))
        with autocast():
            loss = diffusion.training_loss(
                NoiseConditioned(model, sigma),
                images,
                diffusion.sample_timesteps(batch_size, generator=generator),
                condition,
                generator=generator,
            ).loss.mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        steps += 1
    elapsed = time.perf_counter() - started
    model = model.to(memory_format=torch.contiguous_format)
    torch.set_num_threads(2)
    return {
        "steps": steps,
        "samples_per_second": round(steps * batch_size / elapsed, 3),
        "held_out_mse": round(held_out_mse(model, GaussianDiffusion(base.config.diffusion), held_out), 5),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=90.0, help="wall time each variant trains for")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--held-out", type=int, default=64, help="scenes in the held-out loss set")
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=list(VARIANTS))
    args = parser.parse_args()
    held_out = held_out_set(args.held_out, GaussianDiffusion(load(GESCO_RECEIVER).config.diffusion))
    results = {}
    for name in args.variants:
        results[name] = train_for(VARIANTS[name], seconds=args.seconds, batch_size=args.batch_size, held_out=held_out)
        print(f"{name}: {results[name]}", flush=True, file=sys.stderr)
    reference = results.get("fp32") or next(iter(results.values()))
    report = {
        "seconds_per_variant": args.seconds,
        "batch_size": args.batch_size,
        "held_out_scenes": args.held_out,
        "threads_available": torch.get_num_threads(),
        "variants": results,
        "throughput_relative_to_first": {
            k: round(v["samples_per_second"] / reference["samples_per_second"], 2) for k, v in results.items()
        },
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
