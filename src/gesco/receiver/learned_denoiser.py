"""A learned map denoiser: the received map (and its noise level) -> class and edge probabilities.

FDS (3x3 mean, then 3x3 max) is blind to the noise level and to which classes compete at a pixel. This small
network starts from FDS (its logits are the FDS output plus a learned correction, zero at initialisation), sees
the transmitted channels, the mask of what was sent and sigma, and predicts per pixel a
distribution over the transmitted classes (a softmax over them only: the side information says which classes
exist) and the probability of an instance edge. It fits the receiver's map-denoiser slot
(``Receiver(generator, map_denoiser=LearnedMapDenoiser.from_pretrained(folder))``); its argmax is a
segmentation of the received map. Trained through the link by ``gesco train-map-denoiser``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from gesco.channel.base import Received, check_finite
from gesco.config import Config
from gesco.receiver.map_denoisers import fast_denoise
from gesco.semantics.classes import class_table
from gesco.weights_folder import WeightsFolder


@dataclass(frozen=True)
class MapDenoiserConfig(Config):
    """Attributes:
    class_table: the table of the maps it denoises (its channel count fixes the network's input).
    hidden_channels: width of every hidden layer.
    dilations: one 3x3 conv per entry, at that dilation (1, 2, 4, ...: the receptive field grows fast).
    residual: add each hidden layer's input to its output (from the second layer on), so deep stacks train.
    skip: what the zero-initialised correction is added to: ``"fds"`` (the paper's denoiser, so the untrained
        network is FDS) or ``"received"`` (the received map itself: exact on clean maps, where FDS's 3x3 max
        widens thin classes).
    fds_input: also feed the FDS output to the network as features.
    output: what the receiver's slot gets: ``"probabilities"`` (softmax over the transmitted classes, sigmoid
        edge) or ``"one_hot"`` (the argmax class and the thresholded edge: a clean-looking map, the input a
        generator trained on clean maps expects).
    """

    class_table: str = "cityscapes"
    hidden_channels: int = 48
    dilations: tuple[int, ...] = (1, 2, 4, 8, 1)
    residual: bool = False
    skip: str = "fds"
    fds_input: bool = False
    output: str = "probabilities"

    def __post_init__(self) -> None:
        class_table(self.class_table)
        if self.hidden_channels < 1 or not self.dilations or min(self.dilations) < 1:
            raise ValueError("hidden_channels must be positive and dilations a non-empty tuple of positive ints")
        if self.skip not in ("fds", "received"):
            raise ValueError(f"skip must be 'fds' or 'received', got {self.skip!r}")
        if self.output not in ("probabilities", "one_hot"):
            raise ValueError(f"output must be 'probabilities' or 'one_hot', got {self.output!r}")


class LearnedMapDenoiser(WeightsFolder, nn.Module):
    """Received map -> probabilities (B, C, H, W): softmax over the transmitted classes, sigmoid edge, 0 elsewhere.

    Input features: the transmitted values (untransmitted channels 0), the transmitted mask as planes, sigma
    as a plane, so one network serves every noise level, and optionally the FDS output.
    """

    config_class = MapDenoiserConfig

    def __init__(self, config: MapDenoiserConfig | None = None):
        super().__init__()
        self.config = config = config or MapDenoiserConfig()
        self.table = class_table(config.class_table)
        channels = self.table.num_channels
        layers: list[nn.Module] = []
        width = (3 if config.fds_input else 2) * channels + 1
        for dilation in config.dilations:
            layers += [nn.Conv2d(width, config.hidden_channels, 3, padding=dilation, dilation=dilation), nn.GELU()]
            width = config.hidden_channels
        self.body = nn.Sequential(*layers)
        # Residual form: the logits start as the skip map (scaled), so the untrained network is FDS or the plain
        # argmax, and training learns the correction (the zero-initialised head) from the raw map and sigma.
        self.head = nn.Conv2d(width, channels, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.skip_scale = nn.Parameter(torch.tensor(4.0))

    def logits(self, values: torch.Tensor, transmitted: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """Per-channel logits (B, C, H, W); untransmitted class channels at -inf."""
        if values.dim() != 4 or values.shape[1] != self.table.num_channels or transmitted.shape != values.shape[:2]:
            raise ValueError(
                f"expected a (B, {self.table.num_channels}, H, W) map and a (B, C) mask, got "
                f"{tuple(values.shape)} and {tuple(transmitted.shape)}"
            )
        check_finite("received map", values)
        mask = transmitted[:, :, None, None].to(values.dtype).expand_as(values)
        plane = sigma.to(values.dtype)[:, None, None, None].expand(-1, 1, *values.shape[2:])
        sent = values * mask
        fds = fast_denoise(values, transmitted)
        features = [sent, mask, plane, fds] if self.config.fds_input else [sent, mask, plane]
        skip = fds if self.config.skip == "fds" else sent
        logits = self.head(self.hidden(torch.cat(features, dim=1))) + self.skip_scale * skip
        classes = self.table.num_classes
        blocked = ~transmitted[:, :classes, None, None].expand_as(logits[:, :classes])
        return torch.cat([logits[:, :classes].masked_fill(blocked, float("-inf")), logits[:, classes:]], dim=1)

    def hidden(self, features: torch.Tensor) -> torch.Tensor:
        layers = list(self.body)
        for index in range(0, len(layers), 2):
            out = layers[index + 1](layers[index](features))
            features = features + out if self.config.residual and index > 0 else out
        return features

    def probabilities(self, values: torch.Tensor, transmitted: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        logits = self.logits(values, transmitted, sigma)
        classes = self.table.num_classes
        parts = [F.softmax(logits[:, :classes], dim=1)]
        if self.table.has_edge:
            parts.append(torch.sigmoid(logits[:, classes:]) * transmitted[:, classes:, None, None].to(logits.dtype))
        return torch.cat(parts, dim=1)

    def forward(self, received: Received) -> torch.Tensor:
        payload = received.payload
        probabilities = self.probabilities(
            payload.values, payload.transmitted, received.sigma.to(payload.values.device)
        )
        if self.config.output == "probabilities":
            return probabilities
        classes = self.table.num_classes
        one_hot = F.one_hot(probabilities[:, :classes].argmax(1), classes).permute(0, 3, 1, 2)
        parts = [one_hot.to(probabilities.dtype)]
        if self.table.has_edge:
            parts.append((probabilities[:, classes:] > 0.5).to(probabilities.dtype))
        return torch.cat(parts, dim=1)


def map_denoiser_loss(
    model: LearnedMapDenoiser,
    values: torch.Tensor,
    transmitted: torch.Tensor,
    sigma: torch.Tensor,
    labels: torch.Tensor,
    edges: torch.Tensor | None,
    *,
    dice_weight: float = 0.0,
) -> torch.Tensor:
    """Cross-entropy of the class logits against the label map, plus BCE of the edge logit against the edges,
    plus ``dice_weight`` times the soft Dice loss averaged over the classes in the batch (mIoU counts classes,
    cross-entropy counts pixels: the Dice term keeps poles and signs from being traded for road)."""
    logits = model.logits(values, transmitted, sigma)
    classes = model.table.num_classes
    class_logits = logits[:, :classes]
    loss = F.cross_entropy(class_logits, labels)
    if dice_weight:
        probabilities = F.softmax(class_logits, dim=1)
        target = F.one_hot(labels, classes).permute(0, 3, 1, 2).to(probabilities.dtype)
        overlap = (probabilities * target).sum((0, 2, 3))
        total = probabilities.sum((0, 2, 3)) + target.sum((0, 2, 3))
        present = target.sum((0, 2, 3)) > 0
        dice = 2 * overlap[present] / total[present].clamp_min(1e-6)
        loss = loss + dice_weight * (1 - dice.mean())
    if edges is not None:
        loss = loss + F.binary_cross_entropy_with_logits(logits[:, classes], edges.float())
    return loss
