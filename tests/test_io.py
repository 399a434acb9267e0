import errno
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gesco.io import (
    NonFiniteValueError,
    OutputPathError,
    atomic_save,
    atomic_write_text,
    load_tensors,
    output_folder,
    save_tensors,
    write_json,
)


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


def test_a_writer_that_fails_mid_write_leaves_the_old_file_intact(tmp_path):
    path = tmp_path / "record.json"
    atomic_write_text(path, '{"old": true}')

    def half_then_fail(tmp):
        tmp.write_text('{"new": ')  # half of the new content is on disk when the writer dies
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match="No space left on device") as raised:
        atomic_save(path, half_then_fail)
    assert raised.value.filename == str(path)  # a full disk names no file; the write names its target
    assert path.read_text() == '{"old": true}'
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]


def test_strict_json_is_written_and_refuses_nan_without_touching_the_old_file(tmp_path):
    path = tmp_path / "results.json"
    write_json(path, {"miou": 0.5, "cells": [1, 2]})
    assert json.loads(path.read_text()) == {"miou": 0.5, "cells": [1, 2]}
    with pytest.raises(NonFiniteValueError, match=r"cells\[1\] is nan"):
        write_json(path, {"miou": 0.5, "cells": [1, math.nan]})
    assert json.loads(path.read_text()) == {"miou": 0.5, "cells": [1, 2]}


def test_an_output_folder_appears_complete_or_not_at_all(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(RuntimeError):
        with output_folder(out) as staging:
            (staging / "a.png").write_text("a")
            assert not out.exists()
            raise RuntimeError("sampling failed")
    assert list(tmp_path.iterdir()) == []
    with output_folder(out) as staging:
        (staging / "a.png").write_text("a")
        (staging / "sub").mkdir()
        (staging / "sub" / "b.png").write_text("b")
    assert (out / "a.png").read_text() == "a" and (out / "sub" / "b.png").read_text() == "b"
    assert list(tmp_path.iterdir()) == [out]
    mask = os.umask(0)
    os.umask(mask)
    assert out.stat().st_mode & 0o777 == 0o777 & ~mask


def test_an_existing_folder_keeps_its_other_files_and_gets_the_marker_last(tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "train.png").write_text("other split")
    (out / "record.json").write_text("old record")
    moved = []
    real_replace = os.replace
    monkeypatch.setattr("gesco.io.os.replace", lambda a, b: (moved.append(Path(b).name), real_replace(a, b)))
    with output_folder(out, last=["record.json"]) as staging:
        (staging / "record.json").write_text("new record")
        (staging / "z.png").write_text("z")
        (staging / "a.png").write_text("a")
    assert moved == ["a.png", "z.png", "record.json"]
    assert (out / "train.png").read_text() == "other split" and (out / "record.json").read_text() == "new record"


def test_a_failed_run_into_an_existing_folder_changes_nothing(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "record.json").write_text("old record")
    with pytest.raises(OSError):
        with output_folder(out, last=["record.json"]) as staging:
            (staging / "record.json").write_text("new record")
            raise OSError(errno.EIO, "I/O error")
    assert [p.name for p in out.iterdir()] == ["record.json"] and (out / "record.json").read_text() == "old record"
    assert list(tmp_path.iterdir()) == [out]


def test_staging_folders_of_killed_runs_are_removed_but_not_those_of_live_ones(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".out.partial-{int(dead.stdout)}-abc"
    live = tmp_path / f".out.partial-{os.getpid()}-def"
    other = tmp_path / f".other.partial-{int(dead.stdout)}-ghi"
    for folder in (stale, live, other):
        folder.mkdir()
    with output_folder(tmp_path / "out"):
        pass
    assert not stale.exists() and live.exists() and other.exists()


def test_an_existing_file_is_no_output_folder(tmp_path):
    (tmp_path / "out").write_text("mine")
    with pytest.raises(OutputPathError, match="is an existing file"):
        with output_folder(tmp_path / "out"):
            pass
    assert (tmp_path / "out").read_text() == "mine"
