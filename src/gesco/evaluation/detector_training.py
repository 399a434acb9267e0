r"""Training gesco's compact detector (``gesco train-detector``), resumable exactly.

Recipe (CenterNet, Zhou et al. 2019, with TTFNet's elliptical Gaussians for thin objects):

1. Targets on the output grid (:func:`detection_targets`): each ground-truth box puts a Gaussian peak of
   value 1 on the cell of its centre in its class's heatmap, with standard deviations
   :math:`\sigma_x = \max(\alpha w / 6, \sigma_{min})` and :math:`\sigma_y = \max(\alpha h / 6, \sigma_{min})` in
   cells (a tall thin pole gets a tall thin peak); the centre cell also gets the box's log size and the
   centre's offset inside the cell.
2. Loss (:func:`detection_loss`): the penalty-reduced focal loss on the heatmap, normalised by the number
   of objects, plus L1 on log size and on offset at the centre cells.
3. Flips (the boxes follow), colour jitter and pixel noise as the segmenter's
   (:func:`~gesco.evaluation.segmenter_training.augment`), because the detector must read regenerated
   images, which are noisier and paler than the real ones.

Synthetic training scenes must stay below the evaluation seeds (``EVALUATION_SEED_OFFSET``); by default
they are seeds 600,000-699,999, and held-out scenes from ``VALIDATION_SEED_OFFSET`` are scored (AP50) at
every checkpoint. The steps, exact resume, checkpoints, EMA, bf16 autocast and learning-rate schedule are
those of the shared loop (:mod:`gesco.training.loop`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from gesco.config import Config
from gesco.constants import GEOMETRY_TRAINING_SEED_OFFSET, VALIDATION_SEED_OFFSET
from gesco.datasets import collate
from gesco.datasets.base import Boxes
from gesco.datasets.regenerated import MixedScenes, RegeneratedScenes
from gesco.datasets.synthetic_canvas import BOX_CLASSES, CYCLIST_CLASSES
from gesco.evaluation.detector import OUTPUT_STRIDE, DetectorConfig, DetectorOutput, GescoDetector
from gesco.evaluation.geometry_augment import texture_swap
from gesco.evaluation.objects_depth import DetectionScores, detection_scores
from gesco.evaluation.segmenter_training import augment
from gesco.semantics.classes import class_table
from gesco.training.config import MIXED_PRECISION, DataConfig, check_run_settings
from gesco.training.data import build_dataset
from gesco.training.ema import EMA
from gesco.training.loop import LoopSettings, StepInputs, StepOutput, TrainingLoop
from gesco.weights_folder import WeightsFolder, model_folder

#: Where geometry networks train: "cpu", or "cuda" (the GPU of each process).
GEOMETRY_DEVICES = ("cpu", "cuda")
#: Focal loss exponents of CenterNet: alpha on the prediction's error, beta on the distance to a peak.
FOCAL_ALPHA, FOCAL_BETA = 2.0, 4.0


@dataclass(frozen=True)
class DetectorTrainConfig(Config):
    """One detector training run; saved as ``config.json`` in ``output_dir``.

    Attributes (beyond the shared loop's):
        gaussian_alpha, min_sigma: the target peaks' widths (step 1 of the module docstring), in cells.
        size_weight, offset_weight: weights of the L1 terms against the focal loss.
        min_area: validation AP50 leaves out ground-truth boxes smaller than this (px^2 of the data's size),
            as ``gesco evaluate --detector-min-area`` does.
        regenerated: folders of receivers' regenerations of training scenes (``gesco evaluate --data synthetic
            --data-seed S --out DIR`` writes them in ``DIR/images``), trained on with each scene's own boxes and
            depth (:class:`~gesco.datasets.regenerated.RegeneratedScenes`); empty: the renderer's images only.
        regenerated_share: the share of training items taken from ``regenerated``.
        texture_swap: :func:`~gesco.evaluation.geometry_augment.texture_swap` the training images (before
            ``augment``, whose flips would not flip the instance map it reads).
        init_weights: a detector folder or a shipped detector's name to start from instead of random weights
            (fine-tuning, e.g. the shipped detector on a receiver's regenerations); its config must equal
            ``model``. None: random weights.
    """

    output_dir: str = "runs/detector"
    data: DataConfig = field(
        default_factory=lambda: DataConfig(
            kind="synthetic", num_scenes=100_000, seed_offset=GEOMETRY_TRAINING_SEED_OFFSET
        )
    )
    validation: DataConfig = field(
        default_factory=lambda: DataConfig(kind="synthetic", num_scenes=200, seed_offset=VALIDATION_SEED_OFFSET)
    )
    model: DetectorConfig = field(default_factory=DetectorConfig)
    batch_size: int = 16
    max_steps: int = 8000
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 200
    lr_schedule: str = "cosine"
    gaussian_alpha: float = 0.54
    min_sigma: float = 0.5
    size_weight: float = 1.0
    offset_weight: float = 1.0
    min_area: float = 0.0
    regenerated: tuple[str, ...] = ()
    regenerated_share: float = 0.5
    texture_swap: bool = False
    init_weights: str | None = None
    augment: bool = True
    ema_decay: float = 0.999
    grad_clip: float = 10.0
    mixed_precision: str = "no"
    seed: int = 0
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    device: str = "cpu"

    def __post_init__(self) -> None:
        check_geometry_run(self)
        # written so that NaN fails as well
        for name, positive in (
            ("gaussian_alpha", True),
            ("min_sigma", True),
            ("size_weight", False),
            ("offset_weight", False),
            ("min_area", False),
        ):
            value = getattr(self, name)
            if not (math.isfinite(value) and (value > 0 if positive else value >= 0)):
                rule = "> 0" if positive else ">= 0"
                raise ValueError(f"DetectorTrainConfig.{name} must be a finite number {rule}, got {value}")
        # the scenes box only these: any other class's heatmap would never see an object
        unboxed = sorted(set(self.model.class_ids) - set(BOX_CLASSES) - set(CYCLIST_CLASSES))
        if unboxed:
            raise ValueError(
                f"classes {unboxed} have no boxes in the synthetic scenes; detect Cityscapes label ids among "
                f"{sorted(BOX_CLASSES + CYCLIST_CLASSES)}"
            )
        cyclist_classes = sorted(set(self.model.class_ids) & set(CYCLIST_CLASSES))
        if cyclist_classes and not self.data.riders:
            raise ValueError(
                f"classes {cyclist_classes} (rider, bicycle) appear only in scenes with cyclists: set data.riders "
                "(gesco train-detector --riders), or their heatmaps never see an object"
            )


def check_geometry_run(config: Config) -> None:
    """The checks the detector's and the depth network's run configs share (beyond :func:`check_run_settings`)."""
    check_run_settings(config)
    if config.data.kind != "synthetic" or config.validation.kind != "synthetic":
        raise ValueError(
            f"geometry networks train on synthetic scenes (they carry depth and boxes), got data kind "
            f"{config.data.kind!r} and validation kind {config.validation.kind!r}"
        )
    if config.device not in GEOMETRY_DEVICES:
        raise ValueError(f"device must be one of {list(GEOMETRY_DEVICES)}, got {config.device!r}")
    if config.mixed_precision not in MIXED_PRECISION:
        raise ValueError(f"mixed_precision must be one of {list(MIXED_PRECISION)}, got {config.mixed_precision!r}")
    if not 0 < config.regenerated_share <= 1:
        raise ValueError(f"regenerated_share must be in (0, 1], got {config.regenerated_share}")
    if config.texture_swap and config.batch_size < 2:
        raise ValueError(
            f"texture_swap takes textures from the other images of a batch: batch_size must be >= 2, got "
            f"{config.batch_size}"
        )


def initial_network(network_class: type[WeightsFolder], config: Config, *, resume: bool) -> torch.nn.Module:
    """The network a detector or depth network run starts from: a new one of ``config.model``, or with
    ``config.init_weights`` (a folder, or a shipped model's name) that trained network, in training mode. A
    resumed run gets a new one: its checkpoint replaces the weights, so the starting folder need not exist.

    Raises:
        FileNotFoundError: ``init_weights`` is neither a folder nor a shipped model's name.
        ValueError: its config differs from ``config.model`` (naming the fields), or its weights do not load.
    """
    if not config.init_weights or resume:
        return network_class(config.model)
    folder = model_folder(config.init_weights)
    if folder is None:
        raise FileNotFoundError(
            f"init_weights {config.init_weights!r} is neither an existing folder nor a shipped model's name"
        )
    network = network_class.from_pretrained(folder)
    if network.config != config.model:
        differ = [
            f.name for f in fields(config.model) if getattr(network.config, f.name) != getattr(config.model, f.name)
        ]
        raise ValueError(
            f"init_weights {folder} is a network with other settings than the run's model: {differ} differ; "
            "start from a network of the same settings, or drop init_weights"
        )
    return network.train()


def geometry_datasets(config: Config) -> tuple[Dataset, Dataset]:
    """The training set (with ``config.regenerated``, a share of it the receivers' regenerations) and the
    validation set of a detector or depth network run."""
    table = class_table("cityscapes")
    dataset = build_dataset(config.data, table)
    if config.regenerated:
        regenerated = RegeneratedScenes(config.regenerated, *config.data.size)
        dataset = MixedScenes(dataset, regenerated, config.regenerated_share)
    return dataset, build_dataset(config.validation, table)


@dataclass(frozen=True)
class DetectionTargets:
    """Training targets on the output grid (h, w): ``heatmap`` (B, K, h, w) in [0, 1] (1 at object centres),
    ``size`` (B, 2, h, w) log width / height in cells and ``offset`` (B, 2, h, w), both set where ``mask``
    (B, 1, h, w) is 1."""

    heatmap: torch.Tensor
    size: torch.Tensor
    offset: torch.Tensor
    mask: torch.Tensor


def detection_targets(
    boxes: tuple[Boxes, ...],
    *,
    class_ids: tuple[int, ...],
    grid: tuple[int, int],
    cell_size: tuple[float, float],
    gaussian_alpha: float = 0.54,
    min_sigma: float = 0.5,
) -> DetectionTargets:
    """The targets of step 1 of the module docstring for one batch.

    Args:
        boxes: the ground truth of each image, in the image's pixels; classes outside ``class_ids`` are skipped.
        class_ids: the class id of each heatmap channel.
        grid: (h, w) of the output grid.
        cell_size: (x, y) image pixels per cell.
    """
    rows, cols = grid
    channel_of = {c: k for k, c in enumerate(class_ids)}
    heatmap = torch.zeros(len(boxes), len(class_ids), rows, cols)
    size, offset = torch.zeros(len(boxes), 2, rows, cols), torch.zeros(len(boxes), 2, rows, cols)
    mask = torch.zeros(len(boxes), 1, rows, cols)
    ys, xs = torch.arange(rows, dtype=torch.float32)[:, None], torch.arange(cols, dtype=torch.float32)[None, :]
    cell = torch.tensor(cell_size, dtype=torch.float32)
    for b, image_boxes in enumerate(boxes):
        for xyxy, label in zip(image_boxes.xyxy.float(), image_boxes.classes.tolist(), strict=True):
            extent = (xyxy[2:] - xyxy[:2]) / cell
            if label not in channel_of or (extent <= 0).any():
                continue
            centre = (xyxy[:2] + xyxy[2:]) / 2 / cell
            x, y = int(centre[0].clamp(0, cols - 1)), int(centre[1].clamp(0, rows - 1))
            sigma_x, sigma_y = (gaussian_alpha * extent / 6).clamp(min=min_sigma).tolist()
            peak = torch.exp(-((xs - x) ** 2) / (2 * sigma_x**2) - (ys - y) ** 2 / (2 * sigma_y**2))
            k = channel_of[label]
            heatmap[b, k] = torch.maximum(heatmap[b, k], peak)
            size[b, :, y, x] = extent.log()
            offset[b, :, y, x] = centre - torch.tensor([x, y], dtype=torch.float32)
            mask[b, 0, y, x] = 1.0
    return DetectionTargets(heatmap, size, offset, mask)


@dataclass(frozen=True)
class DetectionLoss:
    """The loss of a batch and its parts (all scalars)."""

    total: torch.Tensor
    heatmap: torch.Tensor
    size: torch.Tensor
    offset: torch.Tensor


def detection_loss(
    output: DetectorOutput, targets: DetectionTargets, *, size_weight: float = 1.0, offset_weight: float = 1.0
) -> DetectionLoss:
    r"""Step 2 of the module docstring: with :math:`p` the heatmap probability and :math:`y` its target,

    .. math::

        L_{hm} = -\frac{1}{N} \sum \begin{cases}
            (1 - p)^{\alpha} \log p & y = 1 \\
            (1 - y)^{\beta} p^{\alpha} \log(1 - p) & \text{otherwise}
        \end{cases}

    over every cell and class, N the number of objects (at least 1); plus ``size_weight`` and
    ``offset_weight`` times the mean L1 error of the log sizes and offsets at the centre cells.
    """
    logits = output.heatmap.float()
    if logits.shape != targets.heatmap.shape:
        raise ValueError(
            f"heatmap logits {tuple(logits.shape)} and targets {tuple(targets.heatmap.shape)} differ; build the "
            "targets on the network's output grid"
        )
    p = torch.sigmoid(logits)
    positive = targets.heatmap >= 1.0
    # log-sigmoid keeps log p and log(1 - p) finite where p saturates.
    positive_term = (1 - p) ** FOCAL_ALPHA * F.logsigmoid(logits)
    negative_term = (1 - targets.heatmap) ** FOCAL_BETA * p**FOCAL_ALPHA * F.logsigmoid(-logits)
    objects = positive.sum().clamp(min=1)
    heatmap = -torch.where(positive, positive_term, negative_term).sum() / objects
    centres = targets.mask.sum().clamp(min=1)
    size = ((output.size.float() - targets.size).abs() * targets.mask).sum() / (2 * centres)
    offset = ((output.offset.float() - targets.offset).abs() * targets.mask).sum() / (2 * centres)
    return DetectionLoss(heatmap + size_weight * size + offset_weight * offset, heatmap, size, offset)


def flip_boxes(boxes: Boxes, width: int) -> Boxes:
    """The boxes of the image mirrored left-right (``width`` pixels wide)."""
    flipped = torch.stack([width - boxes.xyxy[:, 2], boxes.xyxy[:, 1], width - boxes.xyxy[:, 0], boxes.xyxy[:, 3]], 1)
    return Boxes(flipped, boxes.classes, boxes.instances)


def augment_with_boxes(
    images: torch.Tensor, boxes: tuple[Boxes, ...], generator: torch.Generator
) -> tuple[torch.Tensor, tuple[Boxes, ...]]:
    """The segmenter's augmentation of float (B, 3, H, W) images, with each image's boxes flipped with it."""
    batch, _, height, width = images.shape
    # augment flips its label maps with the images: a map of column indices shows which ones it flipped.
    columns = torch.arange(width).expand(batch, height, width)
    images, columns = augment(images, columns, generator)
    flipped = columns[:, 0, 0] != 0
    return images, tuple(flip_boxes(b, width) if f else b for b, f in zip(boxes, flipped.tolist(), strict=True))


def evaluate_detector(
    detector: GescoDetector, dataset: Dataset, *, batch_size: int = 32, min_area: float = 0.0
) -> DetectionScores:
    """AP50, recall and localisation error of ``detector`` on the images and boxes of ``dataset``."""
    predictions, targets, size = [], [], None
    for batch in DataLoader(dataset, batch_size=batch_size, collate_fn=collate):
        predictions += detector.detect(batch.image)
        targets += list(batch.boxes)
        size = tuple(batch.image.shape[-2:])
    return detection_scores(predictions, targets, image_size=size, classes=detector.config.class_ids, min_area=min_area)


@dataclass(frozen=True)
class DetectorTrainResult:
    step: int
    losses: list[float]
    validation: DetectionScores | None
    output_dir: Path
    seconds: float


def geometry_loop_settings(config: Config, name: str) -> LoopSettings:
    """The shared loop's part of a detector or depth network run."""
    return LoopSettings.from_config(config, name=name, device="cpu" if config.device == "cpu" else "auto")


def train_detector(config: DetectorTrainConfig, *, resume: bool = False, progress: bool = True) -> DetectorTrainResult:
    """Run (or continue, with ``resume``) the detector training of ``config``; export ``output_dir/model``."""
    # built first: a bad folder of regenerations fails before the run writes anything
    dataset, validation = geometry_datasets(config)
    class_names = class_table("cityscapes").names
    loop = TrainingLoop(
        geometry_loop_settings(config, "train-detector"),
        lambda: initial_network(GescoDetector, config, resume=resume),
        lambda parameters: torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=config.weight_decay),
        config=config,
        resume=resume,
        progress=progress,
    )

    def step(inputs: StepInputs) -> StepOutput:
        images, boxes = inputs.batch.image, inputs.batch.boxes
        if config.texture_swap:
            images = texture_swap(images, inputs.batch.instances, inputs.generator)
        if config.augment:
            images, boxes = augment_with_boxes(images, boxes, inputs.generator)
        model = loop.unwrapped_model
        x = model.network_input(images.to(inputs.device))
        output = inputs.model(x)
        height, width = images.shape[-2:]
        targets = detection_targets(
            boxes,
            class_ids=config.model.class_ids,
            grid=tuple(output.heatmap.shape[-2:]),
            cell_size=(OUTPUT_STRIDE * width / x.shape[-1], OUTPUT_STRIDE * height / x.shape[-2]),
            gaussian_alpha=config.gaussian_alpha,
            min_sigma=config.min_sigma,
        )
        moved = DetectionTargets(*(t.to(inputs.device) for t in vars(targets).values()))
        loss = detection_loss(output, moved, size_weight=config.size_weight, offset_weight=config.offset_weight)
        return StepOutput(loss.total, {"heatmap": loss.heatmap, "size": loss.size, "offset": loss.offset})

    scores: DetectionScores | None = None

    def validate(done: int) -> dict[str, object]:
        nonlocal scores
        scores = evaluate_detector(_ema_detector(config.model, loop.ema), validation, min_area=config.min_area)
        per_class = {class_names[c]: s.ap50 for c, s in scores.per_class.items()}
        return {"validation_ap50": scores.map50, "validation_per_class_ap50": per_class}

    result = loop.run(
        dataset,
        step,
        collate_fn=collate,
        on_checkpoint=validate,
        export=lambda ema, directory: _ema_detector(config.model, ema).save_pretrained(directory),
    )
    return DetectorTrainResult(
        step=result.step, losses=result.losses, validation=scores, output_dir=result.output_dir, seconds=result.seconds
    )


def _ema_detector(config: DetectorConfig, ema: EMA) -> GescoDetector:
    return ema.copy_to(GescoDetector(config)).eval()
