"""Detection and depth scores through ``gesco evaluate`` / ``gesco compare``: options, scorer, tables, files, plots.

The networks are look-up tables of the evaluation set: shown one of its real images exactly, they answer its
ground truth (boxes scored 1, depth); shown anything else, no box and a flat depth. So the real images score
perfectly and a regeneration scores what the flat depth earns: a wiring that scored the wrong images, or
against the wrong ground truth, changes the numbers.
"""

import csv
import json

import pytest
import torch

from gesco.cli.main import main
from gesco.datasets import SyntheticStreetsDataset
from gesco.datasets.synthetic_canvas import BOX_CLASSES
from gesco.evaluation.geometry_networks import ExternalDepthConfig, ExternalDetectorConfig
from gesco.evaluation.geometry_scoring import DEFAULT_MAX_DEPTH_M, GeometryScores
from gesco.evaluation.objects_depth import ClassDetection, DepthMeter, DepthScores, DetectionScores
from gesco.evaluation.scorer_factory import ScoringNetworks, build_set_scorer
from gesco.semantics.classes import class_table

FLAT_DEPTH_M = 5.0
COUNT = 2


class LookUp(torch.nn.Module):
    """Network input (B, 3, H, W) equal to stored image k -> ``answers[k]``; otherwise ``answers[k] * 0 + miss``."""

    def __init__(self, images: torch.Tensor, answers: torch.Tensor, miss: float):
        super().__init__()
        self.register_buffer("images", images)
        self.register_buffer("answers", answers)
        self.miss = miss

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        distance = (x[:, None] - self.images[None]).abs().flatten(2).amax(dim=2)
        nearest = distance.argmin(dim=1)
        exact = (distance.min(dim=1).values < 1e-6).float().view([-1] + [1] * (self.answers.dim() - 1))
        return self.answers[nearest] * exact + self.miss * (1 - exact)


def _dataset():
    return SyntheticStreetsDataset(COUNT, 1_000_000, height=32, width=64)  # the tiny receiver's size


@pytest.fixture(scope="module")
def networks(tmp_path_factory):
    """A detector (rows ``x0, y0, x1, y1, score, class index``, padded) and a depth network, with configs."""
    root = tmp_path_factory.mktemp("geometry")
    samples = [_dataset()[i] for i in range(COUNT)]
    images = torch.stack([(s.image.clamp(-1, 1) + 1) / 2 for s in samples])  # the configs' 0..1 input
    rows = torch.zeros(COUNT, max(len(s.boxes.classes) for s in samples), 6)
    for k, sample in enumerate(samples):
        n = len(sample.boxes.classes)
        rows[k, :n, :4] = sample.boxes.xyxy
        rows[k, :n, 4] = 1.0
        rows[k, :n, 5] = torch.tensor([BOX_CLASSES.index(c) for c in sample.boxes.classes.tolist()])
    torch.jit.script(LookUp(images, rows, 0.0)).save(str(root / "detector.pt"))
    ExternalDetectorConfig(label_map=BOX_CLASSES).save(root / "detector.json")
    depth = torch.stack([s.depth for s in samples])[:, None]
    torch.jit.script(LookUp(images, depth, FLAT_DEPTH_M)).save(str(root / "depth.pt"))
    ExternalDepthConfig().save(root / "depth.json")
    return root


def _flat_depth_scores() -> DepthScores:
    """What the flat depth earns against the set's ground truth."""
    meter = DepthMeter(max_depth=DEFAULT_MAX_DEPTH_M)
    depth = torch.stack([_dataset()[i].depth for i in range(COUNT)])
    meter.update(torch.full_like(depth, FLAT_DEPTH_M), depth)
    return meter.result()


def test_evaluate_scores_objects_and_depth_of_real_and_regenerated_images(assets, networks, tmp_path):
    out = tmp_path / "eval"
    args = ["evaluate", "--model", str(assets / "gesco"), "--data", "synthetic", "--n", str(COUNT)]
    args += ["--psnr", "5", "--methods", "gesco", "--batch-size", "2", "--no-fid", "--samples", "0"]
    args += ["--detector", str(networks / "detector.pt"), "--depth", str(networks / "depth.pt")]
    assert main([*args, "--out", str(out), "--no-progress"]) == 0

    data = json.loads((out / "results.json").read_text())
    cells = {r["method"]: r for r in data["results"]}
    real, gesco = cells["real-images"], cells["gesco"]
    assert real["ap50"] == 1.0 and real["localisation_diagonal"] == 0.0
    assert real["delta1"] == 1.0 and real["abs_rel"] == pytest.approx(0.0, abs=1e-9)
    recalls = {k: v for k, v in real["geometry"].items() if k.startswith("recall/") and v is not None}
    assert "recall/car" in recalls and set(recalls.values()) == {1.0}
    # the regenerations are not the real images: nothing detected, the flat depth's scores
    assert gesco["ap50"] == 0.0 and gesco["localisation_diagonal"] is None
    assert {v for k, v in gesco["geometry"].items() if k.startswith("recall/") and v is not None} == {0.0}
    flat = _flat_depth_scores()
    assert flat.delta1 < 1
    assert gesco["abs_rel"] == pytest.approx(flat.abs_rel) and gesco["delta1"] == pytest.approx(flat.delta1)
    assert cells["received-map"]["ap50"] is None and cells["received-map"]["geometry"] is None
    assert data["settings"]["detector"] == str(networks / "detector.pt")
    assert data["settings"]["depth_median_scaling"] is False
    assert not {"ap50", "abs_rel", "delta1", "localisation_diagonal"} & set(data["notes"])

    with open(out / "results.csv") as f:
        rows = {r["method"]: r for r in csv.DictReader(f)}
    assert float(rows["real-images"]["delta1"]) == 1.0 and float(rows["gesco"]["ap50"]) == 0.0
    header = (out / "report.md").read_text().split("## Results")[1]
    assert all(f"5 {title}" in header for title in ("AP50↑", "Loc/diag↓", "AbsRel↓", "δ1↑"))
    plotted = {p.stem for p in (out / "plots").glob("*.png")}
    assert {"ap50", "localisation_diagonal", "abs_rel", "delta1", "recall_per_class"} <= plotted
    _check_per_class_detection(out, "psnr", {"5"}, "gesco", (out / "report.md").read_text())


def _check_per_class_detection(out, quality_column, qualities, method, report):
    """The per-class CSV and tables: every class of the real images found (1.0), none in the regenerations."""
    with open(out / "per_class_detection.csv") as f:
        rows = list(csv.DictReader(f))
    real = {r["class"]: r for r in rows if r["method"] == "real-images"}
    regenerated = {r["class"]: r for r in rows if r["method"] == method}
    assert "car" in real and {r[quality_column] for r in rows} == qualities
    for name, row in real.items():
        if row["ap50"]:
            assert float(row["ap50"]) == 1.0 and float(row["recall"]) == 1.0 and int(row["ground_truth_boxes"]) > 0
            assert float(regenerated[name]["recall"]) == 0.0 and regenerated[name]["predictions"] == "0"
    assert "## Per-class detection, AP50 / recall: Real images (reference)" in report
    assert "| car | 1.00 / 1.00 |" in report.split("## Per-class detection, AP50 / recall: Real images")[1]


def test_compare_scores_objects_and_depth(assets, networks, tmp_path):
    from gesco.baselines.deep_jscc import DeepJSCC, DeepJSCCConfig

    torch.manual_seed(2)
    DeepJSCC(DeepJSCCConfig(image_size=(32, 64), hidden_channels=(4, 4, 4, 4))).save_pretrained(tmp_path / "djscc")
    out = tmp_path / "out"
    args = ["compare", "--model", str(assets / "gesco"), "--aware-model", "none", "--methods", "deep-jscc"]
    args += ["--deep-jscc", str(tmp_path / "djscc"), "--n", str(COUNT), "--snr", "0", "20", "--no-fid"]
    args += ["--segmenter", str(assets / "segmenter"), "--examples", "0", "--out", str(out), "--no-progress"]
    args += ["--detector", str(networks / "detector.pt"), "--depth", str(networks / "depth.pt")]
    assert main(args) == 0
    data = json.loads((out / "results.json").read_text())
    assert data["real_images_geometry"]["ap50"] == 1.0 and data["real_images_geometry"]["delta1"] == 1.0
    flat = _flat_depth_scores()
    for cell in data["results"]:
        assert cell["ap50"] == 0.0 and cell["geometry"]["ap50/car"] == 0.0
        assert cell["abs_rel"] == pytest.approx(flat.abs_rel) and cell["delta1"] == pytest.approx(flat.delta1)
    report = (out / "report.md").read_text()
    ap50_table = report.split("## AP50 ↑ against Es/N0 (dB)")[1].split("##")[0]
    assert "| Deep JSCC | 0.000 | 0.000 |" in ap50_table and "| Real images (reference) | 1.000 | 1.000 |" in ap50_table
    with open(out / "results.csv") as f:
        assert {"ap50", "localisation_diagonal", "abs_rel", "delta1"} <= set(next(csv.reader(f)))
    assert {"ap50", "abs_rel", "delta1", "recall_per_class"} <= {p.stem for p in (out / "plots").glob("*.png")}
    _check_per_class_detection(out, "snr_db", {"0", "20", ""}, "deep-jscc", report)  # "": the real images


def test_median_scaling_reaches_the_meter_and_options_need_their_network(networks, tmp_path):
    dataset, table = _dataset(), class_table("cityscapes")
    scaled = ScoringNetworks(fid=False, depth=networks / "depth.pt", depth_median_scaling=True)
    scoring = build_set_scorer(scaled, dataset, COUNT, table, feature_dir=tmp_path, progress=False)
    assert "abs_rel" not in scoring.notes and scoring.notes["ap50"] == "no --detector given"
    real = scoring.scorer.score_real().geometry
    assert isinstance(real, GeometryScores) and real.detection is None and real.depth.delta1 == 1.0
    # a flat depth scaled to the ground truth's median scores differently from the flat depth itself
    meter = scoring.scorer.geometry()
    meter.update(torch.zeros(COUNT, 3, 32, 64), _batch(dataset))
    expected = DepthMeter(median_scaling=True, max_depth=DEFAULT_MAX_DEPTH_M)
    truth = _batch(dataset).depth
    expected.update(torch.full_like(truth, FLAT_DEPTH_M), truth)
    assert meter.compute().depth.abs_rel == pytest.approx(expected.result().abs_rel)
    assert expected.result().abs_rel != pytest.approx(_flat_depth_scores().abs_rel)
    with pytest.raises(ValueError, match="without a depth network"):
        build_set_scorer(
            ScoringNetworks(fid=False, depth_median_scaling=True), dataset, COUNT, table, feature_dir=tmp_path
        )
    with pytest.raises(ValueError, match="without a detector file"):
        build_set_scorer(
            ScoringNetworks(fid=False, detector_config=networks / "detector.json"),
            dataset,
            COUNT,
            table,
            feature_dir=tmp_path,
        )


def _batch(dataset):
    from gesco.datasets import collate

    return collate([dataset[i] for i in range(COUNT)])


def test_compare_report_draws_the_real_images_ceiling_of_every_metric_that_scores_them():
    from gesco.evaluation.compare import CLASSICAL, GESCO_ANALOG, CompareCell, CompareResult
    from gesco.evaluation.compare_report import markdown_report, results_json
    from gesco.evaluation.scoring import SetScores

    def scores(ap50: float) -> SetScores:
        detection = DetectionScores({26: ClassDetection(ap50, ap50, 2, 2)}, ap50, 1.0, 0.01, 2)
        return SetScores(geometry=GeometryScores(detection=detection, depth=None))

    cells = [
        CompareCell(CLASSICAL, "0", scores(0.1), 1.0, 1.0),
        CompareCell(CLASSICAL, "10", scores(0.9), 1.0, 1.0),
        CompareCell(GESCO_ANALOG, "0", scores(0.5), 1.0, None),
        CompareCell(GESCO_ANALOG, "10", scores(0.5), 1.0, None),
    ]
    result = CompareResult(
        methods=[CLASSICAL, GESCO_ANALOG],
        snrs=[0.0, 10.0],
        channel="awgn",
        count=1,
        budget_per_pixel=1.0,
        cells=cells,
        real=scores(0.9),
        class_names=(),
        settings={},
        label_names={26: "car"},
    )
    data = results_json(result)
    assert [(x["metric"], x["snr_db"]) for x in data["crossovers"]] == [("ap50", 5.0)]
    assert data["results"][0]["geometry"] == {
        "ap50": 0.1,
        "ap50/car": 0.1,
        "recall/car": 0.1,
        "localisation_px": 1.0,
        "localisation_diagonal": 0.01,
    }
    report = markdown_report(result)
    assert "| Real images (reference) | 0.900 | 0.900 |" in report.split("## AP50")[1].split("##")[0]
    assert "## mIoU" not in report and "## Loc/diag ↓" in report


def test_a_folder_without_boxes_or_a_detector_of_the_wrong_kind_fails_before_any_generation(networks, tmp_path):
    from gesco.datasets import CityscapesDataset, SyntheticStreets, write_cityscapes

    streets = SyntheticStreets(32, 64)
    write_cityscapes(tmp_path / "cs", "val", [streets.scene(seed) for seed in (5, 6, 7)], city="testcity")
    table = class_table("cityscapes")
    detector = ScoringNetworks(fid=False, detector=networks / "detector.pt")
    depth = ScoringNetworks(fid=False, depth=networks / "depth.pt")
    dataset = CityscapesDataset(tmp_path / "cs", "val", size=(32, 64), geometry=True)
    build_set_scorer(detector, dataset, 3, table, feature_dir=tmp_path, progress=False)  # complete: accepted
    (tmp_path / "cs/gtFine/val/testcity/testcity_000002_000019_gtFine_polygons.json").unlink()
    with pytest.raises(ValueError, match=r"1 of the 3 evaluation images have no ground-truth boxes \(testcity_000002"):
        build_set_scorer(detector, dataset, 3, table, feature_dir=tmp_path, progress=False)
    build_set_scorer(detector, dataset, 2, table, feature_dir=tmp_path, progress=False)  # not scored: accepted
    build_set_scorer(depth, dataset, 3, table, feature_dir=tmp_path, progress=False)  # depth is all there
    (tmp_path / "cs/camera/val/testcity/testcity_000000_000019_camera.json").unlink()
    with pytest.raises(ValueError, match="no ground-truth depth"):
        build_set_scorer(depth, dataset, 3, table, feature_dir=tmp_path, progress=False)
    # a detector of the wrong output kind is caught on the first image
    torch.jit.script(_Flat()).save(str(tmp_path / "flat.pt"))
    ExternalDetectorConfig(label_map=(26,)).save(tmp_path / "flat.json")
    wrong = ScoringNetworks(fid=False, detector=tmp_path / "flat.pt")
    with pytest.raises(ValueError, match=r"it must return \(B=1, N, 6\)"):
        build_set_scorer(wrong, _dataset(), COUNT, table, feature_dir=tmp_path, progress=False)


class _Flat(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=1)


def test_detectors_are_scored_on_the_classes_they_can_name(networks, tmp_path):
    """A truck in the ground truth (Cityscapes polygons box trucks) does not count against a detector of cars."""
    import dataclasses

    from gesco.datasets import collate
    from gesco.evaluation.geometry_scoring import GeometryMeter

    sample = _dataset()[0]
    truck = torch.tensor([[1.0, 1.0, 9.0, 6.0]])
    boxes = dataclasses.replace(
        sample.boxes,
        xyxy=torch.cat([sample.boxes.xyxy, truck]),
        classes=torch.cat([sample.boxes.classes, torch.tensor([27])]),
        instances=torch.cat([sample.boxes.instances, torch.tensor([27000])]),
    )
    batch = collate([dataclasses.replace(sample, boxes=boxes)])
    scoring = build_set_scorer(
        ScoringNetworks(fid=False, detector=networks / "detector.pt"),
        _dataset(),
        COUNT,
        class_table("cityscapes"),
        feature_dir=tmp_path,
        progress=False,
    )
    meter = scoring.scorer.geometry()
    meter.update(sample.image[None], batch)
    assert meter.compute().detection.map50 == 1.0 and 27 not in meter.compute().detection.per_class
    every_class = GeometryMeter(detector=meter.detector, depth_estimator=None)
    every_class.update(sample.image[None], batch)
    assert every_class.compute().detection.map50 < 1.0 and every_class.compute().detection.per_class[27].ap50 == 0.0
