r"""Exponential moving average of the weights, with a warm-up for short runs.

After the n-th update (n = 0, 1, ...) of the model weights theta:

.. math::

    \bar\theta \leftarrow d_n \bar\theta + (1 - d_n) \theta, \qquad
    d_n = \min\left(d, \frac{1 + n}{10 + n}\right) \text{ (warm-up) or } d_n = d.

A fixed decay of 0.999 lags badly over a CPU run of ~2k steps (the EMA weights then carry
mostly the random init); the warm-up decay follows the weights closely early on and reaches
the target decay later. Integer buffers (batch-norm counters) are copied, not averaged.
"""

from __future__ import annotations

import torch
from torch import nn


class EMA:
    def __init__(self, model: nn.Module, *, decay: float = 0.9999, warmup: bool = True):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.warmup = warmup
        self.updates = 0
        self.shadow = {k: v.detach().clone().float() for k, v in model.state_dict().items()}

    def current_decay(self) -> float:
        if not self.warmup:
            return self.decay
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        decay = self.current_decay()
        for name, value in model.state_dict().items():
            shadow = self.shadow[name]
            if value.dtype.is_floating_point:
                shadow.lerp_(value.detach().float(), 1.0 - decay)
            else:
                shadow.copy_(value)
        self.updates += 1

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.shadow)

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> nn.Module:
        """Load the averaged weights into ``model`` (each cast to the dtype the model holds) and return it."""
        own = model.state_dict()
        model.load_state_dict({k: v.to(own[k].dtype) for k, v in self.shadow.items()})
        return model

    def load_state_dict(self, tensors: dict[str, torch.Tensor], updates: int) -> None:
        missing = sorted(set(self.shadow) - set(tensors))
        if missing:
            raise ValueError(f"EMA weights are missing {len(missing)} tensors, e.g. {missing[:3]}")
        self.shadow = {k: tensors[k].float().clone() for k in self.shadow}
        self.updates = updates
