"""Where a depth network loses delta1 on regenerated images: delta1 per ground-truth class, real against regenerated.

    python tools/depth_by_class.py --images runs/eval/images/gesco/psnr10 \
        --depth depth-synthetic-streets-64x128 runs/depth-texture-swap/model --out docs/depth-by-class

Reads the synthetic evaluation scenes whose regenerations ``gesco evaluate`` saved under ``--images``
(``synthetic_<seed>.png``), scores each depth network on the real image and on the regeneration of every scene,
and pools delta1 (max(d / d*, d* / d) < 1.25, ground truth up to 80 m as ``gesco evaluate``) over the pixels of each
class: ``gesco evaluate`` averages per image, so its whole-image numbers differ a little. Writes OUT.json (strict
JSON, with each class's share of the scored pixels) and OUT.png (a bar per class and network, a tick for the
real images).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gesco.datasets.regenerated import SCENE_IMAGE_NAME
from gesco.datasets.synthetic import SYNTHETIC_CLASSES, SyntheticStreets
from gesco.evaluation.geometry_networks import load_depth_estimator
from gesco.evaluation.geometry_scoring import DEFAULT_MAX_DEPTH_M
from gesco.evaluation.objects_depth import DELTA1_THRESHOLD
from gesco.io import atomic_save, write_json
from gesco.pretrained import resolve


def scored_pixels(truth: torch.Tensor) -> torch.Tensor:
    """Where depth is scored: known (> 0) and within ``DEFAULT_MAX_DEPTH_M``, as ``gesco evaluate``."""
    return (truth > 0) & (truth <= DEFAULT_MAX_DEPTH_M)


def class_shares(truth: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """The share of the scored pixels each synthetic class holds."""
    scored = scored_pixels(truth)
    return {
        name: float((scored & (labels == class_id)).sum() / scored.sum())
        for class_id, name in SYNTHETIC_CLASSES.items()
    }


def pooled_delta1(estimate: torch.Tensor, truth: torch.Tensor, labels: torch.Tensor) -> dict[str, float | None]:
    """delta1 over all scored pixels ("all") and over those of each synthetic class (None where it has none)."""
    scored = scored_pixels(truth)
    if not scored.any():
        raise ValueError("no pixel has a known depth within range: nothing to score")
    # estimates clipped to the scored range, as gesco evaluate's depth_errors does
    estimate = estimate.clamp(max=DEFAULT_MAX_DEPTH_M)
    good = (torch.maximum(estimate / truth, truth / estimate) < DELTA1_THRESHOLD) & scored
    result = {"all": float(good.sum() / scored.sum())}
    for class_id, name in SYNTHETIC_CLASSES.items():
        pixels = scored & (labels == class_id)
        result[name] = float(good[pixels].float().mean()) if pixels.any() else None
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=Path, required=True, help="a folder of gesco evaluate's saved images")
    parser.add_argument("--depth", nargs="+", required=True, help="depth networks: shipped names or folders")
    parser.add_argument("--out", type=Path, required=True, help="output path without suffix")
    parser.add_argument("--label", help="what the regenerations are, for the figure's title (default: the folder)")
    args = parser.parse_args()
    files = sorted(path for path in args.images.glob("*.png") if SCENE_IMAGE_NAME.fullmatch(path.name))
    if not files:
        raise SystemExit(f"no synthetic_<seed>.png under {args.images}")
    first = np.asarray(Image.open(files[0]))
    streets = {
        riders: SyntheticStreets(height=first.shape[0], width=first.shape[1], riders=riders) for riders in (False, True)
    }
    real, regenerated, truth, labels = [], [], [], []
    for path in files:
        image = np.asarray(Image.open(path).convert("RGB"))
        if image.shape != first.shape[:2] + (3,):
            raise SystemExit(
                f"{path} is {image.shape[1]}x{image.shape[0]}, the first image {first.shape[1]}x{first.shape[0]}"
            )
        match = SCENE_IMAGE_NAME.fullmatch(path.name)
        scene = streets[bool(match["riders"])].scene(int(match["seed"]))
        real.append(scene.image)
        regenerated.append(image)
        truth.append(scene.depth)
        labels.append(scene.labels)
    truth_t, labels_t = torch.from_numpy(np.stack(truth)), torch.from_numpy(np.stack(labels).astype(np.int64))

    def as_images(arrays: list[np.ndarray]) -> torch.Tensor:
        return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 127.5 - 1

    results = {}
    for name in args.depth:
        network = load_depth_estimator(resolve(name))
        with torch.no_grad():
            scores = {
                kind: pooled_delta1(
                    torch.cat([network.estimate(b) for b in as_images(images).split(50)]), truth_t, labels_t
                )
                for kind, images in (("real", real), ("regenerated", regenerated))
            }
        results[name] = scores
        print(name, {kind: round(score["all"], 3) for kind, score in scores.items()})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    summary = {"images": str(args.images), "scenes": len(files), "class_shares": class_shares(truth_t, labels_t)}
    write_json(args.out.with_suffix(".json"), {**summary, "delta1": results})
    plot(results, args.out.with_suffix(".png"), len(files), args.label or str(args.images))


def plot(results: dict, path: Path, scenes: int, label: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scores = list(results.values())
    # classes no scene has within range (the sky lies beyond it) are left out
    classes = [c for c in ["all", *SYNTHETIC_CLASSES.values()] if scores[0]["real"][c] is not None]
    figure, axis = plt.subplots(figsize=(11, 4.2))
    width = 0.8 / len(results)
    for n, (name, score) in enumerate(results.items()):
        x = np.arange(len(classes)) + (n - (len(results) - 1) / 2) * width
        regenerated = [score["regenerated"][c] if score["regenerated"][c] is not None else np.nan for c in classes]
        axis.bar(x, regenerated, width * 0.9, color=f"C{n}", label=f"{name}: regenerations")
        real = [score["real"][c] for c in classes]
        axis.scatter(
            x, real, marker="_", s=260, linewidths=2.5, color="black", zorder=3, label="real images" if n == 0 else None
        )
    axis.set_xticks(np.arange(len(classes)), classes, rotation=20)
    axis.set_ylabel("δ1 (pixels pooled)")
    axis.set_ylim(0, 1.02)
    axis.set_title(f"δ1 per ground-truth class, {scenes} scenes\n{label} (bars), the real images (black ticks)")
    axis.legend(fontsize=8, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.22))
    figure.tight_layout()
    atomic_save(path, lambda temporary: figure.savefig(temporary, format="png", dpi=110))
    plt.close(figure)


if __name__ == "__main__":
    main()
