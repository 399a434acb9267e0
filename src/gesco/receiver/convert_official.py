"""Adapter between official GESCO/SDM (guided-diffusion) UNet checkpoints and :class:`GescoUNet`.

The official model names its layers by position (``output_blocks.7.0.out_layers.2``); gesco names
them by role (``decoder.1.res_blocks.1.conv_out``). The two differ in three ways only:

- the official attention projections are 1-D convs with weights (out, in, 1); gesco's are linears (out, in);
- GESCO's encoder res-blocks carry a ``spade_norm`` (label map of 3 channels, 128 hidden) that their
  forward never calls. The converter drops it and says how many parameters that was; the export writes
  freshly initialised values back so the exported dict has exactly the official keys and shapes.
  SDM checkpoints, which never had it, convert as well;
- everything else maps one tensor to one tensor, unchanged.

:func:`convert_official_checkpoint` turns a checkpoint into a receiver folder (``gesco convert-official``). A
checkpoint does not store the image size it was trained at, so the size comes from the UNet preset (the
paper's models: :data:`PRESET_IMAGE_SIZES`) or from the caller, never from a guess.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Mapping
from pathlib import Path

import torch

from gesco.receiver.pipeline import DiffusionReceiver, ReceiverConfig
from gesco.receiver.sampling import SamplerConfig
from gesco.receiver.unet import GescoUNet, UNetConfig, check_state_dict
from gesco.receiver.unet.config import PRESET_NAMES, check_image_size

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class OfficialModel:
    """What the official code fixes for the models of one data set.

    Attributes:
        class_table: gesco's class table of the label channels.
        guidance: the paper's classifier-free guidance scale.
        paper_image_size: (height, width) the released checkpoints were trained at.
    """

    class_table: str
    guidance: float
    paper_image_size: tuple[int, int]


#: Label channels of an official checkpoint -> its data set's settings (Cityscapes, COCO-Stuff, ADE20K).
OFFICIAL_TABLES = {
    36: OfficialModel("cityscapes", 2.0, (256, 512)),
    184: OfficialModel("coco-stuff", 2.5, (256, 256)),
    151: OfficialModel("ade20k", 2.5, (256, 256)),
}
#: UNet presets (:meth:`UNetConfig.preset` names) that are the paper's models, named after their class table, with
#: the image size they were trained at. ``small64`` and ``official_tiny`` are architectures only: no size.
PRESET_IMAGE_SIZES = {m.class_table.replace("-", "_"): m.paper_image_size for m in OFFICIAL_TABLES.values()}

#: The unused encoder SPADE norm of the official code is built with a 3-channel label map and 128 hidden channels.
UNUSED_SPADE_LABEL_CHANNELS = 3
UNUSED_SPADE_HIDDEN_CHANNELS = 128

# Official sub-layer name -> gesco sub-layer name, per kind of block, in the official key order.
_SUBLAYERS = {
    "plain": {"": ""},
    "encoder_res": {
        "in_layers.0": "norm_in",
        "in_layers.2": "conv_in",
        "emb_layers.1": "time_proj",
        "out_layers.0": "norm_out",
        "out_layers.3": "conv_out",
        "skip_connection": "skip",
    },
    "decoder_res": {
        "in_norm.mlp_shared.0": "norm_in.shared",
        "in_norm.mlp_gamma": "norm_in.gamma",
        "in_norm.mlp_beta": "norm_in.beta",
        "in_layers.1": "conv_in",
        "emb_layers.1": "time_proj",
        "out_norm.mlp_shared.0": "norm_out.shared",
        "out_norm.mlp_gamma": "norm_out.gamma",
        "out_norm.mlp_beta": "norm_out.beta",
        "out_layers.2": "conv_out",
        "skip_connection": "skip",
    },
    "attention": {"norm": "norm", "qkv": "qkv", "proj_out": "proj_out"},
    "downsample": {"op": "conv"},
    "upsample": {"conv": "conv"},
}


@dataclasses.dataclass(frozen=True)
class OfficialLayout:
    """The official state-dict layout of one :class:`UNetConfig`.

    Attributes:
        gesco_names: official key -> gesco key, in the official order.
        gesco_shapes: gesco key -> shape.
        official_shapes: official key -> shape, for every key of an official GESCO checkpoint
            (the unused encoder ``spade_norm`` entries included), in the official order.
        unused_keys: the encoder ``spade_norm`` keys that gesco does not use.
    """

    gesco_names: dict[str, str]
    gesco_shapes: dict[str, tuple[int, ...]]
    official_shapes: dict[str, tuple[int, ...]]
    unused_keys: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class OfficialConversion:
    """Result of :func:`convert_official_state_dict`: gesco-named weights and what was left out."""

    state_dict: dict[str, torch.Tensor]
    config: UNetConfig
    dropped_keys: tuple[str, ...]
    dropped_parameters: int


def _block_prefixes(config: UNetConfig) -> list[tuple[str, str, str]]:
    """(official prefix, gesco prefix, kind) of every layer, walking the UNet in the official order."""
    levels, per_level = len(config.channel_mult), config.num_res_blocks
    resample_kind = {True: ("encoder_res", "decoder_res"), False: ("downsample", "upsample")}[config.resblock_updown]
    blocks = [
        ("time_embed.0", "time_embedding.linear_in", "plain"),
        ("time_embed.2", "time_embedding.linear_out", "plain"),
        ("input_blocks.0.0", "input_conv", "plain"),
    ]
    index = 1
    for level in range(levels):
        attention = config.level_ds[level] in config.attention_ds
        for i in range(per_level):
            blocks.append((f"input_blocks.{index}.0", f"encoder.{level}.res_blocks.{i}", "encoder_res"))
            if attention:
                blocks.append((f"input_blocks.{index}.1", f"encoder.{level}.attentions.{i}", "attention"))
            index += 1
        if level < levels - 1:
            blocks.append((f"input_blocks.{index}.0", f"encoder.{level}.downsample", resample_kind[0]))
            index += 1
    blocks += [
        ("middle_block.0", "middle.res_block_in", "decoder_res"),
        ("middle_block.1", "middle.attention", "attention"),
        ("middle_block.2", "middle.res_block_out", "decoder_res"),
    ]
    index = 0
    for level in reversed(range(levels)):
        attention = config.level_ds[level] in config.attention_ds
        for i in range(per_level + 1):
            blocks.append((f"output_blocks.{index}.0", f"decoder.{level}.res_blocks.{i}", "decoder_res"))
            if attention:
                blocks.append((f"output_blocks.{index}.1", f"decoder.{level}.attentions.{i}", "attention"))
            if level > 0 and i == per_level:
                position = 2 if attention else 1
                blocks.append((f"output_blocks.{index}.{position}", f"decoder.{level}.upsample", resample_kind[1]))
            index += 1
    blocks += [("out.0", "out_norm", "plain"), ("out.2", "out_conv", "plain")]
    return blocks


def _join(*parts: str) -> str:
    return ".".join(p for p in parts if p)


def official_layout(config: UNetConfig) -> OfficialLayout:
    """Map every tensor of ``GescoUNet(config)`` to its official name and shape."""
    with torch.device("meta"):
        gesco_shapes = {k: tuple(v.shape) for k, v in GescoUNet(config).state_dict().items()}
    gesco_names, official_shapes, unused = {}, {}, []
    for official_prefix, gesco_prefix, kind in _block_prefixes(config):
        if kind == "encoder_res":
            channels = gesco_shapes[f"{gesco_prefix}.norm_in.weight"][0]
            spade_shapes = {
                "mlp_shared.0": (UNUSED_SPADE_HIDDEN_CHANNELS, UNUSED_SPADE_LABEL_CHANNELS, 3, 3),
                "mlp_gamma": (channels, UNUSED_SPADE_HIDDEN_CHANNELS, 3, 3),
                "mlp_beta": (channels, UNUSED_SPADE_HIDDEN_CHANNELS, 3, 3),
            }
            for layer, weight_shape in spade_shapes.items():
                for param, shape in (("weight", weight_shape), ("bias", weight_shape[:1])):
                    key = f"{official_prefix}.spade_norm.{layer}.{param}"
                    official_shapes[key] = shape
                    unused.append(key)
        for official_layer, gesco_layer in _SUBLAYERS[kind].items():
            for param in ("weight", "bias"):
                gesco_key = _join(gesco_prefix, gesco_layer, param)
                if gesco_key not in gesco_shapes:
                    continue  # e.g. no skip projection when the width does not change
                official_key = _join(official_prefix, official_layer, param)
                shape = gesco_shapes[gesco_key]
                if kind == "attention" and official_layer != "norm" and param == "weight":
                    shape = (*shape, 1)  # official Conv1d(kernel_size=1)
                gesco_names[official_key] = gesco_key
                official_shapes[official_key] = shape
    unmapped = sorted(set(gesco_shapes) - set(gesco_names.values()))
    if unmapped:
        raise RuntimeError(f"internal error: gesco tensors without an official name: {unmapped}")
    return OfficialLayout(gesco_names, gesco_shapes, official_shapes, tuple(unused))


def read_official_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Load an official ``*.pt`` state dict (CPU, ``weights_only``), without a ``model.`` prefix."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no official checkpoint at {path}")
    try:
        state_dict = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as err:  # torch raises many types for truncated or foreign files
        raise ValueError(f"cannot read {path} as a torch state dict (truncated or another format?): {err}") from err
    return _strip_prefix(state_dict, source=str(path))


def _strip_prefix(state_dict: object, *, source: str) -> dict[str, torch.Tensor]:
    if not isinstance(state_dict, Mapping) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise TypeError(f"{source} must hold a flat state dict (name -> tensor), got {type(state_dict).__name__}")
    if state_dict and all(k.startswith("model.") for k in state_dict):
        return {k.removeprefix("model."): v for k, v in state_dict.items()}
    return dict(state_dict)


def infer_official_config(state_dict: Mapping[str, torch.Tensor]) -> UNetConfig:
    """Read the architecture off an official state dict's names and shapes.

    The attention head width is not stored in the weights; it is taken from the gesco preset
    (:data:`PRESET_NAMES`) whose architecture the weights match, otherwise a ``ValueError`` asks for a config.
    """

    def shape(key: str) -> torch.Size:
        if key not in state_dict:
            raise ValueError(f"not an official GESCO/SDM UNet state dict: no {key!r}")
        return state_dict[key].shape

    base = shape("time_embed.0.weight")[1]
    in_channels, out_channels = shape("input_blocks.0.0.weight")[1], shape("out.2.weight")[0]
    if out_channels not in (in_channels, 2 * in_channels):
        raise ValueError(f"output width {out_channels} is neither {in_channels} nor {2 * in_channels}")
    hidden, label_channels = shape("middle_block.0.in_norm.mlp_shared.0.weight")[:2]
    output_blocks = 1 + max(int(m.group(1)) for k in state_dict if (m := re.match(r"output_blocks\.(\d+)\.", k)))
    upsampler = re.compile(r"output_blocks\.(\d+)\.[12]\.(conv\.weight|in_norm\.mlp_shared\.0\.weight)$")
    with_upsampler = sorted(int(m.group(1)) for k in state_dict if (m := upsampler.match(k)))
    per_level = with_upsampler[0] if with_upsampler else output_blocks - 1
    levels = output_blocks // (per_level + 1)
    channel_mult, attention_ds = [], []
    for level in range(levels):
        first = 1 + level * (per_level + 1)
        channel_mult.append(shape(f"input_blocks.{first}.0.in_layers.2.weight")[0] // base)
        if f"input_blocks.{first}.1.qkv.weight" in state_dict:
            attention_ds.append(2**level)
    fields = {
        "base_channels": base,
        "channel_mult": tuple(channel_mult),
        "num_res_blocks": per_level,
        "attention_ds": tuple(attention_ds),
        "label_channels": label_channels,
        "spade_hidden_channels": hidden,
        "in_channels": in_channels,
        "learn_sigma": out_channels == 2 * in_channels,
        "resblock_updown": not any(k.endswith(".conv.weight") for k in state_dict if k.startswith("output_blocks.")),
        "scale_shift_norm": shape("middle_block.0.emb_layers.1.weight")[0] == 2 * base * channel_mult[-1],
    }
    for name in PRESET_NAMES:
        preset = UNetConfig.preset(name)
        if all(getattr(preset, field) == value for field, value in fields.items()):
            return preset
    raise ValueError(
        f"the weights describe a UNet ({fields}) that matches no gesco preset, and the attention head width "
        "is not stored in them: pass config=UNetConfig(..., head_channels=...) (CLI: --config FILE.json)"
    )


def convert_official_state_dict(
    state_dict: Mapping[str, torch.Tensor], config: UNetConfig | None = None
) -> OfficialConversion:
    """Rename an official state dict to gesco's names (float32), strictly.

    Args:
        state_dict: official keys, optionally prefixed ``model.``.
        config: the architecture; inferred with :func:`infer_official_config` if None.

    Raises:
        StateDictMismatchError (a ValueError): naming every missing and unexpected key and shape mismatch.
    """
    state_dict = _strip_prefix(state_dict, source="the official state dict")
    config = infer_official_config(state_dict) if config is None else config
    layout = official_layout(config)
    expected = dict(layout.official_shapes)
    if not any(k in state_dict for k in layout.unused_keys):
        for key in layout.unused_keys:  # an SDM checkpoint: its encoder never had the unused SPADE norm
            del expected[key]
    check_state_dict(expected, state_dict, source="the official state dict")
    converted = {
        gesco_key: state_dict[official_key].reshape(layout.gesco_shapes[gesco_key]).float()
        for official_key, gesco_key in layout.gesco_names.items()
    }
    dropped = tuple(k for k in layout.unused_keys if k in state_dict)
    dropped_parameters = sum(state_dict[k].numel() for k in dropped)
    if dropped:
        logger.info(
            "dropped %d unused encoder spade_norm tensors (%s parameters) that the official forward never calls",
            len(dropped),
            f"{dropped_parameters:,}",
        )
    return OfficialConversion(converted, config, dropped, dropped_parameters)


def load_official_checkpoint(
    path_or_state_dict: str | Path | Mapping[str, torch.Tensor], config: UNetConfig | None = None
) -> GescoUNet:
    """Build a :class:`GescoUNet` (float32, CPU, eval mode) from an official checkpoint file or state dict."""
    if isinstance(path_or_state_dict, (str, Path)):
        path_or_state_dict = read_official_state_dict(path_or_state_dict)
    conversion = convert_official_state_dict(path_or_state_dict, config)
    model = GescoUNet.from_state_dict(conversion.state_dict, conversion.config, source="the converted official weights")
    return model.eval()


def gesco_to_official(model: GescoUNet, *, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Export to the official GESCO layout (keys, order and shapes of an official checkpoint).

    The encoder's unused ``spade_norm`` entries get fresh values drawn like PyTorch's default
    conv init (uniform in +-1/sqrt(fan_in)) from ``generator``, since gesco holds no values for them.
    """
    layout = official_layout(model.config)
    state = model.state_dict()
    reference = next(iter(state.values()))
    exported = {}
    for key, shape in layout.official_shapes.items():
        if key in layout.gesco_names:
            exported[key] = state[layout.gesco_names[key]].reshape(shape)
        else:
            exported[key] = _default_conv_init(key, shape, reference, generator)
    return exported


def _default_conv_init(
    key: str, shape: tuple[int, ...], like: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    if like.device.type == "meta":
        return torch.empty(shape, dtype=like.dtype, device="meta")
    # PyTorch's Conv2d default: weight and bias uniform in +-1/sqrt(fan_in).
    fan_in = (UNUSED_SPADE_LABEL_CHANNELS if ".mlp_shared." in key else UNUSED_SPADE_HIDDEN_CHANNELS) * 3 * 3
    values = torch.rand(shape, generator=generator, dtype=torch.float32, device=like.device)
    return ((2 * values - 1) * fan_in**-0.5).to(like.dtype)


@dataclasses.dataclass(frozen=True)
class ConvertedCheckpoint:
    """Result of :func:`convert_official_checkpoint`: the receiver folder and what the conversion left out."""

    path: Path
    receiver: DiffusionReceiver
    dropped_keys: tuple[str, ...]
    dropped_parameters: int

    @property
    def parameters(self) -> int:
        return sum(p.numel() for p in self.receiver.unet.parameters())


def convert_official_checkpoint(
    checkpoint: str | Path | Mapping[str, torch.Tensor],
    output_dir: str | Path,
    *,
    config: str | Path | UNetConfig | None = None,
    image_size: tuple[int, int] | None = None,
) -> ConvertedCheckpoint:
    """Convert an official GESCO/SDM checkpoint into a receiver folder (``receiver.json`` + ``unet/``).

    The class table follows from the label channels (:data:`OFFICIAL_TABLES`), the edge rule is the official 8-bit
    one the released models were trained with, the default sampler is DDIM-50 with the paper's guidance scale, and
    the training noise is the paper's.

    Args:
        checkpoint: an official ``*.pt`` state dict, or the state dict itself (keys optionally prefixed ``model.``).
        output_dir: the receiver folder to write (created if needed).
        config: the architecture: a preset name (``"cityscapes"``, ``"coco-stuff"``, ``"ade20k"``, ``"small64"``,
            ``"official-tiny"``), a :class:`UNetConfig` JSON file, or a config; None reads it off the weights
            (:func:`infer_official_config`).
        image_size: (height, width) the model was trained at. None takes the size of a paper preset named by
            ``config`` (:data:`PRESET_IMAGE_SIZES`); given, it wins over the preset's.

    Raises:
        ValueError: no image size (neither given nor from a paper preset), an image size the UNet cannot take,
            label channels of no official data set, or weights that do not fit the architecture.

    Example:
        >>> out = convert_official_checkpoint("ema_0.9999_190000.pt", "out", config="cityscapes")  # doctest: +SKIP
    """
    unet_config, preset_size = _config_and_size(config)
    size = image_size if image_size is not None else preset_size
    if size is None:
        paper = ", ".join(
            f"{m.class_table} {m.paper_image_size[0]}x{m.paper_image_size[1]}" for m in OFFICIAL_TABLES.values()
        )
        raise ValueError(
            "an official checkpoint does not store the image size it was trained at: give image_size (CLI: "
            f"--image-size HEIGHTxWIDTH; the paper's models: {paper}) or the paper's preset as config "
            f"(--config {' / '.join(m.class_table for m in OFFICIAL_TABLES.values())})"
        )
    if unet_config is not None:
        size = check_image_size(tuple(size), unet_config)  # before reading a checkpoint of gigabytes
    if isinstance(checkpoint, (str, Path)):
        state_dict, source = read_official_state_dict(checkpoint), str(checkpoint)
    else:
        state_dict, source = checkpoint, "the official state dict"
    conversion = convert_official_state_dict(state_dict, unet_config)
    if unet_config is None:
        size = check_image_size(tuple(size), conversion.config)
    channels = conversion.config.label_channels
    if channels not in OFFICIAL_TABLES:
        raise ValueError(
            f"the checkpoint takes {channels} label channels; official models take one of "
            f"{sorted(OFFICIAL_TABLES)} (Cityscapes, ADE20K, COCO-Stuff)"
        )
    official = OFFICIAL_TABLES[channels]
    model = GescoUNet.from_state_dict(conversion.state_dict, conversion.config, source=source)
    receiver_config = ReceiverConfig(
        class_table=official.class_table,
        edge_rule="official",
        image_size=size,
        sampler=SamplerConfig(sampler="ddim", steps=50, guidance=official.guidance),
        training_noise="paper",
    )
    receiver = DiffusionReceiver(model, receiver_config)
    path = receiver.save_pretrained(output_dir)
    return ConvertedCheckpoint(path, receiver, conversion.dropped_keys, conversion.dropped_parameters)


def _config_and_size(config: str | Path | UNetConfig | None) -> tuple[UNetConfig | None, tuple[int, int] | None]:
    """The architecture of ``config`` and, for a paper preset named by it, the image size of that preset."""
    if config is None or isinstance(config, UNetConfig):
        return config, None
    if not str(config).strip():
        raise ValueError(f"config must name a UNet preset {list(PRESET_NAMES)} or a JSON file, got {config!r}")
    unet_config = UNetConfig.from_preset_or_file(config)
    is_preset_name = isinstance(config, str) and not (Path(config).suffix == ".json" or Path(config).is_dir())
    return unet_config, PRESET_IMAGE_SIZES.get(str(config).replace("-", "_")) if is_preset_name else None
