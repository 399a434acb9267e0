"""Copy a trained model folder into the package as a shipped model, with float16 weights.

    python tools/ship_pretrained.py runs/gesco/model synthetic-streets-64x128
    python tools/ship_pretrained.py runs/segmenter/model segmenter-synthetic-streets-64x128

Receiver folders (``receiver.json`` + ``unet/``) and segmenter folders (``config.json`` +
``model.safetensors``) are both accepted; every ``*.safetensors`` is rewritten in float16, the rest is
copied. The model card (``MODEL_CARD.md``) is written by hand from the measured metrics.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import torch

from gesco.io import atomic_write_text, load_tensors, save_tensors
from gesco.pretrained import MODEL_CARD, ROOT, info


def ship(source: Path, name: str) -> Path:
    target = ROOT / name
    card = (target / MODEL_CARD).read_text() if (target / MODEL_CARD).is_file() else None
    if target.exists():
        shutil.rmtree(target)
    for path in sorted(source.rglob("*")):
        destination = target / path.relative_to(source)
        if path.is_dir():
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".safetensors":
            tensors = load_tensors(path)
            save_tensors(
                destination,
                {k: v.half() if v.is_floating_point() else v for k, v in tensors.items()},
                metadata={"format": "pt", "stored_dtype": str(torch.float16)},
            )
        else:
            shutil.copyfile(path, destination)
    if card is not None:
        atomic_write_text(target / MODEL_CARD, card)
    info(name)  # fails if the folder is not a loadable model
    return target


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="receiver or segmenter folder")
    parser.add_argument("name", help="name of the shipped model (a folder under src/gesco/pretrained)")
    args = parser.parse_args()
    print(f"shipped {ship(args.source, args.name)}")
