"""A grid of samples during training: real image | map | EMA sample, for a few fixed scenes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gesco.images import image_to_rgb
from gesco.io import atomic_save
from gesco.receiver.sampling import sample
from gesco.receiver.unet import GescoUNet
from gesco.semantics.maps import SemanticMap

GRID_SCENES = 4


def write_sample_grid(accelerator, ema, config, diffusion, dataset, table, *, step: int) -> Path:
    """Sample the first scenes of ``dataset`` with the EMA weights and ``config.sampler``; save a PNG and log it."""
    samples = [dataset[i] for i in range(min(GRID_SCENES, len(dataset)))]
    labels = torch.stack([s.labels for s in samples])
    instances = None if samples[0].instances is None else torch.stack([s.instances for s in samples])
    semantic_map = SemanticMap(labels, table, instances, config.data.edge_rule)
    model = ema.copy_to(GescoUNet(config.model)).eval()
    generated = sample(
        model,
        semantic_map.one_hot(),
        config.sampler,
        diffusion=diffusion.config,
        generator=torch.Generator().manual_seed(0),
        progress=False,
    ).sample
    real = image_to_rgb(torch.stack([s.image for s in samples]))
    colour = semantic_map.colorize().permute(0, 2, 3, 1).numpy()
    rows = [np.concatenate(parts, axis=1) for parts in zip(real, colour, image_to_rgb(generated), strict=True)]
    grid = np.concatenate(rows, axis=0)
    path = Path(config.output_dir) / "samples" / f"step-{step:08d}.png"
    atomic_save(path, lambda tmp: Image.fromarray(grid).save(tmp, format="PNG"))
    tracker = accelerator.get_tracker("tensorboard", unwrap=True)
    tracker.add_image("samples", grid, global_step=step, dataformats="HWC")
    return path
