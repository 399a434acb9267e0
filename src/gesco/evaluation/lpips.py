"""LPIPS (VGG) between a ground-truth image and its regeneration, from weights the user provides.

gesco cannot fetch the LPIPS weights (no downloads at run time), so :func:`load_lpips` takes them from files:

- a state dict in the ``lpips`` package's layout for ``lpips.LPIPS(net="vgg")``: ``net.slice{1..5}.{i}.*``
  (VGG-16 conv layers, keyed by their index in ``torchvision``'s ``vgg16().features``),
  ``lin{0..4}.model.1.weight`` (the learned 1x1 layers) and optionally ``scaling_layer.shift/scale``;
  ``.pth``/``.pt`` (read with ``weights_only=True``) or ``.safetensors``;
- that state dict split over two files, e.g. torchvision's VGG-16 weights (``features.{i}.*``; the classifier is
  ignored) and the ``lpips`` package's ``weights/v0.1/vgg.pth`` (the linear layers only);
- a TorchScript LPIPS: ``model(a, b)`` on images in [-1, 1] returning one distance per pair.

The distance (LPIPS v0.1, Zhang et al. 2018): scale the inputs, take the VGG-16 activations after relu1_2,
relu2_2, relu3_3, relu4_3 and relu5_3, normalise each pixel's feature vector to unit length, square the
difference, weight the channels by the learned non-negative 1x1 layer, average over space, sum over layers.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import torch
from torch import nn

from gesco.io import load_tensors
from gesco.receiver.unet.model import check_state_dict

#: (first, last + 1) indices in torchvision's ``vgg16().features`` of each of the five LPIPS slices.
VGG_SLICES = ((0, 4), (4, 9), (9, 16), (16, 23), (23, 30))
VGG_CHANNELS = (64, 128, 256, 512, 512)
_VGG_CONVS = {
    0: (3, 64),
    2: (64, 64),
    5: (64, 128),
    7: (128, 128),
    10: (128, 256),
    12: (256, 256),
    14: (256, 256),
    17: (256, 512),
    19: (512, 512),
    21: (512, 512),
    24: (512, 512),
    26: (512, 512),
    28: (512, 512),
}
_VGG_POOLS = (4, 9, 16, 23)
#: LPIPS v0.1 input scaling: (x - shift) / scale per RGB channel, x in [-1, 1].
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
_EPS = 1e-10


def _vgg_layer(index: int) -> nn.Module:
    if index in _VGG_CONVS:
        return nn.Conv2d(*_VGG_CONVS[index], kernel_size=3, padding=1)
    if index in _VGG_POOLS:
        return nn.MaxPool2d(2, 2)
    return nn.ReLU()


class _ScalingLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.shift) / self.scale


class _VGGSlices(nn.Module):
    def __init__(self):
        super().__init__()
        for number, (first, end) in enumerate(VGG_SLICES, start=1):
            block = nn.Sequential()
            for index in range(first, end):
                block.add_module(str(index), _vgg_layer(index))
            self.add_module(f"slice{number}", block)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for number in range(1, len(VGG_SLICES) + 1):
            x = getattr(self, f"slice{number}")(x)
            outputs.append(x)
        return outputs


class _ChannelWeights(nn.Module):
    """The learned 1x1 layer of one VGG level (``model.0`` is the dropout the lpips package trains with)."""

    def __init__(self, channels: int):
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class LPIPS(nn.Module):
    """LPIPS v0.1 with a VGG-16 trunk; weights must be loaded (see :meth:`from_state_dict`)."""

    def __init__(self):
        super().__init__()
        self.scaling_layer = _ScalingLayer()
        self.net = _VGGSlices()
        for level, channels in enumerate(VGG_CHANNELS):
            self.add_module(f"lin{level}", _ChannelWeights(channels))
        self.eval()
        self.requires_grad_(False)

    @torch.no_grad()
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """a, b: float (B, 3, H, W) in [-1, 1] -> float32 (B,) distances (0 for identical images)."""
        if a.shape != b.shape or a.dim() != 4 or a.shape[1] != 3:
            raise ValueError(
                f"LPIPS takes two (B, 3, H, W) batches of equal shape, got {tuple(a.shape)}, {tuple(b.shape)}"
            )
        features_a = self.net(self.scaling_layer(a.float()))
        features_b = self.net(self.scaling_layer(b.float()))
        total = torch.zeros(a.shape[0], device=a.device)
        for level, (fa, fb) in enumerate(zip(features_a, features_b)):
            fa = fa / (fa.square().sum(dim=1, keepdim=True).sqrt() + _EPS)
            fb = fb / (fb.square().sum(dim=1, keepdim=True).sqrt() + _EPS)
            total = total + getattr(self, f"lin{level}")((fa - fb).square()).mean(dim=(1, 2, 3))
        return total

    @classmethod
    def from_state_dict(cls, weights: dict[str, torch.Tensor], *, source: str = "LPIPS weights") -> LPIPS:
        """Build from lpips-layout weights; torchvision ``features.{i}.*`` names are accepted for the trunk."""
        renamed = {}
        for name, value in weights.items():
            if name.startswith("classifier."):
                continue
            if name.startswith("features."):
                index = int(name.split(".")[1])
                number = next(n for n, (first, end) in enumerate(VGG_SLICES, 1) if first <= index < end)
                name = f"net.slice{number}.{name.removeprefix('features.')}"
            renamed[name] = value
        renamed.setdefault("scaling_layer.shift", torch.tensor(SHIFT).view(1, 3, 1, 1))
        renamed.setdefault("scaling_layer.scale", torch.tensor(SCALE).view(1, 3, 1, 1))
        with torch.device("meta"):  # no random init of 14.7M weights that are replaced at once
            model = cls()
        check_state_dict({k: v.shape for k, v in model.state_dict().items()}, renamed, source=source)
        model.load_state_dict(renamed, assign=True)
        return model.requires_grad_(False)


class _ScriptedDistance(nn.Module):
    def __init__(self, network: torch.jit.ScriptModule):
        super().__init__()
        self.network = network

    @torch.no_grad()
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.network(a.float(), b.float()).float().reshape(a.shape[0])


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("constants.pkl") or "/code/" in name for name in archive.namelist())


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        return load_tensors(path)
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch.load raises several types for files that are not state dicts
        raise ValueError(
            f"cannot read LPIPS weights from {path} (a torch state dict or safetensors file): {err}"
        ) from err
    if not isinstance(loaded, dict) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise ValueError(f"{path} holds a {type(loaded).__name__}, not a state dict of tensors")
    return loaded


def load_lpips(*paths: str | Path) -> nn.Module:
    """An LPIPS distance ``(a, b) -> (B,)`` from one TorchScript file or one or two weight files."""
    paths = tuple(Path(p) for p in paths)
    if not 1 <= len(paths) <= 2:
        raise ValueError(f"give one or two LPIPS files, got {len(paths)}")
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"no LPIPS weights file at {path}")
    if len(paths) == 1 and _is_torchscript(paths[0]):
        return _ScriptedDistance(torch.jit.load(str(paths[0]), map_location="cpu").eval())
    weights: dict[str, torch.Tensor] = {}
    for path in paths:
        weights.update(_read_state_dict(path))
    return LPIPS.from_state_dict(weights, source=" + ".join(str(p) for p in paths))
