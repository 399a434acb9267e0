"""The scorer of an evaluation from the networks the user names; a skipped metric says why."""

import pytest

from gesco.datasets import SyntheticStreetsDataset
from gesco.evaluation.scorer_factory import ScoringNetworks, build_set_scorer
from gesco.evaluation.scoring import SetScores
from gesco.evaluation.segmenter import GescoSegmenter, SegmenterConfig
from gesco.semantics.classes import class_table


@pytest.fixture
def dataset():
    return SyntheticStreetsDataset(2, 1_000_000, height=16, width=32)


def test_without_networks_every_metric_that_needs_one_is_noted(dataset, tmp_path):
    scoring = build_set_scorer(
        ScoringNetworks(fid=False), dataset, 2, class_table("cityscapes"), feature_dir=tmp_path, progress=False
    )
    skipped = {"miou", "lpips", "ms_ssim", "fid", "kid", "ap50", "localisation_diagonal", "abs_rel", "delta1"}
    assert set(scoring.notes) == skipped
    assert "16x32 px are too small" in scoring.notes["ms_ssim"]
    scorer = scoring.scorer
    assert scorer.segmenter is None and scorer.lpips is None and scorer.inception is None and not scorer.ms_ssim
    assert scorer.geometry is None and scorer.score_real() == SetScores()


def test_a_segmenter_loads_by_path_and_must_share_the_class_table(dataset, tmp_path):
    GescoSegmenter(SegmenterConfig(widths=(4, 8))).save_pretrained(tmp_path / "city")
    scoring = build_set_scorer(
        ScoringNetworks(segmenter=tmp_path / "city", fid=False),
        dataset,
        2,
        class_table("cityscapes"),
        feature_dir=tmp_path,
        progress=False,
    )
    assert scoring.scorer.segmenter is not None and "miou" not in scoring.notes
    GescoSegmenter(SegmenterConfig(class_table="ade20k", class_ids=(0, 1, 2))).save_pretrained(tmp_path / "ade")
    with pytest.raises(ValueError, match="the segmenter predicts ade20k classes, the model uses cityscapes"):
        build_set_scorer(
            ScoringNetworks(segmenter=str(tmp_path / "ade"), fid=False),
            dataset,
            2,
            class_table("cityscapes"),
            feature_dir=tmp_path,
            progress=False,
        )
