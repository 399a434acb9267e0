"""Architecture of the GESCO/SDM diffusion UNet as one frozen config.

The fields name what the official guided-diffusion flags encode indirectly: attention is placed
by downsample factor ``ds`` (the official ``attention_resolutions="32,16,8"`` at ``image_size=256``
means ``ds`` 8, 16 and 32), and the number of heads follows from ``head_channels``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Self

from gesco.config import Config

#: GroupNorm groups in every norm of the network (the official ``normalization`` and SPADE norms).
NORM_GROUPS = 32

#: How the attention ``qkv`` projection orders its output channels.
#: ``"per_head"``: for each head its q, k, v in turn (guided-diffusion's default "legacy" order);
#: ``"split"``: all q, then all k, then all v (guided-diffusion's ``use_new_attention_order``).
QKV_LAYOUTS = ("per_head", "split")


@dataclasses.dataclass(frozen=True)
class UNetConfig(Config):
    """Hyper-parameters of :class:`~gesco.receiver.unet.GescoUNet`.

    Level ``i`` of the UNet runs at ``1 / 2**i`` of the input resolution with
    ``base_channels * channel_mult[i]`` channels, so the input height and width must be
    divisible by ``2 ** (len(channel_mult) - 1)``.
    """

    base_channels: int = 256
    channel_mult: tuple[int, ...] = (1, 1, 2, 2, 4, 4)
    num_res_blocks: int = 2
    #: Downsample factors (1, 2, 4, ...) whose levels carry self-attention; the middle always does.
    attention_ds: tuple[int, ...] = (8, 16, 32)
    head_channels: int = 64
    #: Channels of the semantic map: one-hot classes plus the instance-edge channel if any.
    label_channels: int = 36
    #: Width of the SPADE norm's shared conv (128 in SPADE, SDM and GESCO).
    spade_hidden_channels: int = 128
    in_channels: int = 3
    #: Output epsilon and the learned-range variance value (2 * in_channels), or epsilon only.
    learn_sigma: bool = True
    dropout: float = 0.0
    #: Down/up-sample with res-blocks (avg-pool / nearest inside), else with strided / nearest+conv.
    resblock_updown: bool = True
    #: Timestep embedding as FiLM scale and shift after the second norm, else added before it.
    scale_shift_norm: bool = True
    qkv_layout: str = "per_head"
    #: Recompute activations in the backward pass (training only) to save memory.
    gradient_checkpointing: bool = False
    #: Condition on the channel's noise level sigma too (gesco's channel-aware receiver): an embedding of sigma
    #: is added to the timestep embedding. False is the paper's (and the official code's) network.
    noise_conditioning: bool = False
    #: Take the classifier-free guidance scale s as an input (a guidance-distilled student, ``gesco
    #: distill-guidance``): one forward gives the guided prediction. False is the usual two-pass network.
    guidance_conditioning: bool = False

    def __post_init__(self) -> None:
        for name in (
            "base_channels",
            "num_res_blocks",
            "head_channels",
            "label_channels",
            "spade_hidden_channels",
            "in_channels",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"UNetConfig.{name} must be a positive int, got {value!r}")
        if not self.channel_mult or any(not isinstance(m, int) or m < 1 for m in self.channel_mult):
            raise ValueError(f"channel_mult must be a non-empty tuple of positive ints, got {self.channel_mult!r}")
        bad_width = [c for c in self.level_channels if c % NORM_GROUPS]
        if bad_width:
            raise ValueError(
                f"level widths {self.level_channels} must be multiples of {NORM_GROUPS} (GroupNorm groups); "
                f"{bad_width} are not: change base_channels or channel_mult"
            )
        reachable = self.level_ds
        if any(ds not in reachable for ds in self.attention_ds):
            raise ValueError(f"attention_ds {self.attention_ds} must be drawn from this UNet's levels {reachable}")
        attended = [self.level_channels[reachable.index(ds)] for ds in self.attention_ds]
        attended.append(self.level_channels[-1])  # the middle block
        if any(c % self.head_channels for c in attended):
            raise ValueError(
                f"head_channels={self.head_channels} must divide the width of every attention level "
                f"{sorted(set(attended))}"
            )
        if self.qkv_layout not in QKV_LAYOUTS:
            raise ValueError(f"qkv_layout must be one of {QKV_LAYOUTS}, got {self.qkv_layout!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")

    @property
    def out_channels(self) -> int:
        return 2 * self.in_channels if self.learn_sigma else self.in_channels

    @property
    def time_embedding_channels(self) -> int:
        return 4 * self.base_channels

    @property
    def level_channels(self) -> tuple[int, ...]:
        return tuple(self.base_channels * m for m in self.channel_mult)

    @property
    def level_ds(self) -> tuple[int, ...]:
        """Downsample factor of each level: 1, 2, 4, ..."""
        return tuple(2**i for i in range(len(self.channel_mult)))

    # Presets ---------------------------------------------------------------------------------

    @classmethod
    def cityscapes(cls) -> Self:
        """The paper's Cityscapes model: 256x512 images, 35 classes + instance edge, 674.7M parameters."""
        return cls(label_channels=36)

    @classmethod
    def coco_stuff(cls) -> Self:
        """SDM/GESCO COCO-Stuff model at 256x256: 183 classes + instance edge."""
        return cls(label_channels=184)

    @classmethod
    def ade20k(cls) -> Self:
        """SDM/GESCO ADE20K model at 256x256: 151 classes, no instance maps."""
        return cls(label_channels=151)

    @classmethod
    def small64(cls) -> Self:
        """The official code's ``image_size=64`` defaults: 64 channels, 46.9M parameters (Cityscapes labels)."""
        return cls(base_channels=64, channel_mult=(1, 2, 3, 4), attention_ds=(4,), head_channels=32)

    @classmethod
    def official_tiny(cls) -> Self:
        """The 3.85M-parameter test model of the reference tensors (32 channels, one res-block per level)."""
        return cls(base_channels=32, channel_mult=(1, 2), num_res_blocks=1, attention_ds=(2,), head_channels=32)

    @classmethod
    def preset(cls, name: str) -> Self:
        """A preset by name (``"cityscapes"``, ``"small64"``, ``"coco-stuff"``, ...; ``-`` and ``_`` alike)."""
        key = name.replace("-", "_")
        if key not in PRESET_NAMES:
            raise ValueError(f"unknown UNet preset {name!r}; choose one of {list(PRESET_NAMES)} or pass a JSON file")
        return getattr(cls, key)()

    @classmethod
    def from_preset_or_file(cls, spec: str | Path) -> Self:
        """A preset name, or the path of a config JSON file / folder written by :meth:`save`."""
        path = Path(spec)
        if path.suffix == ".json" or path.is_dir():
            return cls.load(path)
        return cls.preset(str(spec))


PRESET_NAMES = ("cityscapes", "coco_stuff", "ade20k", "small64", "official_tiny")


def size_factor(config: UNetConfig) -> int:
    """Total downsampling of the UNet: ``2 ** (levels - 1)``; each side of an image must be a multiple of it."""
    return 2 ** (len(config.channel_mult) - 1)


def check_image_size(image_size: tuple[int, int], config: UNetConfig) -> tuple[int, int]:
    """``image_size`` as (height, width) ints, if the UNet of ``config`` can take it.

    Raises:
        ValueError: a side that is not a positive int, or not a multiple of :func:`size_factor`.
    """
    if len(image_size) != 2 or any(
        isinstance(side, bool) or not isinstance(side, int) or side < 1 for side in image_size
    ):
        raise ValueError(f"image_size must be (height, width) in positive ints, got {image_size!r}")
    factor = size_factor(config)
    if any(side % factor for side in image_size):
        height, width = (-(-side // factor) * factor for side in image_size)
        raise ValueError(
            f"image size {image_size[0]}x{image_size[1]} cannot go through this UNet: its "
            f"{len(config.channel_mult)} levels halve the image {len(config.channel_mult) - 1} times, so each side "
            f"must be a multiple of {factor} (e.g. {height}x{width})"
        )
    return int(image_size[0]), int(image_size[1])
