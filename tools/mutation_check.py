"""Does the test suite notice small deliberate bugs in core logic? Apply each mutant to a copy, run its tests.

Each mutant replaces one exact snippet of one source file (the snippet must occur exactly once) and names the
test files that should catch it. The repository itself is never touched: ``src/`` and ``tests/`` are copied
into a temporary folder, each mutant is applied there in turn, and pytest runs with that copy first on
``PYTHONPATH``. A mutant is caught when pytest fails.

    python tools/mutation_check.py                 # every mutant, a summary at the end
    python tools/mutation_check.py --only ema      # mutants whose name contains "ema"
    python tools/mutation_check.py --list

Exit status: 0 when at least ``--require`` (default 0.95) of the mutants are caught, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]  # test files or pytest node ids that should catch the mutant


# the training tests run for minutes as files: each mutant names the tests that see its bug
LOOP = "tests/training/test_loop.py::"
WIRING = "tests/training/test_training_wiring.py::"
FAULTS = ("tests/training/test_training_faults.py",)
PARTS = ("tests/training/test_training_parts.py", "tests/training/test_training_conditioning.py")
FADING = ("tests/channel/test_channel_fading.py", "tests/channel/test_digital_phy.py")
ACCOUNTING = ("tests/baselines/test_baselines_accounting.py", "tests/baselines/test_deep_jscc.py")
IO = ("tests/test_io.py",)
MIOU = tuple(
    f"tests/evaluation/test_evaluation_metrics.py::{name}"
    for name in (
        "test_identical_maps_score_one",
        "test_hand_computed_confusion",
        "test_confusion_accumulates_over_batches_and_accepts_no_class_predictions",
        "test_a_class_predicted_but_absent_from_the_target_scores_zero",
    )
)
SAMPLING_GUARDS = ("tests/test_bad_inputs.py::test_sampling_refuses_before_the_model_runs",)
GEOMETRY = ("tests/evaluation/test_evaluation_objects_depth.py",)
GEOMETRY_FILES = ("tests/datasets/test_datasets_geometry.py",)
DEPTH_LOSS = tuple(
    f"tests/evaluation/test_evaluation_depth_network.py::{name}"
    for name in (
        "test_loss_is_zero_for_the_truth_and_scale_invariant_at_full_variance_focus",
        "test_loss_is_per_image_and_images_weigh_alike",
        "test_a_few_training_steps_lower_the_loss",
    )
)
DETECTOR_PARTS = tuple(
    f"tests/evaluation/test_evaluation_detector.py::{name}"
    for name in (
        "test_decode_of_a_hand_made_heatmap",
        "test_targets_decode_back_to_the_ground_truth_boxes",
        "test_a_few_training_steps_lower_the_loss",
        "test_the_focal_loss_by_hand",
        "test_boxes_flip_with_their_images",
    )
)
BAD_CLI = (
    "tests/test_bad_inputs.py::test_transmit_label_files",
    "tests/test_bad_inputs.py::test_unusable_output_paths",
)

MUTANTS = (
    # training-loop wiring
    Mutant(
        "dropout not applied",
        "src/gesco/training/trainer.py",
        "drop_condition(condition, config.condition_dropout,",
        "drop_condition(condition, 0.0,",
        (WIRING + "test_condition_dropout_zeroes_whole_maps_at_its_rate",),
    ),
    Mutant(
        "dropout at half its rate",
        "src/gesco/training/conditioning.py",
        ">= probability\n",
        ">= probability / 2\n",
        PARTS,
    ),
    Mutant(
        "training noise list ignored",
        "src/gesco/training/trainer.py",
        "sigmas=config.noise_sigmas,",
        "sigmas=NOISE_AWARE_TRAINING_SIGMAS,",
        (WIRING + "test_the_configured_noise_list_is_drawn",),
    ),
    Mutant(
        "paper noise list changed",
        "src/gesco/channel/quality.py",
        "(0.6, 0.36, 0.22, 0.13, 0.08, 0.05, 0.0, 0.0, 0.0)",
        "(0.6, 0.36, 0.22, 0.13, 0.08, 0.05, 0.0, 0.0)",
        PARTS,
    ),
    Mutant(
        "paper noise one per map",
        "src/gesco/training/conditioning.py",
        "sigma = draw_sigmas(batch, sigmas, per_map=False,",
        "sigma = draw_sigmas(batch, sigmas, per_map=True,",
        PARTS,
    ),
    Mutant(
        "channel mode without FDS",
        "src/gesco/training/conditioning.py",
        "return out.condition, sigma",
        "return out.received.payload.values, sigma",
        PARTS,
    ),
    Mutant(
        "trainer ignores the noise mode",
        "src/gesco/training/trainer.py",
        "mode=config.noise,",
        'mode="paper",',
        (WIRING + "test_the_channel_mode_trains_on_the_fds_output",),
    ),
    # EMA
    Mutant(
        "EMA lerp weight swapped",
        "src/gesco/training/ema.py",
        "shadow.lerp_(value.detach().float(), 1.0 - decay)",
        "shadow.lerp_(value.detach().float(), decay)",
        PARTS,
    ),
    Mutant(
        "EMA warm-up off by one",
        "src/gesco/training/ema.py",
        "(1 + self.updates) / (10 + self.updates)",
        "(1 + self.updates) / (11 + self.updates)",
        PARTS,
    ),
    Mutant(
        "EMA update count lost on resume",
        "src/gesco/training/checkpoint.py",
        "ema.load_state_dict(state.ema, state.ema_updates)",
        "ema.load_state_dict(state.ema, 0)",
        (LOOP + "test_resume_continues_exactly",),
    ),
    Mutant(
        "EMA weights not restored",
        "src/gesco/training/checkpoint.py",
        "ema.load_state_dict(state.ema, state.ema_updates)",
        "ema.load_state_dict(state.model, state.ema_updates)",
        (LOOP + "test_resume_continues_exactly",),
    ),
    Mutant(
        "model weights saved as EMA",
        "src/gesco/training/loop.py",
        "                self.ema.state_dict(),\n",
        "                self.unwrapped_model.state_dict(),\n",
        (LOOP + "test_ema_follows_its_decay",),
    ),
    # batches and sharding
    Mutant(
        "ranks overlap after the first step",
        "src/gesco/training/loop.py",
        "first = (position * self.world_size + self.rank) * self.batch_size",
        "first = (position + self.rank) * self.batch_size",
        (WIRING + "test_processes_share_every_step_of_a_single_process_batch",),
    ),
    Mutant(
        "every epoch in one order",
        "src/gesco/training/loop.py",
        "if step_epoch != epoch:",
        "if epoch is None:",
        (LOOP + "test_step_sampler_is_resumable_and_shards_processes",),
    ),
    Mutant(
        "step draws ignore the rank",
        "src/gesco/training/loop.py",
        "return _seeded_generator(_STEP_STREAM, seed, step, rank)",
        "return _seeded_generator(_STEP_STREAM, seed, step)",
        (LOOP + "test_step_generator_depends_on_seed_step_and_rank",),
    ),
    Mutant(
        "warm-up starts at zero",
        "src/gesco/training/loop.py",
        "return (step + 1) / warmup_steps",
        "return step / warmup_steps",
        (LOOP + "test_learning_rate_factor_warms_up_from_the_first_step",),
    ),
    # checkpoints and resume
    Mutant(
        "numpy RNG not restored",
        "src/gesco/training/checkpoint.py",
        '    if "numpy" in state:\n',
        '    if "numpy" in state and False:\n',
        FAULTS,
    ),
    Mutant(
        "no fallback to an older checkpoint",
        "src/gesco/training/checkpoint.py",
        "for path in reversed(found):",
        "for path in reversed(found[-1:]):",
        FAULTS,
    ),
    Mutant(
        "partial checkpoints never removed",
        "src/gesco/training/checkpoint.py",
        "        shutil.rmtree(folder, ignore_errors=True)\n",
        "        pass\n",
        FAULTS,
    ),
    Mutant(
        "state.json fields unchecked",
        "src/gesco/training/checkpoint.py",
        "        if isinstance(value, bool) or not isinstance(value, int) or value < 0:\n",
        "        if False:\n",
        FAULTS,
    ),
    Mutant(
        "keeps one checkpoint too many",
        "src/gesco/training/checkpoint.py",
        "list_checkpoints(root)[:-keep]",
        "list_checkpoints(root)[: -keep - 1]",
        PARTS,
    ),
    # fading
    Mutant(
        "fading blocks tiled, not contiguous",
        "src/gesco/channel/digital/symbol_channel.py",
        "h = h.repeat_interleave(block, dim=1)[:, :length]",
        "h = h.repeat(1, block)[:, :length]",
        FADING,
    ),
    Mutant(
        "complex noise variance per real dimension",
        "src/gesco/channel/digital/symbol_channel.py",
        "math.sqrt(variance / 2)",
        "math.sqrt(variance)",
        FADING,
    ),
    Mutant(
        "no coherence length fades per symbol",
        "src/gesco/channel/digital/symbol_channel.py",
        "block = self.coherence_symbols or length",
        "block = self.coherence_symbols or 1",
        FADING,
    ),
    # quality
    Mutant(
        "peak SNR as a power ratio",
        "src/gesco/channel/quality.py",
        "10 ** (-snr_db / 20)",
        "10 ** (-snr_db / 10)",
        ("tests/channel/test_channel_awgn.py",),
    ),
    Mutant(
        "Es/N0 noise per real value",
        "src/gesco/channel/quality.py",
        "math.sqrt(mean_square * esn0_db_to_n0(esn0_db))",
        "math.sqrt(mean_square * esn0_db_to_n0(esn0_db) / 2)",
        ("tests/channel/test_channel_unit_power.py",),
    ),
    # accounting and metrics
    Mutant(
        "budget floors the per-pixel rate",
        "src/gesco/baselines/accounting.py",
        "return math.floor(per_pixel * height * width)",
        "return math.floor(per_pixel) * height * width",
        ACCOUNTING,
    ),
    Mutant(
        "budget rounds up",
        "src/gesco/baselines/accounting.py",
        "return math.floor(per_pixel * height * width)",
        "return math.ceil(per_pixel * height * width)",
        ACCOUNTING,
    ),
    Mutant(
        "side information counts present classes",
        "src/gesco/baselines/accounting.py",
        "side_info_bits=table.num_classes,",
        "side_info_bits=int(present[b].sum()),",
        ACCOUNTING,
    ),
    Mutant(
        "analog side information dropped",
        "src/gesco/baselines/accounting.py",
        "height * width, payload.table.num_classes)",
        "height * width, 0)",
        ACCOUNTING,
    ),
    Mutant(
        "channel uses round down",
        "src/gesco/channel/symbols.py",
        "return math.ceil(real_values / 2)",
        "return real_values // 2",
        ACCOUNTING,
    ),
    Mutant(
        "mIoU union without false positives",
        "src/gesco/evaluation/metrics.py",
        "union = in_target + in_prediction - true_positive",
        "union = in_target",
        MIOU,
    ),
    Mutant(
        "mIoU skips predicted-only classes",
        "src/gesco/evaluation/metrics.py",
        "occurs = union > 0",
        "occurs = in_target > 0",
        MIOU,
    ),
    # writes and guards
    Mutant(
        "text written in place",
        "src/gesco/io.py",
        "    with atomic_path(path) as tmp:\n        tmp.write_text(text)",
        "    Path(path).write_text(text)",
        IO,
    ),
    Mutant(
        "writer gets the real path",
        "src/gesco/io.py",
        "    with atomic_path(path) as tmp:\n        writer(tmp)",
        "    writer(Path(path))",
        IO,
    ),
    Mutant(
        "JSON not checked for NaN",
        "src/gesco/io.py",
        "    found = first_non_finite(data)\n",
        "    found = None\n",
        IO,
    ),
    Mutant("output folder written in place", "src/gesco/io.py", "        yield staging\n", "        yield path\n", IO),
    Mutant(
        "an earlier report's files stay beside the new one",
        "src/gesco/io.py",
        "    for name in (*last, *replace):\n",
        "    for name in last:\n",
        ("tests/evaluation/test_evaluation_report_sets.py",),
    ),
    Mutant(
        "solver step limit off by one",
        "src/gesco/receiver/sampling.py",
        "if config.steps >= len(diffusion):",
        "if config.steps > len(diffusion):",
        SAMPLING_GUARDS,
    ),
    Mutant(
        "guidance not checked",
        "src/gesco/receiver/sampling.py",
        'for name in ("guidance", "eta"):',
        'for name in ("eta",):',
        (
            "tests/test_bad_inputs.py::test_api[sampler-guidance-nan]",
            "tests/test_bad_inputs.py::test_api[sampler-guidance-inf]",
        ),
    ),
    Mutant(
        "condition magnitude unchecked",
        "src/gesco/receiver/sampling.py",
        "    if largest > MAX_CONDITION_MAGNITUDE:\n",
        "    if False:\n",
        SAMPLING_GUARDS,
    ),
    # detection and depth scores (objects, locations and depth)
    Mutant(
        "AP without the precision envelope",
        "src/gesco/evaluation/objects_depth.py",
        "envelope = np.maximum.accumulate(np.concatenate([precision, [0.0]])[::-1])[::-1]",
        "envelope = np.concatenate([precision, [0.0]])",
        GEOMETRY,
    ),
    Mutant(
        "IoU union counts the overlap twice",
        "src/gesco/evaluation/objects_depth.py",
        "union = area_a[:, None] + area_b[None, :] - inter",
        "union = area_a[:, None] + area_b[None, :]",
        GEOMETRY,
    ),
    Mutant(
        "a ground-truth box matched twice",
        "src/gesco/evaluation/objects_depth.py",
        "taken[i][best] = True",
        "taken[i][best] = bool(small[i][best])",
        GEOMETRY,
    ),
    Mutant(
        "predictions ranked lowest score first",
        "src/gesco/evaluation/objects_depth.py",
        "entries.sort(key=lambda e: -e[2])",
        "entries.sort(key=lambda e: e[2])",
        GEOMETRY,
    ),
    Mutant(
        "a match needs more than the IoU threshold",
        "src/gesco/evaluation/objects_depth.py",
        "if iou[best] < iou_threshold:",
        "if iou[best] <= iou_threshold:",
        GEOMETRY,
    ),
    Mutant(
        "recall ignores the score threshold",
        "src/gesco/evaluation/objects_depth.py",
        "if score >= score_threshold:",
        "if score >= 0:",
        GEOMETRY,
    ),
    Mutant(
        "localisation from corners, not centres",
        "src/gesco/evaluation/objects_depth.py",
        "centre = (box[0, :2] + box[0, 2:]) / 2 - (truth[i][best, :2] + truth[i][best, 2:]) / 2",
        "centre = box[0, :2] - truth[i][best, :2]",
        GEOMETRY,
    ),
    Mutant(
        "localisation over the longer side, not the diagonal",
        "src/gesco/evaluation/objects_depth.py",
        "diagonal = float(np.hypot(*image_size))",
        "diagonal = float(max(image_size))",
        GEOMETRY,
    ),
    Mutant(
        "predictions finding small boxes counted as false positives",
        "src/gesco/evaluation/objects_depth.py",
        "counted[n] = not bool((overlap[small[i]] >= iou_threshold).any())",
        "counted[n] = True",
        GEOMETRY,
    ),
    Mutant(
        "mAP counts classes without ground truth as zero",
        "src/gesco/evaluation/objects_depth.py",
        "aps = [c.ap50 for c in per_class.values() if c.ap50 is not None]",
        "aps = [c.ap50 or 0.0 for c in per_class.values()]",
        GEOMETRY,
    ),
    Mutant(
        "delta1 one-sided",
        "src/gesco/evaluation/objects_depth.py",
        "torch.maximum(d / d_star, d_star / d)",
        "(d / d_star)",
        GEOMETRY,
    ),
    Mutant(
        "AbsRel relative to the prediction",
        "src/gesco/evaluation/objects_depth.py",
        "abs_rel[b] = ((d - d_star).abs() / d_star).mean()",
        "abs_rel[b] = ((d - d_star).abs() / d).mean()",
        GEOMETRY,
    ),
    Mutant(
        "median scaling inverted",
        "src/gesco/evaluation/objects_depth.py",
        "d = d * (d_star.median() / d.median().clamp(min=min_depth))",
        "d = d * (d.median() / d_star.median().clamp(min=min_depth))",
        GEOMETRY,
    ),
    Mutant(
        "depth beyond max_depth scored",
        "src/gesco/evaluation/objects_depth.py",
        "valid = torch.isfinite(truth) & (truth > min_depth) & (truth <= high)",
        "valid = torch.isfinite(truth) & (truth > min_depth)",
        GEOMETRY,
    ),
    Mutant(
        "predictions not clipped to the valid range",
        "src/gesco/evaluation/objects_depth.py",
        "d = d.nan_to_num(nan=min_depth).clamp(min_depth, high)",
        "d = d.nan_to_num(nan=min_depth)",
        GEOMETRY,
    ),
    Mutant(
        "images without valid depth averaged as zero",
        "src/gesco/evaluation/objects_depth.py",
        "abs_rel=float(abs_rel[scored].mean()), delta1=float(delta1[scored].mean()), images=int(scored.sum())",
        "abs_rel=float(abs_rel.nan_to_num().mean()), delta1=float(delta1.nan_to_num().mean()), images=len(abs_rel)",
        GEOMETRY,
    ),
    # Cityscapes' depth and object files
    Mutant(
        "disparity read without its +1 offset",
        "src/gesco/datasets/cityscapes_geometry.py",
        "disparity = np.where(values > 0, (values - 1) / 256, 0.0)",
        "disparity = np.where(values > 0, values / 256, 0.0)",
        GEOMETRY_FILES,
    ),
    Mutant(
        "disparity written without its +1 offset",
        "src/gesco/datasets/cityscapes_geometry.py",
        "values = np.clip(np.round(disparity * 256) + 1, 2, np.iinfo(np.uint16).max)",
        "values = np.clip(np.round(disparity * 256), 2, np.iinfo(np.uint16).max)",
        GEOMETRY_FILES,
    ),
    Mutant(
        "polygon boxes one pixel short",
        "src/gesco/datasets/cityscapes_geometry.py",
        "x1, y1 = np.clip(np.floor(polygon.max(axis=0)) + 1, 0, (width, height))",
        "x1, y1 = np.clip(np.floor(polygon.max(axis=0)), 0, (width, height))",
        GEOMETRY_FILES,
    ),
    Mutant(
        "deleted polygons boxed",
        "src/gesco/datasets/cityscapes_geometry.py",
        'if obj.get("deleted") or label not in BOX_LABEL_IDS:',
        "if label not in BOX_LABEL_IDS:",
        GEOMETRY_FILES,
    ),
    Mutant(
        "every polygon of a class is one instance",
        "src/gesco/datasets/cityscapes_geometry.py",
        "rows.append((x0, y0, x1, y1, label, label * 1000 + k))",
        "rows.append((x0, y0, x1, y1, label, label * 1000))",
        GEOMETRY_FILES,
    ),
    Mutant(
        "camera baseline times fx read as a ratio",
        "src/gesco/datasets/cityscapes_geometry.py",
        'baseline_fx = float(camera["extrinsic"]["baseline"]) * float(camera["intrinsic"]["fx"])',
        'baseline_fx = float(camera["intrinsic"]["fx"]) / float(camera["extrinsic"]["baseline"])',
        GEOMETRY_FILES,
    ),
    # the depth network's loss
    Mutant(
        "depth loss reads unknown depth",
        "src/gesco/evaluation/depth_network.py",
        "valid = torch.isfinite(target) & (target > 0)",
        "valid = torch.isfinite(target)",
        DEPTH_LOSS,
    ),
    Mutant(
        "depth loss forgives the batch's scale, not each image's",
        "src/gesco/evaluation/depth_network.py",
        "mean = g.sum(dim=(1, 2)) / n",
        "mean = g.sum() / n.sum()",
        DEPTH_LOSS,
    ),
    Mutant(
        "depth loss weighs images by their valid pixels",
        "src/gesco/evaluation/depth_network.py",
        "return loss[count > 0].mean()",
        "return (loss * count).sum() / count.sum()",
        DEPTH_LOSS,
    ),
    Mutant(
        "depth loss rewards the scale error",
        "src/gesco/evaluation/depth_network.py",
        "- variance_focus * mean.square()",
        "+ variance_focus * mean.square()",
        DEPTH_LOSS,
    ),
    # the detector's training targets, loss and augmentation
    Mutant(
        "focal loss without the penalty reduction near centres",
        "src/gesco/evaluation/detector_training.py",
        "negative_term = (1 - targets.heatmap) ** FOCAL_BETA * p**FOCAL_ALPHA * F.logsigmoid(-logits)",
        "negative_term = p**FOCAL_ALPHA * F.logsigmoid(-logits)",
        DETECTOR_PARTS,
    ),
    Mutant(
        "focal loss averaged over cells, not objects",
        "src/gesco/evaluation/detector_training.py",
        "objects = positive.sum().clamp(min=1)",
        "objects = torch.tensor(float(positive.numel()))",
        DETECTOR_PARTS,
    ),
    Mutant(
        "size loss over every cell, not the centres",
        "src/gesco/evaluation/detector_training.py",
        "size = ((output.size.float() - targets.size).abs() * targets.mask).sum() / (2 * centres)",
        "size = (output.size.float() - targets.size).abs().mean()",
        DETECTOR_PARTS,
    ),
    Mutant(
        "box sizes learned in pixels, not cells",
        "src/gesco/evaluation/detector_training.py",
        "size[b, :, y, x] = extent.log()",
        "size[b, :, y, x] = (extent * cell).log()",
        DETECTOR_PARTS,
    ),
    Mutant(
        "flipped boxes one pixel off",
        "src/gesco/evaluation/detector_training.py",
        "[width - boxes.xyxy[:, 2], boxes.xyxy[:, 1], width - boxes.xyxy[:, 0], boxes.xyxy[:, 3]]",
        "[width - 1 - boxes.xyxy[:, 2], boxes.xyxy[:, 1], width - 1 - boxes.xyxy[:, 0], boxes.xyxy[:, 3]]",
        DETECTOR_PARTS,
    ),
    Mutant(
        "boxes flipped when their images are not",
        "src/gesco/evaluation/detector_training.py",
        "flipped = columns[:, 0, 0] != 0",
        "flipped = columns[:, 0, 0] == 0",
        DETECTOR_PARTS,
    ),
    Mutant(
        "trainers accept optimiser settings that cannot train",
        "src/gesco/training/config.py",
        "        if hasattr(config, name) and not holds(getattr(config, name)):\n",
        "        if False:\n",
        ("tests/training/test_training_config.py",),
    ),
    Mutant(
        "NaN learning rate accepted",
        "src/gesco/training/config.py",
        '"learning_rate": ("a finite number > 0", lambda v: math.isfinite(v) and v > 0),',
        '"learning_rate": ("a finite number > 0", lambda v: not v <= 0),',
        ("tests/training/test_training_config.py",),
    ),
    Mutant(
        "negative box area accepted",
        "src/gesco/evaluation/objects_depth.py",
        "    if not (math.isfinite(min_area) and min_area >= 0):\n",
        "    if min_area != min_area:\n",
        GEOMETRY,
    ),
    Mutant(
        "CLI lets OSError through",
        "src/gesco/cli/main.py",
        "except (ValueError, TypeError, OSError, MemoryError) as err:",
        "except (ValueError, TypeError, FileNotFoundError) as err:",
        BAD_CLI,
    ),
    Mutant(
        "config unknown fields accepted",
        "src/gesco/config.py",
        "        if unknown:\n",
        "        if False:\n",
        ("tests/test_config.py", "tests/test_bad_inputs.py::test_api[config-unknown]"),
    ),
)


def apply(copy: Path, mutant: Mutant) -> str:
    """Write the mutant into the copy; return the original text."""
    path = copy / mutant.path
    text = path.read_text()
    count = text.count(mutant.old)
    if count != 1:
        raise SystemExit(f"mutant {mutant.name!r}: its snippet occurs {count} times in {mutant.path}, not once")
    path.write_text(text.replace(mutant.old, mutant.new))
    return text


def run_tests(copy: Path, tests: tuple[str, ...], timeout: int) -> tuple[bool | None, float]:
    """(caught, seconds): whether pytest failed on the mutated copy; None when it ran past ``timeout`` (a loaded
    machine, or a mutant that hangs: either way not counted as caught)."""
    env = {**os.environ, "PYTHONPATH": str(copy / "src"), "PYTHONDONTWRITEBYTECODE": "1"}
    started = time.perf_counter()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests],
            cwd=copy,
            env=env,
            capture_output=True,
            timeout=timeout,
        )
        caught = result.returncode != 0
    except subprocess.TimeoutExpired:
        caught = None
    return caught, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", help="run the mutants whose name contains this (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the mutants and stop")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per mutant")
    parser.add_argument("--require", type=float, default=0.95, help="fraction of mutants that must be caught")
    args = parser.parse_args()
    mutants = [m for m in MUTANTS if args.only is None or any(part in m.name for part in args.only)]
    missing = sorted({t for m in mutants for t in m.tests if not (ROOT / t.partition("::")[0]).is_file()})
    if missing:
        raise SystemExit(f"test files named by mutants do not exist: {missing}")
    if args.list:
        for m in mutants:
            print(f"{m.name:45s} {m.path}")
        return 0
    with tempfile.TemporaryDirectory(prefix="gesco-mutants-") as folder:
        copy = Path(folder) / "repo"
        copy.mkdir()
        for part in ("src", "tests", "pyproject.toml"):
            source = ROOT / part
            (shutil.copytree if source.is_dir() else shutil.copy)(source, copy / part)
        # tests find the official reference tensors beside the repository
        shared = ROOT.parent / "shared"
        if shared.is_dir():
            (Path(folder) / "shared").symlink_to(shared)
        for mutant in mutants:  # every snippet is checked before any test runs
            (copy / mutant.path).write_text(apply(copy, mutant))
        caught_count = timed_out = 0
        for mutant in mutants:
            original = apply(copy, mutant)
            try:
                caught, seconds = run_tests(copy, mutant.tests, args.timeout)
            finally:
                (copy / mutant.path).write_text(original)
            caught_count += bool(caught)
            timed_out += caught is None
            verdict = {True: "caught  ", False: "SURVIVED", None: "TIMEOUT "}[caught]
            print(f"{verdict} {seconds:6.1f} s  {mutant.name}", flush=True)
    share = caught_count / len(mutants) if mutants else 1.0
    print(f"{caught_count} of {len(mutants)} mutants caught ({share:.0%}); {timed_out} ran past --timeout")
    return 0 if share >= args.require else 1


if __name__ == "__main__":
    sys.exit(main())
