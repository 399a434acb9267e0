"""``gesco train``, ``train-segmenter`` and ``train-deep-jscc``: overrides, checks, and light imports."""

import json
import subprocess
import sys

import pytest

from gesco.cli.main import build_parser, main
from gesco.cli.train import overridden_config
from gesco.training.config import DataConfig, TrainConfig
from helpers import TINY_UNET


@pytest.fixture
def config_file(tmp_path):
    config = TrainConfig(
        output_dir=str(tmp_path / "run"),
        data=DataConfig(kind="synthetic", size=(16, 32), num_scenes=16),
        model=TINY_UNET,
        batch_size=2,
        max_steps=50,
        checkpoint_every=25,
    )
    return config.save(tmp_path / "config.json")


def parse(*argv):
    return build_parser("train").parse_args(["train", *argv])


def test_overrides_replace_the_configs_fields(config_file, tmp_path):
    config = overridden_config(
        parse(
            "--config",
            str(config_file),
            "--output-dir",
            str(tmp_path / "other"),
            "--batch-size",
            "3",
            "--max-steps",
            "7",
            "--checkpoint-every",
            "2",
        )
    )
    assert (config.output_dir, config.batch_size, config.max_steps, config.checkpoint_every) == (
        str(tmp_path / "other"),
        3,
        7,
        2,
    )
    assert overridden_config(parse("--config", str(config_file))) == TrainConfig.load(config_file)
    folder = TrainConfig.load(config_file).replace(
        class_table="folder", data=DataConfig(kind="folder", root="a", num_classes=35)
    )
    folder.save(tmp_path / "folder.json")
    assert overridden_config(parse("--config", str(tmp_path / "folder.json"), "--data-root", "b")).data.root == "b"
    with pytest.raises(ValueError, match="synthetic"):
        overridden_config(parse("--config", str(config_file), "--data-root", "b"))


@pytest.mark.parametrize(
    "command, option",
    [
        ("train", "--max-steps"),
        ("train", "--batch-size"),
        ("train", "--checkpoint-every"),
        ("train-deep-jscc", "--max-steps"),
        ("train-segmenter", "--steps"),
    ],
)
@pytest.mark.parametrize("value", ["0", "-3"])
def test_counts_below_one_are_usage_errors(command, option, value, config_file, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--config", str(config_file), "--out", "x", option, value])
    assert exit_info.value.code == 2
    assert f"{option}: must be an integer >= 1, got {int(value)}" in capsys.readouterr().err


def test_train_command_runs_with_overrides(config_file, tmp_path, capsys):
    out = tmp_path / "cli-run"
    argv = [
        "train",
        "--config",
        str(config_file),
        "--output-dir",
        str(out),
        "--max-steps",
        "2",
        "--batch-size",
        "1",
        "--checkpoint-every",
        "1",
        "--no-progress",
    ]
    assert main(argv) == 0
    assert "trained to step 2 on 1 process(es)" in capsys.readouterr().out
    saved = json.loads((out / "config.json").read_text())
    assert (saved["max_steps"], saved["batch_size"], saved["checkpoint_every"]) == (2, 1, 1)
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-00000001", "step-00000002"]
    assert main([*argv[:-3], "--max-steps", "3", "--resume", "--no-progress"]) == 0
    assert "trained to step 3" in capsys.readouterr().out


def test_training_commands_import_no_torch_until_they_run():
    code = (
        "import sys, gesco.cli.train, gesco.cli.train_segmenter, gesco.cli.train_deep_jscc; "
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith(('gesco.training', 'gesco.eval'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_training_and_baselines_do_not_import_evaluation():
    modules = [
        "gesco.training." + name
        for name in ("checkpoint", "conditioning", "config", "data", "ema", "loop", "preview", "trainer")
    ] + ["gesco.baselines.deep_jscc_training"]
    code = (
        f"import importlib, sys; [importlib.import_module(m) for m in {modules!r}]; "
        "print(sorted(m for m in sys.modules if m.startswith('gesco.evaluation')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
