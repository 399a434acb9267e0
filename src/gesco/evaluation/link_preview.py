"""`gesco data preview`: synthetic scenes through the transmitter, the channel at several PSNR labels, and FDS."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from gesco.channel.quality import ChannelQuality
from gesco.datasets.synthetic import SyntheticStreets
from gesco.evaluation.figures import condition_to_rgb, save_grid
from gesco.link import Link
from gesco.receiver.receiver import Receiver
from gesco.semantics.classes import class_table
from gesco.semantics.maps import SemanticMap

PREVIEW_PSNRS = (100, 10, 5, 1)


def write_link_preview(
    out: str | Path,
    *,
    scenes: int = 3,
    psnrs: Sequence[float] = PREVIEW_PSNRS,
    seed: int = 1_000_000,
    size: tuple[int, int] = (64, 128),
) -> Path:
    """One row per scene: image | map | received map and its FDS output at each PSNR label.

    Received and filtered maps are shown by their strongest class channel (edges in white).
    """
    table = class_table("cityscapes")
    generator = SyntheticStreets(height=size[0], width=size[1])
    received_link, filtered_link = Link(receiver=Receiver(None, map_denoiser="none")), Link()
    noise = torch.Generator().manual_seed(seed)
    rows = []
    for index in range(scenes):
        scene = generator.scene(seed + index)
        semantic_map = SemanticMap(
            torch.from_numpy(scene.labels).long(), table, torch.from_numpy(scene.instances).long()
        )
        row = [scene.image, semantic_map.colorize().permute(0, 2, 3, 1)[0].numpy()]
        for psnr in psnrs:
            # The same draws for both views: the filtered map is the FDS of the received one shown beside it.
            state = noise.get_state()
            received = received_link(semantic_map, ChannelQuality.psnr_label(psnr), generator=noise).condition
            noise.set_state(state)
            filtered = filtered_link(semantic_map, ChannelQuality.psnr_label(psnr), generator=noise).condition
            row += [condition_to_rgb(received, table)[0], condition_to_rgb(filtered, table)[0]]
        rows.append(row)
    titles = ["image", "semantic map"]
    for psnr in psnrs:
        titles += [f"received, PSNR {psnr:g}", f"FDS, PSNR {psnr:g}"]
    return save_grid(
        out,
        rows,
        titles,
        row_titles=[f"seed {seed + i}" for i in range(scenes)],
        title="gesco: semantic map -> AWGN channel (paper PSNR labels) -> fast denoising (FDS)",
    )
