"""Image tensors as pictures: the one conversion from the model's [-1, 1] floats to 8-bit RGB.

It sits below every stage so that training previews, evaluation figures and the command line
share it without importing each other.
"""

from __future__ import annotations

import numpy as np
import torch


def image_to_rgb(images: torch.Tensor) -> np.ndarray:
    """float (B, 3, H, W) in [-1, 1] -> uint8 (B, H, W, 3), values outside [-1, 1] clipped.

    >>> image_to_rgb(torch.tensor([-1.0, 0.0, 1.0]).view(1, 3, 1, 1)).tolist()
    [[[[0, 128, 255]]]]
    """
    return ((images.float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()
