"""The report of ``gesco compare``: a table, a plot per metric against SNR, crossovers, example figures.

Files written into ``OUT`` as one set, built aside and moved in together with ``results.json`` last (a failed or
killed run leaves the previous report whole, or none without ``results.json``, never a mix): ``results.json``
(settings, every cell with its per-class detection scores, crossovers), ``results.csv``, ``report.md``,
``plots/<metric>.png`` (metric against Es/N0 in dB, one line per method, the real images as a dashed reference
where the metric scores them, crossovers of GESCO with the classical link marked), with a detector
``per_class_detection.csv`` and ``plots/recall_per_class.png`` (:mod:`gesco.evaluation.detection_tables`), and
``figures/examples_<name>.png`` (a row per SNR: the image, then each method's picture), and with a detector or
depth network ``figures/objects_depth_<name>.png`` (the same rows with the boxes found and the depth estimated,
:mod:`gesco.evaluation.geometry_figure`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from torch.utils.data import Dataset  # noqa: E402

from gesco.evaluation.compare import (  # noqa: E402
    CLASSICAL,
    GESCO_ANALOG,
    GESCO_DIGITAL,
    METHOD_LABELS,
    CompareResult,
    example_rows,
)
from gesco.evaluation.detection_tables import (  # noqa: E402
    NO_CHANNEL,
    DetectionCell,
    csv_rows,
    has_detection,
    markdown_lines,
    recall_plot,
)
from gesco.evaluation.figures import save_grid, save_metric_plot  # noqa: E402
from gesco.evaluation.geometry_figure import ObjectsDepthFigure  # noqa: E402
from gesco.evaluation.markdown import table_section  # noqa: E402
from gesco.evaluation.report import METRICS, MetricColumn, csv_text, format_value  # noqa: E402
from gesco.evaluation.sweep import REAL_IMAGES  # noqa: E402
from gesco.io import atomic_write_text, output_folder, write_json  # noqa: E402

#: The metrics the comparison reports (pixel-level PSNR included: it is what JPEG and Deep JSCC optimise; the
#: detection and depth metrics only where a detector or depth network is given).
COMPARE_METRICS = tuple(
    m
    for m in METRICS
    if m.key in ("miou", "ssim", "lpips", "fid", "image_psnr", "ap50", "localisation_diagonal", "abs_rel", "delta1")
)


@dataclass(frozen=True)
class Crossover:
    """Where ``method`` and ``baseline`` swap places on ``metric``: the SNR (dB, linear interpolation between
    the measured SNRs) and which is better above it."""

    metric: str
    method: str
    baseline: str
    snr_db: float
    better_above: str


def channel_title(result: CompareResult) -> str:
    """The channel for titles: "AWGN", or the OFDM link with its model, speed and CSI."""
    ofdm = result.settings.get("ofdm")
    return f"OFDM {ofdm['label']}" if ofdm else result.channel.upper()


def _value(metric: MetricColumn, scores) -> float | None:
    value = metric.read(scores)
    return value if value is not None and math.isfinite(value) else None


def metric_curves(result: CompareResult, metric: MetricColumn) -> dict[str, list[float | None]]:
    """Per method, the metric at each SNR (None where not computed)."""
    cells = {(c.method, c.snr): c for c in result.cells}
    return {m: [_value(metric, cells[m, f"{s:g}"].scores) for s in result.snrs] for m in result.methods}


def crossovers(result: CompareResult, metric: MetricColumn, *, baseline: str = CLASSICAL) -> list[Crossover]:
    """Every SNR where a GESCO method and ``baseline`` change places on ``metric``."""
    curves = metric_curves(result, metric)
    if baseline not in curves:
        return []
    found = []
    sign = 1 if metric.higher_is_better else -1
    for method in (GESCO_ANALOG, GESCO_DIGITAL):
        if method not in curves:
            continue
        points = [
            (s, a, b)
            for s, a, b in zip(result.snrs, curves[method], curves[baseline], strict=True)
            if a is not None and b is not None
        ]
        for (s0, a0, b0), (s1, a1, b1) in zip(points, points[1:], strict=False):
            d0, d1 = sign * (a0 - b0), sign * (a1 - b1)
            if d0 == 0 or d0 * d1 >= 0:
                continue
            snr = s0 + (s1 - s0) * d0 / (d0 - d1)
            found.append(Crossover(metric.key, method, baseline, round(snr, 2), method if d1 > 0 else baseline))
    return found


def results_json(result: CompareResult) -> dict:
    return {
        "settings": result.settings,
        "channel": result.channel,
        "n": result.count,
        "snr_db": result.snrs,
        "budget_complex_channel_uses_per_pixel": result.budget_per_pixel,
        "methods": [{"name": m, "label": METHOD_LABELS[m]} for m in result.methods],
        "results": [
            {
                "method": c.method,
                "snr_db": float(c.snr),
                "complex_channel_uses_per_pixel": c.complex_channel_uses_per_pixel,
                "over_budget": c.over_budget,
                "delivered": c.delivered,
                **{m.key: _value(m, c.scores) for m in COMPARE_METRICS},
                "geometry": c.scores.geometry.flat(result.label_names) if c.scores.geometry else None,
            }
            for c in result.cells
        ],
        "real_images_miou": result.real.segmentation.miou if result.real.segmentation else None,
        "real_images_geometry": result.real.geometry.flat(result.label_names) if result.real.geometry else None,
        "crossovers": [vars(x) for m in COMPARE_METRICS for x in crossovers(result, m)],
        "notes": result.notes,
        "generation_seconds": result.generation_seconds,
    }


def detection_cells(result: CompareResult) -> list[DetectionCell]:
    """Every (method, SNR) cell's detection scores, then the real images' (no channel: one cell)."""
    cells = {(c.method, c.snr): c.scores for c in result.cells}
    snrs = [f"{s:g}" for s in result.snrs]
    out = [DetectionCell(m, METHOD_LABELS[m], s, cells[m, s].geometry) for m in result.methods for s in snrs]
    return out + [DetectionCell(REAL_IMAGES, "Real images (reference)", NO_CHANNEL, result.real.geometry)]


def reported_metrics(result: CompareResult) -> list[MetricColumn]:
    return [m for m in COMPARE_METRICS if any(_value(m, c.scores) is not None for c in result.cells)]


def markdown_report(result: CompareResult) -> str:
    metrics = reported_metrics(result)
    cells = {(c.method, c.snr): c for c in result.cells}
    snrs = [f"{s:g}" for s in result.snrs]
    lines = [f"# gesco compare: {channel_title(result)}, {result.count} images", ""]
    lines += [f"- {k}: {v}" for k, v in result.settings.items() if v is not None and not isinstance(v, dict)]
    lines += [f"- channel-use budget: {result.budget_per_pixel:.3f} complex channel uses per pixel", ""]
    lines += [
        "## Channel uses per pixel (mean over the images)",
        "",
        "| Method | " + " | ".join(snrs) + " |",
        "|" + "---|" * (len(snrs) + 1),
    ]
    for method in result.methods:
        lines.append(
            f"| {METHOD_LABELS[method]} | "
            + " | ".join(
                f"{cells[method, s].complex_channel_uses_per_pixel:.3f}"
                + (" ⚠ over budget" if cells[method, s].over_budget else "")
                for s in snrs
            )
            + " |"
        )
    over = [m for m in result.methods if any(cells[m, s].over_budget for s in snrs)]
    if over:
        lines += [
            "",
            f"⚠ Over the budget of {result.budget_per_pixel:.3f} channel uses per pixel for some images: "
            + ", ".join(METHOD_LABELS[m] for m in over)
            + ". Their scores are not at equal bandwidth.",
        ]
    for metric in metrics:
        arrow = "↑" if metric.higher_is_better else "↓"
        rows = [
            [METHOD_LABELS[m], *(format_value(_value(metric, cells[m, s].scores), metric.key) for s in snrs)]
            for m in result.methods
        ]
        real = _value(metric, result.real)
        if real is not None:
            rows.append(["Real images (reference)", *[format_value(real, metric.key)] * len(snrs)])
        lines += table_section(f"{metric.title} {arrow} against Es/N0 (dB)", ["Method", *snrs], rows)
    delivered = [m for m in result.methods if any(cells[m, s].delivered is not None for s in snrs)]
    if delivered:
        rows = [
            [METHOD_LABELS[m], *(format_value(cells[m, s].delivered, "delivered") for s in snrs)] for m in delivered
        ]
        lines += table_section(
            "Delivered (classical: images decoded; GESCO-digital: pixels known)", ["Method", *snrs], rows
        )
    found = [x for m in metrics for x in crossovers(result, m)]
    lines += ["", "## Crossovers with the classical link", ""]
    lines += [
        f"- {x.metric}: {x.method} and {x.baseline} cross at {x.snr_db:.1f} dB; above it {x.better_above} is better"
        for x in found
    ] or ["- none within the measured SNRs"]
    lines += markdown_lines(detection_cells(result), snrs, result.label_names, quality_title="Es/N0 (dB)")
    if result.notes:
        lines += ["", "Notes:", ""] + [f"- {k}: {v}" for k, v in result.notes.items()]
    return "\n".join(lines) + "\n"


def write_plots(result: CompareResult, folder: Path) -> list[Path]:
    written = []
    for metric in reported_metrics(result):
        fig, ax = plt.subplots(figsize=(6, 4))
        for method, values in metric_curves(result, metric).items():
            ax.plot(result.snrs, [math.nan if v is None else v for v in values], "-o", label=METHOD_LABELS[method])
        real = _value(metric, result.real)
        if real is not None:
            ax.axhline(real, linestyle="--", color="grey", label="real images")
        for crossing in crossovers(result, metric):
            ax.axvline(crossing.snr_db, linestyle=":", color="black", alpha=0.6)
            ax.annotate(
                f"{crossing.method} × classical\n{crossing.snr_db:.1f} dB",
                (crossing.snr_db, 0.02),
                xycoords=("data", "axes fraction"),
                fontsize=6,
                rotation=90,
                va="bottom",
            )
        ax.set_xlabel(f"Es/N0 (dB), {channel_title(result)}")
        ax.set_title(f"{result.budget_per_pixel:.2f} channel uses per pixel, {result.count} images", fontsize=9)
        ylabel = f"{metric.title} ({'higher' if metric.higher_is_better else 'lower'} is better)"
        written.append(save_metric_plot(fig, ax, folder / f"{metric.key}.png", ylabel=ylabel))
    recall = recall_plot(
        detection_cells(result),
        [f"{s:g}" for s in result.snrs],
        result.label_names,
        folder / "recall_per_class.png",
        positions=result.snrs,
        xlabel=f"Es/N0 (dB), {channel_title(result)}",
        references=[REAL_IMAGES],
    )
    return written + ([recall] if recall is not None else [])


#: The report's files and folders besides ``results.json``: a rerun replaces them all.
REPORT_ENTRIES = ("results.csv", "per_class_detection.csv", "report.md", "plots", "figures")


def write_compare_report(
    result: CompareResult,
    out: str | Path,
    *,
    dataset: Dataset,
    examples: int = 2,
    geometry: ObjectsDepthFigure | None = None,
) -> list[Path]:
    """Write every report file of ``result`` into ``out`` as one set; return the paths written. The example
    figures read the images of ``OUT/images``, which stay where they are (the comparison's resumable cache);
    ``geometry`` (the scoring's detector and depth network) adds the objects-and-depth figure of each example."""
    out = Path(out)
    with output_folder(out, last=["results.json"], replace=REPORT_ENTRIES) as staging:
        data = results_json(result)
        keys = [m.key for m in COMPARE_METRICS]
        rows = [["method", "snr_db", "complex_channel_uses_per_pixel", "delivered", *keys]]
        rows += [
            [
                r["method"],
                r["snr_db"],
                r["complex_channel_uses_per_pixel"],
                "" if r["delivered"] is None else r["delivered"],
                *("" if r[k] is None else r[k] for k in keys),
            ]
            for r in data["results"]
        ]
        atomic_write_text(staging / "results.csv", csv_text(rows))
        atomic_write_text(staging / "report.md", markdown_report(result))
        written = [staging / "results.csv", staging / "report.md", *write_plots(result, staging / "plots")]
        detection = detection_cells(result)
        if has_detection(detection):
            path = staging / "per_class_detection.csv"
            atomic_write_text(path, csv_text(csv_rows(detection, result.label_names, quality_column="snr_db")))
            written.append(path)
        methods = [METHOD_LABELS[m].split(":")[0].split(" (")[0] for m in result.methods]
        snrs = [f"{s:g} dB" for s in result.snrs]
        for index in range(min(examples, result.count)):
            item = dataset[index]
            rows = example_rows(result, dataset, out, index)
            title = f"{item.name}, {channel_title(result)}, {result.budget_per_pixel:.2f} channel uses per pixel"
            figures = staging / "figures"
            written.append(
                save_grid(
                    figures / f"examples_{item.name}.png", rows, ["image", *methods], row_titles=snrs, title=title
                )
            )
            if geometry is not None:
                written.append(
                    geometry.save(
                        figures / f"objects_depth_{item.name}.png",
                        item,
                        rows,
                        truth_title="ground truth",
                        method_titles=methods,
                        row_titles=snrs,
                        title=title,
                    )
                )
        written.append(write_json(staging / "results.json", data))
    return [out / path.relative_to(staging) for path in written]
