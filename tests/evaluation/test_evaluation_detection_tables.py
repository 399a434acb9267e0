"""Per-class detection tables: rows and columns land where they belong, classes without ground truth stay out."""

from gesco.evaluation.detection_tables import NO_CHANNEL, DetectionCell, csv_rows, markdown_lines, recall_plot
from gesco.evaluation.geometry_scoring import GeometryScores
from gesco.evaluation.objects_depth import ClassDetection, DetectionScores

NAMES = {17: "pole", 25: "rider", 26: "car"}


def _cell(row, quality, per_class):
    """A cell whose classes score (AP50, recall, boxes); a class with 0 boxes has no AP50 or recall."""
    classes = {
        label: ClassDetection(ap if boxes else None, recall if boxes else None, boxes, 3)
        for label, (ap, recall, boxes) in per_class.items()
    }
    detection = DetectionScores(classes, 0.5, 1.0, 0.01, 1)
    return DetectionCell(row, row.upper(), quality, GeometryScores(detection=detection, depth=None))


CELLS = [
    _cell("gesco", "10", {17: (0.25, 0.5, 4), 25: (0, 0, 0), 26: (0.75, 0.8, 5)}),
    _cell("gesco", "1", {17: (0.1, 0.2, 4), 25: (0, 0, 0), 26: (0.6, 0.7, 5)}),
    _cell("real-images", NO_CHANNEL, {17: (0.9, 0.95, 4), 26: (1.0, 1.0, 5)}),
    DetectionCell("received-map", "map", "10", None),
]


def test_csv_has_one_row_per_cell_and_class_with_empty_scores_where_there_is_no_box():
    rows = csv_rows(CELLS, NAMES, quality_column="psnr")
    assert rows[0] == ["method", "psnr", "class", "ap50", "recall", "ground_truth_boxes", "predictions"]
    body = {(r[0], r[1], r[2]): r[3:] for r in rows[1:]}
    assert body["gesco", "1", "pole"] == [0.1, 0.2, 4, 3] and body["gesco", "10", "car"] == [0.75, 0.8, 5, 3]
    assert body["gesco", "10", "rider"] == ["", "", 0, 3]
    assert body["real-images", "", "car"] == [1.0, 1.0, 5, 3] and len(rows) == 1 + 6 + 2  # no map rows


def test_markdown_puts_each_quality_in_its_column_and_leaves_classes_without_boxes_out():
    text = "\n".join(markdown_lines(CELLS, ["10", "1"], NAMES, quality_title="PSNR"))
    gesco = text.split("## Per-class detection, AP50 / recall: GESCO")[1].split("##")[0]
    assert "| Class | PSNR 10 | PSNR 1 |" in gesco
    assert "| pole | 0.25 / 0.50 | 0.10 / 0.20 |" in gesco and "| car | 0.75 / 0.80 | 0.60 / 0.70 |" in gesco
    assert "rider" not in text  # no ground-truth box anywhere: no score to show
    real = text.split("## Per-class detection, AP50 / recall: REAL-IMAGES")[1]
    assert "| Class | no channel |" in real and "| pole | 0.90 / 0.95 |" in real
    assert "MAP" not in text


def test_recall_plot_only_with_detection(tmp_path):
    path = recall_plot(CELLS, ["10", "1"], NAMES, tmp_path / "r.png", positions=[0, 1], xlabel="PSNR")
    assert path == tmp_path / "r.png" and path.stat().st_size > 0
    assert recall_plot(CELLS[3:], ["10"], NAMES, tmp_path / "none.png", positions=[0], xlabel="PSNR") is None
    assert not (tmp_path / "none.png").exists()
