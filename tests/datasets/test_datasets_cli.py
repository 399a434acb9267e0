import numpy as np
import pytest

from gesco.cli.main import main
from gesco.datasets import ADE20KDataset, CityscapesDataset, FolderDataset, SyntheticStreets


def test_synth_writes_a_loadable_cityscapes_split(tmp_path, capsys):
    out = tmp_path / "cityscapes"
    assert (
        main(
            [
                "data",
                "synth",
                "--layout",
                "cityscapes",
                "--out",
                str(out),
                "--n",
                "3",
                "--size",
                "32x64",
                "--seed",
                "10",
                "--split",
                "val",
            ]
        )
        == 0
    )
    assert "wrote 3 scenes" in capsys.readouterr().out
    dataset = CityscapesDataset(out, "val", size=None)
    streets = SyntheticStreets(32, 64)
    for seed, sample in zip(range(10, 13), dataset):
        assert np.array_equal(sample.labels.numpy(), streets.scene(seed).labels)


def test_synth_other_layouts(tmp_path):
    assert (
        main(
            [
                "data",
                "synth",
                "--layout",
                "ade20k",
                "--ade20k-layout",
                "beside",
                "--out",
                str(tmp_path / "ade"),
                "--n",
                "2",
            ]
        )
        == 0
    )
    assert ADE20KDataset(tmp_path / "ade", "train", size=None).layout == "beside"
    assert main(["data", "synth", "--layout", "folder", "--out", str(tmp_path / "folder"), "--n", "2"]) == 0
    assert len(FolderDataset(tmp_path / "folder", 35)) == 2


def test_synth_reports_bad_input(tmp_path, capsys):
    assert main(["data", "synth", "--layout", "folder", "--out", str(tmp_path), "--n", "2", "--split", "val"]) == 2
    assert "no splits" in capsys.readouterr().err
    assert main(["data", "synth", "--layout", "cityscapes", "--out", str(tmp_path), "--n", "0"]) == 2
    with pytest.raises(SystemExit):
        main(["data", "synth", "--layout", "cityscapes", "--out", str(tmp_path), "--n", "2", "--size", "64by128"])
