"""The report of an evaluation sweep: JSON, CSV, a Markdown table in the paper's layout, plots and sample figures.

Files written into ``OUT``, as one set: built aside and moved in together, ``results.json`` last, so a failed or
killed run leaves the previous report whole (or none without ``results.json``), never a mix:

- ``results.json``: settings, seeds, methods and samplers, every score of every (method, PSNR) cell including
  per-class IoU, per-class detection (``geometry``: AP50 and recall per class, localisation in pixels), notes
  on skipped metrics, payload sizes and timings (non-finite numbers as null);
- ``results.csv``: one row per (method, PSNR), one column per metric; ``per_class_iou.csv``: one row per
  (method, PSNR, class); with a detector, ``per_class_detection.csv``: AP50, recall and box counts per
  (method, PSNR, class) (:mod:`gesco.evaluation.detection_tables`);
- ``report.md``: rows = methods, columns = PSNR label x metric (as the paper's tables), per-class IoU and
  per-class detection tables, payload sizes and notes;
- ``plots/<metric>.png``: each metric against the PSNR label, one line per method; with a detector,
  ``plots/recall_per_class.png``;
- ``figures/samples_<method>.png``: ground truth, map and regenerations across the PSNR labels;
- ``figures/objects_depth_<scene>.png``, with a detector or depth network: per PSNR label, the scene's
  regenerations with the boxes found and the depth estimated (:mod:`gesco.evaluation.geometry_figure`).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import Dataset  # noqa: E402

from gesco.evaluation.detection_tables import (  # noqa: E402
    DetectionCell,
    csv_rows,
    has_detection,
    markdown_lines,
    recall_plot,
)
from gesco.evaluation.figures import image_to_rgb, save_grid, save_metric_plot  # noqa: E402
from gesco.evaluation.geometry_figure import ObjectsDepthFigure  # noqa: E402
from gesco.evaluation.markdown import table_section  # noqa: E402
from gesco.evaluation.scoring import SetScores, image_path, read_images  # noqa: E402
from gesco.evaluation.sweep import CLEAN, REAL_IMAGES, RECEIVED_MAP, SweepResult, set_folder  # noqa: E402
from gesco.io import atomic_write_text, output_folder, write_json  # noqa: E402
from gesco.semantics.classes import ClassTable  # noqa: E402
from gesco.semantics.maps import SemanticMap  # noqa: E402


@dataclass(frozen=True)
class MetricColumn:
    """A reported metric: its key (JSON / CSV), title, direction and how to read it from a cell's scores."""

    key: str
    title: str
    higher_is_better: bool
    read: Callable[[SetScores], float | None]


def _detection(scores: SetScores) -> bool:
    return scores.geometry is not None and scores.geometry.detection is not None


def _depth(scores: SetScores) -> bool:
    return scores.geometry is not None and scores.geometry.depth is not None


METRICS = (
    MetricColumn("miou", "mIoU", True, lambda s: s.segmentation.miou if s.segmentation else None),
    MetricColumn("pixel_accuracy", "Acc", True, lambda s: s.segmentation.pixel_accuracy if s.segmentation else None),
    MetricColumn("fid", "FID", False, lambda s: s.distribution.fid if s.distribution else None),
    MetricColumn("kid", "KID", False, lambda s: s.distribution.kid_mean if s.distribution else None),
    MetricColumn("lpips", "LPIPS", False, lambda s: s.paired.lpips if s.paired else None),
    MetricColumn("ssim", "SSIM", True, lambda s: s.paired.ssim if s.paired else None),
    MetricColumn("ms_ssim", "MS-SSIM", True, lambda s: s.paired.ms_ssim if s.paired else None),
    MetricColumn("image_psnr", "PSNR dB", True, lambda s: s.paired.psnr if s.paired else None),
    MetricColumn("ap50", "AP50", True, lambda s: s.geometry.detection.map50 if _detection(s) else None),
    MetricColumn(
        "localisation_diagonal",
        "Loc/diag",
        False,
        lambda s: s.geometry.detection.localisation_diagonal if _detection(s) else None,
    ),
    MetricColumn("abs_rel", "AbsRel", False, lambda s: s.geometry.depth.abs_rel if _depth(s) else None),
    MetricColumn("delta1", "δ1", True, lambda s: s.geometry.depth.delta1 if _depth(s) else None),
)
REFERENCE_LABELS = {REAL_IMAGES: "Real images (reference)", RECEIVED_MAP: "Argmax of the FDS-filtered received map"}


@dataclass(frozen=True)
class ReportFiles:
    json: Path
    csv: Path
    per_class_csv: Path
    markdown: Path
    plots: list[Path]
    figures: list[Path]


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _row_order(result: SweepResult) -> list[tuple[str, str]]:
    """(key, label) of every row: the methods, then the two references."""
    rows = [(m.name, m.label) for m in result.methods]
    return rows + [(key, label) for key, label in REFERENCE_LABELS.items()]


def reported_metrics(result: SweepResult) -> list[MetricColumn]:
    """The metrics with at least one value (the others were skipped; ``result.notes`` says why)."""
    return [m for m in METRICS if any(_finite(m.read(c.scores)) is not None for c in result.cells)]


def _cell_record(cell, metrics: Sequence[MetricColumn], label_names: dict[int, str]) -> dict:
    record = {"method": cell.method, "psnr": cell.psnr}
    record.update({m.key: _finite(m.read(cell.scores)) for m in metrics})
    distribution = cell.scores.distribution
    record["kid_std"] = _finite(distribution.kid_std) if distribution else None
    segmentation = cell.scores.segmentation
    record["per_class_iou"] = dict(segmentation.per_class_iou) if segmentation else None
    record["images"] = cell.scores.paired.images if cell.scores.paired else None
    geometry = cell.scores.geometry
    record["geometry"] = {k: _finite(v) for k, v in geometry.flat(label_names).items()} if geometry else None
    return record


def detection_cells(result: SweepResult) -> list[DetectionCell]:
    """Every (row, PSNR) cell's detection scores, methods first, then the references (the real images)."""
    cells = {(c.method, c.psnr): c.scores for c in result.cells}
    return [
        DetectionCell(key, label, p, cells[key, p].geometry)
        for key, label in _row_order(result)
        for p in result.psnrs
        if (key, p) in cells
    ]


def results_json(result: SweepResult) -> dict:
    methods = [
        {
            "name": m.name,
            "label": m.label,
            "model": m.model,
            "map_denoiser": m.map_denoiser,
            "clean_map": m.clean_map,
            "sampler": m.sampler.to_dict(),
        }
        for m in result.methods
    ]
    return {
        "settings": result.settings,
        "psnr_labels": result.psnrs,
        "methods": methods,
        "references": [{"name": k, "label": v} for k, v in REFERENCE_LABELS.items()],
        "metrics": [{"key": m.key, "title": m.title, "higher_is_better": m.higher_is_better} for m in METRICS],
        "results": [_cell_record(c, METRICS, result.label_names) for c in result.cells],
        "classes": list(result.class_names),
        "notes": result.notes,
        "payload_per_pixel": dict(result.payload),
        "generation_seconds": result.generation_seconds,
        "scoring_seconds": result.scoring_seconds,
    }


def format_value(value: float | None, key: str) -> str:
    if value is None:
        return "–"
    if key == "fid" or key == "image_psnr":
        return f"{value:.2f}"
    if key == "kid":
        return f"{value:.4f}"
    return f"{value:.3f}"


def csv_text(rows: list[list]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def markdown_report(result: SweepResult) -> str:
    metrics = reported_metrics(result)
    cells = {(c.method, c.psnr): c.scores for c in result.cells}
    settings = result.settings
    lines = ["# gesco evaluation", ""]
    lines += [
        f"- {key}: {value}" for key, value in settings.items() if value is not None and not isinstance(value, dict)
    ]
    lines += ["", "## Methods", ""]
    for method in result.methods:
        sampler = method.sampler
        lines.append(
            f"- {method.label} (`{method.name}`): {method.model} model, "
            f"{'clean map' if method.clean_map else 'received map'}, map denoiser {method.map_denoiser}, "
            f"{sampler.sampler} {sampler.steps} steps, guidance {sampler.guidance:g}"
        )
    lines += [
        "",
        "## Results",
        "",
        "Rows: methods; columns: PSNR label x metric (↑ higher is better, ↓ lower is better). "
        "The oracle and the real images do not depend on the channel: one value, repeated.",
        "",
    ]
    header = ["Method"] + [f"{p} {m.title}{'↑' if m.higher_is_better else '↓'}" for p in result.psnrs for m in metrics]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for key, label in _row_order(result):
        values = [
            format_value(_finite(m.read(cells[key, p])), m.key) if (key, p) in cells else "–"
            for p in result.psnrs
            for m in metrics
        ]
        lines.append("| " + " | ".join([label] + values) + " |")
    skipped = [m for m in METRICS if m not in metrics]
    if skipped or result.notes:
        lines += ["", "Notes:", ""]
        lines += [f"- {m.title}: not computed ({result.notes.get(m.key, 'no value')})" for m in skipped]
        lines += [f"- {key}: {text}" for key, text in result.notes.items() if key not in {m.key for m in skipped}]
    for key, label in _row_order(result):
        rows = [
            (p, cells[key, p].segmentation) for p in result.psnrs if (key, p) in cells and cells[key, p].segmentation
        ]
        if not rows:
            continue
        classes = [c for c in result.class_names if any(c in s.per_class_iou for _, s in rows)]
        table = [[name, *(format_value(s.per_class_iou.get(name), "iou") for _, s in rows)] for name in classes]
        lines += table_section(f"Per-class IoU: {label}", ["Class", *(p for p, _ in rows)], table)
    lines += markdown_lines(detection_cells(result), result.psnrs, result.label_names, quality_title="PSNR")
    payload = result.payload
    lines += [
        "",
        "## Payload per pixel (mean over the maps)",
        "",
        "| " + " | ".join(payload) + " |",
        "|" + "---|" * len(payload),
        "| " + " | ".join(f"{v:.3f}" for v in payload.values()) + " |",
        "",
    ]
    return "\n".join(lines)


def write_plots(result: SweepResult, folder: Path) -> list[Path]:
    """One PNG per reported metric: value against PSNR label, one line per method."""
    cells = {(c.method, c.psnr): c.scores for c in result.cells}
    positions = range(len(result.psnrs))
    written = []
    for metric in reported_metrics(result):
        fig, ax = plt.subplots(figsize=(6, 4))
        for key, label in _row_order(result):
            values = [_finite(metric.read(cells[key, p])) if (key, p) in cells else None for p in result.psnrs]
            if all(v is None for v in values):
                continue
            style = "--" if key in REFERENCE_LABELS else "-o"
            ax.plot(positions, [math.nan if v is None else v for v in values], style, label=label)
        ax.set_xticks(list(positions), result.psnrs)
        ax.set_xlabel("channel PSNR label (dB)")
        ylabel = f"{metric.title} ({'higher' if metric.higher_is_better else 'lower'} is better)"
        written.append(save_metric_plot(fig, ax, folder / f"{metric.key}.png", ylabel=ylabel))
    recall = recall_plot(
        detection_cells(result),
        result.psnrs,
        result.label_names,
        folder / "recall_per_class.png",
        positions=list(positions),
        xlabel="channel PSNR label (dB)",
        references=list(REFERENCE_LABELS),
    )
    return written + ([recall] if recall is not None else [])


def write_sample_figures(
    result: SweepResult, dataset: Dataset, table: ClassTable, images: Path, folder: Path, *, samples: int = 4
) -> list[Path]:
    """Per method: rows = the first ``samples`` items; columns = ground truth, map, one image per PSNR.

    ``images`` is the sweep's ``OUT/images``; the figures go into ``folder``."""
    items = [dataset[i] for i in range(samples)]
    ground_truth = image_to_rgb(torch.stack([item.image for item in items]))
    maps = SemanticMap(torch.stack([item.labels for item in items]), table).colorize().permute(0, 2, 3, 1).numpy()
    written = []
    for method in result.methods:
        psnrs = [None] if method.clean_map else [float(p) for p in result.psnrs]
        columns = [
            image_to_rgb(read_images([image_path(set_folder(images, method, p), item.name) for item in items]))
            for p in psnrs
        ]
        rows = [[ground_truth[r], maps[r]] + [column[r] for column in columns] for r in range(samples)]
        titles = ["ground truth", "map"] + [CLEAN if p is None else f"PSNR {p:g}" for p in psnrs]
        path = folder / f"samples_{method.name}.png"
        written.append(save_grid(path, rows, titles, row_titles=[item.name for item in items], title=method.label))
    return written


def write_objects_depth_figures(
    result: SweepResult, dataset: Dataset, images: Path, folder: Path, geometry: ObjectsDepthFigure, *, samples: int
) -> list[Path]:
    """Per item of the first ``samples``: rows = PSNR labels; columns = the ground truth's and each noisy-map
    method's (image with boxes, depth). Clean-map methods are left out: they have one image, not one per row."""
    methods = [m for m in result.methods if not m.clean_map]
    psnrs = [float(p) for p in result.psnrs]
    written = []
    for index in range(samples if methods else 0):
        item = dataset[index]
        real = image_to_rgb(item.image[None])[0]
        columns = [
            image_to_rgb(read_images([image_path(set_folder(images, m, p), item.name) for p in psnrs])) for m in methods
        ]
        rows = [[real, *(column[r] for column in columns)] for r in range(len(psnrs))]
        written.append(
            geometry.save(
                folder / f"objects_depth_{item.name}.png",
                item,
                rows,
                truth_title="ground truth",
                method_titles=[m.label for m in methods],
                row_titles=[f"PSNR {p:g}" for p in psnrs],
                title=item.name,
            )
        )
    return written


#: The report's files and folders besides ``results.json``: a rerun replaces them all.
REPORT_ENTRIES = ("results.csv", "per_class_iou.csv", "per_class_detection.csv", "report.md", "plots", "figures")


def write_report(
    result: SweepResult,
    out: str | Path,
    *,
    dataset: Dataset | None = None,
    table: ClassTable | None = None,
    samples: int = 4,
    geometry: ObjectsDepthFigure | None = None,
) -> ReportFiles:
    """Write every report file of ``result`` into ``out`` as one set; sample figures need ``dataset`` and
    ``table`` and read the images of ``OUT/images``, which stay where they are (the sweep's resumable cache);
    ``geometry`` (the scoring's detector and depth network) adds the objects-and-depth figures."""
    out = Path(out)
    with output_folder(out, last=["results.json"], replace=REPORT_ENTRIES) as staging:
        data = results_json(result)
        metric_keys = [m.key for m in METRICS]
        rows = [["method", "label", "psnr", *metric_keys, "kid_std", "images"]]
        labels = dict(_row_order(result))
        for record in data["results"]:
            rows.append(
                [
                    record["method"],
                    labels[record["method"]],
                    record["psnr"],
                    *("" if record[k] is None else record[k] for k in metric_keys),
                    "" if record["kid_std"] is None else record["kid_std"],
                    record["images"] or "",
                ]
            )
        atomic_write_text(staging / "results.csv", csv_text(rows))
        class_rows = [["method", "psnr", "class", "iou"]]
        for record in data["results"]:
            for name, iou in (record["per_class_iou"] or {}).items():
                class_rows.append([record["method"], record["psnr"], name, iou])
        atomic_write_text(staging / "per_class_iou.csv", csv_text(class_rows))
        detection = detection_cells(result)
        if has_detection(detection):
            rows = csv_rows(detection, result.label_names, quality_column="psnr")
            atomic_write_text(staging / "per_class_detection.csv", csv_text(rows))
        atomic_write_text(staging / "report.md", markdown_report(result))
        plots = write_plots(result, staging / "plots")
        figures = []
        if dataset is not None and table is not None and samples > 0:
            samples = min(samples, result.count)
            figures = write_sample_figures(result, dataset, table, out / "images", staging / "figures", samples=samples)
            if geometry is not None:
                figures += write_objects_depth_figures(
                    result, dataset, out / "images", staging / "figures", geometry, samples=samples
                )
        write_json(staging / "results.json", data)
    plots, figures = ([out / p.relative_to(staging) for p in paths] for paths in (plots, figures))
    return ReportFiles(
        out / "results.json", out / "results.csv", out / "per_class_iou.csv", out / "report.md", plots, figures
    )
