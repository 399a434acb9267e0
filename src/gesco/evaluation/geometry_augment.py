"""Augmentations for the geometry networks that change how a scene looks and keep where everything is.

The detector and the depth network learn from the renderer's images and must read receivers' regenerations,
which keep the layout but draw their own textures. These changes act per region of the Cityscapes instance map.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def region_index(instances: torch.Tensor) -> torch.Tensor:
    """One dense index per (image, instance id) region of int64 (B, H, W) ``instances``, shape (B * H * W,).

    Instance ids are below 34,000, so (image, id) indexes a dense table directly; sorting them for unique ids is
    slower.
    """
    batch = instances.shape[0]
    first = torch.arange(batch, device=instances.device).view(batch, 1, 1) * (int(instances.max()) + 1)
    return (instances + first).flatten()


def region_means(images: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """Every pixel of float (B, 3, H, W) ``images`` replaced by the mean colour of its region, by one scatter."""
    batch, _, height, width = images.shape
    pixels = images.permute(0, 2, 3, 1).reshape(-1, 3)
    sums = pixels.new_zeros(int(region.max()) + 1, 3).index_add_(0, region, pixels)
    counts = pixels.new_zeros(len(sums)).index_add_(0, region, pixels.new_ones(len(region)))
    return (sums / counts.clamp(min=1)[:, None])[region].view(batch, height, width, 3).permute(0, 3, 1, 2)


#: Per image, the chance that :func:`texture_swap` changes it, and per region of a changed image, the chance
#: that it takes a foreign texture.
TEXTURE_SWAP_IMAGE_CHANCE, TEXTURE_SWAP_REGION_CHANCE = 0.5, 0.6
#: Range of the zoom applied to the foreign textures (> 1 magnifies).
TEXTURE_SWAP_ZOOM = (0.5, 2.0)


def texture_swap(images: torch.Tensor, instances: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Give regions another scene's texture, which says nothing about their depth, and keep their outline.

    In half the images, each region (one per thing instance, one per stuff class: :func:`region_index`) at random
    keeps its own mean colour and takes on top of it the detail of another image of the batch (the next-lower
    index, wrapping round), zoomed by 0.5-2x (> 1 magnifies) and shifted at random. The detail is that image's
    colour minus its whole-image mean, so a region takes the other scene's texture together with its local shifts
    of brightness and colour (a patch of sky on a façade makes it brighter).

    images: float (B, 3, H, W) in [-1, 1] with B >= 2; instances: int64 (B, H, W) Cityscapes instance ids.
    Returns the images clamped to [-1, 1]. Why: the renderer's façades carry windows that shrink with distance, and
    a depth network trained on them reads depth from that texture (delta1 0.95 on buildings). A receiver draws
    windows of its own at sizes unrelated to depth, and the network's delta1 on its buildings drops to 0.60 (PSNR
    10), which is most of the gap between rendered and regenerated images. Flattening regions
    (:func:`~gesco.evaluation.depth_training.appearance_augment`) removes the cue but never shows the network a
    misleading one. Measured on 200 held-out scenes and the channel-aware receiver's regenerations at PSNR 10, it
    costs the rendered images more than it gains on the regenerations (depth delta1 0.937 -> 0.893 and 0.816 ->
    0.818, pixels pooled; detector AP50 0.847 -> 0.828 and 0.522 -> 0.501), so the shipped networks train without
    it.

    Raises:
        ValueError: a batch of one image, which has no other image to take a texture from.
    """
    batch, _, height, width = images.shape
    if batch < 2:
        raise ValueError(f"texture_swap takes textures from other images of the batch: needs 2 or more, got {batch}")
    # The foreign image, resampled through a random zoom and shift (reflected at the borders).
    low, high = TEXTURE_SWAP_ZOOM
    zoom = low * (high / low) ** torch.rand(batch, generator=generator)
    shift = 2 * torch.rand(batch, 2, generator=generator) - 1
    theta = torch.zeros(batch, 2, 3)  # built on the CPU from the generator's draws, then moved to the images
    theta[:, 0, 0], theta[:, 1, 1], theta[:, :, 2] = 1 / zoom, 1 / zoom, shift
    grid = F.affine_grid(theta.to(images), [batch, 3, height, width], align_corners=False)
    foreign = F.grid_sample(images.roll(1, dims=0), grid, padding_mode="reflection", align_corners=False)
    detail = foreign - foreign.mean(dim=(2, 3), keepdim=True)
    region = region_index(instances)
    swapped = torch.rand(int(region.max()) + 1, generator=generator) < TEXTURE_SWAP_REGION_CHANCE
    chosen = (torch.rand(batch, generator=generator) < TEXTURE_SWAP_IMAGE_CHANCE).view(batch, 1, 1)
    where = (swapped.to(region.device)[region].view(batch, height, width) & chosen.to(region.device)).unsqueeze(1)
    return torch.where(where, region_means(images, region) + detail, images).clamp(-1, 1)
