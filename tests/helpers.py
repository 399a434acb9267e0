"""Pieces shared by test modules in several folders; imported as ``helpers`` (``pythonpath = ["tests"]`` in
pyproject's pytest options). Fixtures stay in the conftest files."""

from pathlib import Path

import numpy as np
import torch

from gesco.datasets.synthetic_canvas import THING_CLASSES
from gesco.receiver.unet import GescoUNet, UNetConfig

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


#: The image size of the exported-backend tests' tiny UNets.
BACKEND_TEST_SIZE = (16, 32)


def tiny_unet(config: UNetConfig = TINY_UNET) -> GescoUNet:
    """A tiny UNet whose zero-initialised layers (output conv, noise and guidance embeddings) carry weights too,
    so that every input reaches the output."""
    torch.manual_seed(0)
    unet = GescoUNet(config).eval()
    with torch.no_grad():
        for parameter in unet.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    return unet


def label_map(batch: int, seed: int, size: tuple[int, int] = BACKEND_TEST_SIZE) -> torch.Tensor:
    """A random one-hot map of 35 classes plus the edge channel: float (batch, 36, H, W)."""
    labels = torch.randint(0, 35, (batch, *size), generator=torch.Generator().manual_seed(seed))
    return torch.nn.functional.one_hot(labels, 36).permute(0, 3, 1, 2).float()


def assert_tight_boxes(scenes, box_classes) -> None:
    """Every box is its object's tight box, things carry their instance id, and ``box_classes`` all appear."""
    seen = set()
    for scene in scenes:
        boxes = scene.boxes
        assert boxes.dtype == np.int32 and boxes.shape[1] == 6
        assert set(boxes[:, 4].tolist()) <= set(box_classes)
        assert len(set(boxes[:, 5].tolist())) == len(boxes)
        seen |= set(boxes[:, 4].tolist())
        things = np.unique(scene.instances[scene.instances >= 1000])
        assert sorted(boxes[np.isin(boxes[:, 4], THING_CLASSES), 5].tolist()) == sorted(things.tolist())
        for x0, y0, x1, y1, label, instance in boxes:
            if label in THING_CLASSES:
                rows, cols = np.nonzero(scene.instances == instance)
                assert (x0, y0, x1, y1) == (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)
            inside = scene.labels[y0:y1, x0:x1] == label
            # tight: the class touches all four sides of its box
            assert inside[0].any() and inside[-1].any() and inside[:, 0].any() and inside[:, -1].any()
        for label in set(boxes[:, 4].tolist()) - set(THING_CLASSES):
            ks = boxes[boxes[:, 4] == label, 5] - label * 1000
            assert ks.tolist() == list(range(len(ks)))
    assert seen == set(box_classes)
