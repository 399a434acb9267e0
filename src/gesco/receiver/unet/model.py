"""The GESCO/SDM diffusion UNet: an image-only encoder and a SPADE-conditioned middle and decoder.

Data flow (level ``i`` runs at ``1 / 2**i`` of the input size)::

    x ─ input_conv ─ encoder[0] ─ ... ─ encoder[L-1] ─ middle ─ decoder[L-1] ─ ... ─ decoder[0] ─ out
                       │ skips ──────────────────────────────────────────────────────────▲
    t ─ time_embedding ─► every res-block (FiLM scale/shift)
    y (label map) ─────► every SPADE norm of the middle and decoder

A checkpoint folder holds ``config.json`` (:class:`UNetConfig`) and ``model.safetensors``.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from gesco.receiver.unet.attention import AttentionBlock
from gesco.receiver.unet.blocks import (
    Downsample,
    GroupNorm32,
    GuidanceScaleEmbedding,
    NoiseLevelEmbedding,
    ResBlock,
    TimestepEmbedding,
    Upsample,
    zero_init,
)
from gesco.receiver.unet.config import UNetConfig
from gesco.weights_folder import WEIGHTS_NAME, StateDictMismatchError, WeightsFolder, check_state_dict

# The weight-folder names stay importable from here (gesco.receiver.unet re-exports them).
__all__ = ["DEFAULT_MEMORY_FORMAT", "WEIGHTS_NAME", "GescoUNet", "StateDictMismatchError", "check_state_dict"]

#: Layout of the conv weights after construction and loading: on CPU, oneDNN runs this UNet about 10%
#: faster in fp32 and 25% faster under bf16 autocast with NHWC weights than with NCHW ones.
#: ``model.to(memory_format=torch.contiguous_format)`` switches back; any input layout works either way.
DEFAULT_MEMORY_FORMAT = torch.channels_last


class EncoderLevel(nn.Module):
    """``num_res_blocks`` image-only res-blocks (each followed by attention if the level has it),
    then a downsampler unless this is the deepest level."""

    def __init__(self, config: UNetConfig, level: int, in_channels: int) -> None:
        super().__init__()
        width = config.level_channels[level]
        block_widths = [in_channels] + [width] * config.num_res_blocks
        self.res_blocks = nn.ModuleList(
            ResBlock(c_in, width, **_res_block_options(config, label_conditioned=False)) for c_in in block_widths[:-1]
        )
        self.attentions = _attentions(config, level, width, config.num_res_blocks)
        self.downsample: nn.Module | None = None
        if level < len(config.channel_mult) - 1:
            self.downsample = (
                ResBlock(width, width, resample="down", **_res_block_options(config, label_conditioned=False))
                if config.resblock_updown
                else Downsample(width)
            )


class MiddleBlock(nn.Module):
    """SPADE res-block, attention, SPADE res-block at the deepest level."""

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        width = config.level_channels[-1]
        options = _res_block_options(config, label_conditioned=True)
        self.res_block_in = ResBlock(width, width, **options)
        self.attention = AttentionBlock(width, head_channels=config.head_channels, qkv_layout=config.qkv_layout)
        self.res_block_out = ResBlock(width, width, **options)


class DecoderLevel(nn.Module):
    """``num_res_blocks + 1`` SPADE res-blocks, each fed the concatenation of the running features and
    one encoder skip (attention after each if the level has it), then an upsampler unless level 0."""

    def __init__(self, config: UNetConfig, level: int, in_channels: int, skip_channels: list[int]) -> None:
        super().__init__()
        width = config.level_channels[level]
        options = _res_block_options(config, label_conditioned=True)
        running = [in_channels] + [width] * config.num_res_blocks
        pairs = zip(running, skip_channels, strict=True)
        self.res_blocks = nn.ModuleList(ResBlock(c + s, width, **options) for c, s in pairs)
        self.attentions = _attentions(config, level, width, config.num_res_blocks + 1)
        self.upsample: nn.Module | None = None
        if level > 0:
            self.upsample = (
                ResBlock(width, width, resample="up", **options) if config.resblock_updown else Upsample(width)
            )


def _res_block_options(config: UNetConfig, *, label_conditioned: bool) -> dict:
    return {
        "time_channels": config.time_embedding_channels,
        "label_channels": config.label_channels if label_conditioned else None,
        "spade_hidden_channels": config.spade_hidden_channels,
        "dropout": config.dropout,
        "scale_shift_norm": config.scale_shift_norm,
    }


def _attentions(config: UNetConfig, level: int, width: int, count: int) -> nn.ModuleList | None:
    if config.level_ds[level] not in config.attention_ds:
        return None
    return nn.ModuleList(
        AttentionBlock(width, head_channels=config.head_channels, qkv_layout=config.qkv_layout) for _ in range(count)
    )


class GescoUNet(WeightsFolder, nn.Module):
    """Epsilon (and learned-variance) predictor of GESCO, conditioned on a semantic label map.

    Conv weights are kept in :data:`DEFAULT_MEMORY_FORMAT` (channels_last); outputs are returned in
    the standard contiguous layout whatever the input layout.

    Example:
        >>> model = GescoUNet(UNetConfig.official_tiny())
        >>> x, y = torch.randn(1, 3, 32, 64), torch.zeros(1, 36, 32, 64)
        >>> model(x, torch.tensor([500]), y).shape
        torch.Size([1, 6, 32, 64])

    A checkpoint folder (:meth:`save_pretrained`, :meth:`from_pretrained`) holds ``config.json`` and
    ``model.safetensors``; float16 weights load as float32.
    """

    config_class = UNetConfig

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        if not isinstance(config, UNetConfig):
            raise TypeError(f"config must be a UNetConfig, got {type(config).__name__}")
        self.config = config
        widths = config.level_channels
        self.time_embedding = TimestepEmbedding(config.base_channels, config.time_embedding_channels)
        if config.noise_conditioning:
            self.noise_embedding = NoiseLevelEmbedding(config.base_channels, config.time_embedding_channels)
        self.input_conv = nn.Conv2d(config.in_channels, widths[0], kernel_size=3, padding=1)

        skip_channels = [widths[0]]  # what each encoder stage hands to the decoder, in order
        encoder, channels = [], widths[0]
        for level in range(len(widths)):
            encoder.append(EncoderLevel(config, level, channels))
            channels = widths[level]
            skip_channels += [channels] * config.num_res_blocks + ([channels] if level < len(widths) - 1 else [])
        self.encoder = nn.ModuleList(encoder)
        self.middle = MiddleBlock(config)

        decoder = {}
        for level in reversed(range(len(widths))):
            skips = [skip_channels.pop() for _ in range(config.num_res_blocks + 1)]
            decoder[level] = DecoderLevel(config, level, channels, skips)
            channels = widths[level]
        self.decoder = nn.ModuleList(decoder[level] for level in range(len(widths)))
        self.out_norm = GroupNorm32(widths[0])
        self.out_conv = zero_init(nn.Conv2d(widths[0], config.out_channels, kernel_size=3, padding=1))
        if config.guidance_conditioning:
            # built last, so that under one seed every other layer draws the same initial weights as without it
            self.guidance_embedding = GuidanceScaleEmbedding(config.base_channels, config.time_embedding_channels)
        self.to(memory_format=DEFAULT_MEMORY_FORMAT)

    @property
    def guidance_distilled(self) -> bool:
        """Whether one forward with ``guidance=s`` gives the guided prediction (read by
        :func:`gesco.receiver.guidance.guided_output`)."""
        return self.config.guidance_conditioning

    def _run(self, block: nn.Module, *inputs: torch.Tensor) -> torch.Tensor:
        if self.config.gradient_checkpointing and self.training and torch.is_grad_enabled():
            return checkpoint(block, *inputs, use_reentrant=False)
        return block(*inputs)

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        y: torch.Tensor,
        sigma: torch.Tensor | None = None,
        *,
        guidance: torch.Tensor | float | None = None,
    ) -> torch.Tensor:
        """Predict the noise of ``x`` at timestep ``t`` given the label map ``y`` (and the channel's ``sigma``).

        Args:
            x: (B, in_channels, H, W) float, the noisy image; H and W divisible by ``2 ** (levels - 1)``.
            t: (B,) or scalar timesteps, int or float, usually in 0..999.
            y: (B, label_channels, H, W) float semantic map (one-hot classes + edge; all zero = unconditional).
            sigma: (B,) float noise standard deviation of the channel the map came through (on the map's 0/1
                scale); required by a network with ``noise_conditioning``, refused by one without.
            guidance: (B,) or scalar classifier-free guidance scale s >= 0 (the convention of
                :func:`gesco.receiver.guidance.guided_output`); required by a network with ``guidance_conditioning``
                (a distilled student, whose output is then the guided one), refused by one without.

        Returns:
            (B, out_channels, H, W) in the compute dtype: epsilon in ``[:, :in_channels]``, and with
            ``learn_sigma`` the variance interpolation value v in ``[:, in_channels:]`` (roughly -1..1).
        """
        t = self._check_inputs(x, t, y)
        dtype = self.input_conv.weight.dtype
        embedding = self.time_embedding(t)
        if self.config.noise_conditioning:
            embedding = embedding + self.noise_embedding(self._check_sigma(sigma, x))
        elif sigma is not None:
            raise ValueError(
                "this network is not conditioned on the noise level (noise_conditioning=False): pass sigma=None"
            )
        if self.config.guidance_conditioning:
            embedding = embedding + self.guidance_embedding(self._check_guidance(guidance, x))
        elif guidance is not None:
            raise ValueError(
                "this network is not guidance-distilled (guidance_conditioning=False): pass guidance=None and let "
                "the sampler combine its conditional and unconditional passes"
            )
        time_features = F.silu(embedding)  # every res-block applies SiLU first; do it once
        h = self.input_conv(x.to(dtype))
        if h.is_contiguous(memory_format=torch.channels_last):
            y = y.contiguous(memory_format=torch.channels_last)  # one conversion, not one per SPADE conv
        y = y.to(dtype)

        skips = [h]
        for level in self.encoder:
            for index, block in enumerate(level.res_blocks):
                h = self._run(block, h, time_features)
                if level.attentions is not None:
                    h = self._run(level.attentions[index], h)
                skips.append(h)
            if level.downsample is not None:
                h = self._run(level.downsample, h, time_features)
                skips.append(h)

        h = self._run(self.middle.res_block_in, h, time_features, y)
        h = self._run(self.middle.attention, h)
        h = self._run(self.middle.res_block_out, h, time_features, y)

        for level in reversed(self.decoder):
            for index, block in enumerate(level.res_blocks):
                h = self._run(block, torch.cat([h, skips.pop()], dim=1), time_features, y)
                if level.attentions is not None:
                    h = self._run(level.attentions[index], h)
            if level.upsample is not None:
                h = self._run(level.upsample, h, time_features, y)
        return self.out_conv(F.silu(self.out_norm(h))).contiguous()

    @staticmethod
    def _check_sigma(sigma: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
        if sigma is None:
            raise ValueError(
                "this network is conditioned on the channel's noise level: pass sigma (B,), the "
                "received map's noise standard deviation (Received.sigma, or a blind estimate)"
            )
        sigma = torch.as_tensor(sigma, dtype=torch.float32, device=x.device)
        sigma = sigma.expand(x.shape[0]) if sigma.ndim == 0 else sigma
        if sigma.shape != (x.shape[0],) or not torch.isfinite(sigma).all() or (sigma < 0).any():
            raise ValueError(f"sigma must be ({x.shape[0]},) finite values >= 0, got {tuple(sigma.shape)}")
        return sigma

    @staticmethod
    def _check_guidance(guidance: torch.Tensor | float | None, x: torch.Tensor) -> torch.Tensor:
        if guidance is None:
            raise ValueError(
                "this network is guidance-distilled: pass guidance (B,) or a scalar, the classifier-free guidance "
                "scale s (1 = conditional model)"
            )
        guidance = torch.as_tensor(guidance, dtype=torch.float32, device=x.device)
        guidance = guidance.expand(x.shape[0]) if guidance.ndim == 0 else guidance
        if guidance.shape != (x.shape[0],) or not torch.isfinite(guidance).all() or (guidance < 0).any():
            raise ValueError(f"guidance must be ({x.shape[0]},) finite scales >= 0, got {tuple(guidance.shape)}")
        return guidance

    def _check_inputs(self, x: torch.Tensor, t: torch.Tensor | int | float, y: torch.Tensor) -> torch.Tensor:
        config = self.config
        if x.ndim != 4 or x.shape[1] != config.in_channels:
            raise ValueError(f"x must be (B, {config.in_channels}, H, W), got {tuple(x.shape)}")
        factor = 2 ** (len(config.channel_mult) - 1)
        if x.shape[2] % factor or x.shape[3] % factor:
            raise ValueError(
                f"image size {tuple(x.shape[2:])} must be divisible by {factor} for {len(config.channel_mult)} levels; "
                "pad or resize the input"
            )
        expected_y = (x.shape[0], config.label_channels, *x.shape[2:])
        if tuple(y.shape) != expected_y:
            raise ValueError(f"y must be (B, label_channels, H, W) = {expected_y}, got {tuple(y.shape)}")
        t = torch.as_tensor(t, device=x.device)
        if t.ndim == 0:
            t = t.expand(x.shape[0])
        if t.shape != (x.shape[0],):
            raise ValueError(f"t must be a scalar or have shape ({x.shape[0]},), got {tuple(t.shape)}")
        return t

    # Checkpoints: save_pretrained / from_pretrained come from WeightsFolder ------------------------

    @classmethod
    def from_state_dict(
        cls, state_dict: Mapping[str, torch.Tensor], config: UNetConfig, *, source: str = "state dict"
    ) -> GescoUNet:
        """Build the model around existing weights (gesco names) without initialising it first; the parameters
        take the tensors' dtype and device.

        Raises:
            StateDictMismatchError (a ValueError): names or shapes that do not fit ``config``.
        """
        with torch.device("meta"):
            model = cls(config)
        check_state_dict({k: v.shape for k, v in model.state_dict().items()}, state_dict, source=source)
        model.load_state_dict(state_dict, assign=True)
        return model.to(memory_format=DEFAULT_MEMORY_FORMAT)
