import os

import pytest
import torch

from gesco.io import atomic_save, atomic_write_text, load_tensors, save_tensors


def test_atomic_write_leaves_no_temporary_file_and_normal_permissions(tmp_path):
    path = tmp_path / "out" / "report.json"
    atomic_write_text(path, "{}")
    assert path.read_text() == "{}"
    assert [p.name for p in path.parent.iterdir()] == ["report.json"]
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask


def test_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "weights.safetensors"
    save_tensors(path, {"w": torch.ones(2)})

    def broken(tmp):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_save(path, broken)
    assert torch.equal(load_tensors(path)["w"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["weights.safetensors"]
