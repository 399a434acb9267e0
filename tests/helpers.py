"""Pieces shared by test modules in several folders; imported as ``helpers`` (``pythonpath = ["tests"]`` in
pyproject's pytest options). Fixtures stay in the conftest files."""

from pathlib import Path

from gesco.receiver.unet import UNetConfig

#: Two levels, one res-block each: about 1M parameters, a forward in milliseconds on a CPU.
TINY_UNET = UNetConfig(
    base_channels=32,
    channel_mult=(1, 2),
    num_res_blocks=1,
    attention_ds=(2,),
    head_channels=32,
    label_channels=36,
    spade_hidden_channels=16,
)


def tiny_train_config(out: Path) -> dict:
    """A ``gesco train`` config (as JSON data) of two steps of the tiny UNet on eight synthetic scenes."""
    return {
        "output_dir": str(out),
        "data": {"kind": "synthetic", "size": [16, 32], "num_scenes": 8},
        "model": TINY_UNET.to_dict(),
        "batch_size": 2,
        "max_steps": 2,
        "checkpoint_every": 1,
    }
