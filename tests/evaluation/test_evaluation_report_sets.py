"""The reports of ``gesco evaluate`` and ``gesco compare`` move into ``OUT`` as one set, ``results.json`` last.

A writer that fails midway leaves the previous report as it was and no new file beside it; a rerun removes the
files of the previous report that the new one does not write; the generated images (the resumable cache) stay.
"""

import json
import os
from pathlib import Path

import pytest

from gesco.evaluation.compare import CLASSICAL, GESCO_ANALOG, CompareCell, CompareResult
from gesco.evaluation.compare_report import write_compare_report
from gesco.evaluation.metrics import SegmentationScores
from gesco.evaluation.report import write_report
from gesco.evaluation.scoring import SetScores
from gesco.evaluation.sweep import Cell, Method, SweepResult
from gesco.receiver.sampling import SamplerConfig


def _scores(miou: float) -> SetScores:
    return SetScores(segmentation=SegmentationScores(miou, miou, {"road": miou}, 64))


def _sweep(miou: float) -> SweepResult:
    method = Method("gesco", "GESCO", "gesco", "fds", False, SamplerConfig(sampler="dpmpp", steps=2))
    return SweepResult(
        methods=[method],
        psnrs=["20"],
        count=1,
        cells=[Cell("gesco", "20", _scores(miou))],
        class_names=("road",),
        payload={"real_values": 1.0},
        notes={},
        settings={"seed": 0},
    )


def _comparison(miou: float) -> CompareResult:
    cells = [CompareCell(m, "10", _scores(miou), 1.0, None) for m in (CLASSICAL, GESCO_ANALOG)]
    return CompareResult(
        methods=[CLASSICAL, GESCO_ANALOG],
        snrs=[10.0],
        channel="awgn",
        count=1,
        budget_per_pixel=1.0,
        cells=cells,
        real=_scores(miou),
        class_names=("road",),
        settings={},
    )


WRITERS = {
    "evaluate": (lambda result, out: write_report(result, out), _sweep, "gesco.evaluation.report.write_plots"),
    "compare": (
        lambda result, out: write_compare_report(result, out, dataset=None, examples=0),
        _comparison,
        "gesco.evaluation.compare_report.write_plots",
    ),
}


def _snapshot(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.fixture(params=sorted(WRITERS))
def writer(request):
    return WRITERS[request.param]


@pytest.fixture
def earlier_run(writer, tmp_path):
    """``OUT`` after a complete run: its report, a cached image and a plot of a metric the next run lacks."""
    write, make, _ = writer
    out = tmp_path / "out"
    (out / "images" / "gesco").mkdir(parents=True)
    (out / "images" / "gesco" / "a.png").write_bytes(b"cached image")
    write(make(0.25), out)
    (out / "plots" / "fid.png").write_bytes(b"a plot of the earlier run")
    return out


def test_a_writer_failing_midway_leaves_the_earlier_report_whole(writer, earlier_run, monkeypatch):
    _, make, plots = writer
    before = _snapshot(earlier_run)

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(plots, fail)
    with pytest.raises(OSError, match="No space left"):
        writer[0](make(0.75), earlier_run)
    assert _snapshot(earlier_run) == before
    assert json.loads((earlier_run / "results.json").read_text())["results"][0]["miou"] == 0.25
    assert [p.name for p in earlier_run.parent.iterdir()] == ["out"]  # no staging folder left


def test_a_rerun_replaces_the_whole_report_and_keeps_the_images(writer, earlier_run, monkeypatch):
    write, make, _ = writer
    moved = []
    real_replace = os.replace
    monkeypatch.setattr("gesco.io.os.replace", lambda a, b: (moved.append(Path(b)), real_replace(a, b)))
    write(make(0.75), earlier_run)
    into_out = [path.relative_to(earlier_run) for path in moved if path.is_relative_to(earlier_run)]
    assert into_out[-1] == Path("results.json") and into_out.count(Path("results.json")) == 1
    assert json.loads((earlier_run / "results.json").read_text())["results"][0]["miou"] == 0.75
    assert "0.750" in (earlier_run / "report.md").read_text()
    assert not (earlier_run / "plots" / "fid.png").exists() and (earlier_run / "plots" / "miou.png").is_file()
    assert (earlier_run / "images" / "gesco" / "a.png").read_bytes() == b"cached image"
    assert [p.name for p in earlier_run.parent.iterdir()] == ["out"]


def test_a_killed_merge_never_shows_a_complete_looking_mix(writer, earlier_run, monkeypatch):
    """Killed after the first file of the new set moved in: results.json is gone, so the set reads incomplete."""
    write, make, _ = writer
    real_replace = os.replace
    merged = []

    def killed_after_one(a, b):
        if Path(b).is_relative_to(earlier_run):
            if merged:
                raise KeyboardInterrupt
            merged.append(b)
        real_replace(a, b)

    monkeypatch.setattr("gesco.io.os.replace", killed_after_one)
    with pytest.raises(KeyboardInterrupt):
        write(make(0.75), earlier_run)
    assert not (earlier_run / "results.json").exists()
    assert not (earlier_run / "plots" / "fid.png").exists()
    assert (earlier_run / "images" / "gesco" / "a.png").read_bytes() == b"cached image"
