"""Training throughput of the shipped receiver's architecture under each CPU option, printed as JSON.

For each variant, a few optimiser steps of the receiver trainer's work (synthetic batch, the link's channel
mode with FDS, the diffusion loss, backward, AdamW) after one warm-up step; samples per second are measured
in the same run for every variant, so their ratios are comparable on this shared machine:

- precision: float32 or bfloat16 autocast;
- memory format: contiguous or channels_last;
- threads: 1 or 2 intra-op threads;
- a lighter SPADE (hidden width 16 instead of 32).

Usage: python benchmarks/training_speed.py [--steps 4] [--batch-size 16]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time

import torch

from gesco.datasets import SyntheticStreetsDataset, collate
from gesco.pretrained import GESCO_RECEIVER, load
from gesco.receiver.diffusion import GaussianDiffusion
from gesco.receiver.noise_level import NoiseConditioned
from gesco.receiver.unet import GescoUNet
from gesco.semantics import SemanticMap
from gesco.training.conditioning import noisy_condition


def measure(config, *, bf16: bool, channels_last: bool, threads: int, steps: int, batch_size: int) -> float:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = GescoUNet(config).train()
    model = model.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    dataset = SyntheticStreetsDataset(batch_size * (steps + 1), 0, height=64, width=128)
    diffusion = GaussianDiffusion(load(GESCO_RECEIVER).config.diffusion)
    generator = torch.Generator().manual_seed(0)
    started = None
    for step in range(steps + 1):
        if step == 1:
            started = time.perf_counter()
        batch = collate([dataset[i] for i in range(step * batch_size, (step + 1) * batch_size)])
        semantic_map = SemanticMap(batch.labels, "cityscapes", batch.instances)
        condition, sigma = noisy_condition(semantic_map, mode="channel", sigmas=[0.0, 0.36, 0.9], generator=generator)
        images = batch.image
        if channels_last:
            images, condition = (x.contiguous(memory_format=torch.channels_last) for x in (images, condition))
        network = NoiseConditioned(model, sigma) if config.noise_conditioning else model
        autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        with autocast:
            loss = diffusion.training_loss(
                network, images, diffusion.sample_timesteps(batch_size, generator=generator), condition
            ).loss.mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return steps * batch_size / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    base = load(GESCO_RECEIVER).unet.config.replace(noise_conditioning=True)
    variants = {
        "fp32": dict(config=base, bf16=False, channels_last=False, threads=2),
        "bf16": dict(config=base, bf16=True, channels_last=False, threads=2),
        "bf16+channels_last": dict(config=base, bf16=True, channels_last=True, threads=2),
        "bf16, 1 thread": dict(config=base, bf16=True, channels_last=False, threads=1),
        "bf16, SPADE hidden 16": dict(
            config=base.replace(spade_hidden_channels=16), bf16=True, channels_last=False, threads=2
        ),
    }
    samples_per_second = {
        name: round(measure(steps=args.steps, batch_size=args.batch_size, **v), 3) for name, v in variants.items()
    }
    print(
        json.dumps(
            {
                "batch_size": args.batch_size,
                "timed_steps": args.steps,
                "samples_per_second": samples_per_second,
                "relative_to_fp32": {
                    k: round(v / samples_per_second["fp32"], 2) for k, v in samples_per_second.items()
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
