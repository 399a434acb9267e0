"""The bad-input corpus: every bad value, file or path a user can give gets a typed error that names it.

CLI cases run ``gesco`` in-process and check the exit code 2, one ``gesco COMMAND: error: ...`` line naming the
culprit, no traceback, and no output (nor a staging folder) left behind. API cases check the error type and that
the message names the culprit. Faults of the environment (a full disk mid-write) are simulated.
"""

from __future__ import annotations

import errno
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gesco.cli.main import main
from gesco.receiver.pipeline import DiffusionReceiver, ReceiverConfig
from gesco.receiver.sampling import SamplerConfig
from gesco.receiver.unet import GescoUNet, UNetConfig
from helpers import TINY_UNET, tiny_train_config

NAN, INF = math.nan, math.inf


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """A tiny receiver, broken copies of it, and broken input files, all under one folder."""
    root = tmp_path_factory.mktemp("inputs")
    torch.manual_seed(0)
    config = ReceiverConfig(image_size=(16, 32), sampler=SamplerConfig(sampler="dpmpp", steps=2, guidance=1.5))
    model = DiffusionReceiver(GescoUNet(TINY_UNET), config).save_pretrained(root / "model")
    good_png = root / "labels.png"
    Image.fromarray(np.full((16, 32), 7, dtype=np.uint8)).save(good_png)
    (root / "empty.png").write_bytes(b"")
    (root / "truncated.png").write_bytes(good_png.read_bytes()[:40])
    (root / "text.png").write_text("not an image")
    (root / "folder.png").mkdir()
    Image.fromarray(np.zeros((16, 32, 3), dtype=np.uint8)).save(root / "rgb.png")
    Image.fromarray(np.full((16, 32), 200, dtype=np.uint8)).save(root / "unknown-ids.png")
    Image.fromarray(np.full((15, 31), 7, dtype=np.uint8)).save(root / "odd-size.png")
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(root / "small-image.png")
    (root / "a-file").write_text("x")
    (root / "empty-dir").mkdir()
    (root / "good-labels").mkdir()
    (root / "good-labels" / "a.png").write_bytes(good_png.read_bytes())
    (root / "garbage.pt").write_bytes(b"\x80\x02garbage")
    torch.save([1, 2, 3], root / "list.pt")
    torch.save({"foo": torch.zeros(2)}, root / "foreign.pt")
    (root / "empty.pt").write_bytes(b"")
    (root / "empty.npy").write_bytes(b"")

    def broken(name, edit):
        folder = root / name
        DiffusionReceiver(GescoUNet(TINY_UNET), config).save_pretrained(folder)
        edit(folder)

    def edit_json(path, change):
        data = json.loads(path.read_text())
        path.write_text(json.dumps(change(data)))

    broken("model-list-json", lambda f: (f / "receiver.json").write_text("[1, 2]"))
    broken("model-bad-json", lambda f: (f / "receiver.json").write_text("{not json"))
    broken("model-unknown-field", lambda f: edit_json(f / "receiver.json", lambda d: {**d, "colour": 1}))
    broken("model-wrong-type", lambda f: edit_json(f / "receiver.json", lambda d: {**d, "image_size": "16x32"}))
    broken("model-nested-type", lambda f: edit_json(f / "receiver.json", lambda d: {**d, "sampler": {"steps": "2"}}))
    broken("model-newer", lambda f: edit_json(f / "receiver.json", lambda d: {**d, "_gesco_version": "9.0.0"}))
    broken(
        "model-missing-field",
        lambda f: edit_json(f / "unet" / "config.json", lambda d: {k: v for k, v in d.items() if k != "base_channels"}),
    )
    broken("model-unet-type", lambda f: edit_json(f / "unet" / "config.json", lambda d: {**d, "base_channels": "32"}))
    broken(
        "model-truncated",
        lambda f: (f / "unet" / "model.safetensors").write_bytes((f / "unet" / "model.safetensors").read_bytes()[:99]),
    )
    broken("model-no-weights", lambda f: (f / "unet" / "model.safetensors").unlink())
    broken("model-no-config", lambda f: (f / "receiver.json").unlink())
    assert model.is_dir()
    return root


def run_cli(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as stopped:  # argparse's usage errors
        return stopped.code


def assert_cli_error(argv, culprit, capsys, out: Path) -> str:
    """The command fails with exit code 2 and one error line naming ``culprit``; nothing is written at ``out``."""
    code = run_cli(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    line = [line for line in err.splitlines() if line.strip()][-1]
    assert line.startswith(f"gesco {argv[0]}") and ": error: " in line, line
    assert culprit in line, line
    assert not out.exists() or (out.is_file() and out.read_text() == "x"), "output left behind"
    assert not list(out.parent.glob(f".{out.name}.partial-*")), "staging folder left behind"
    return line


def fill(argv, inputs: Path, out: Path) -> list[str]:
    return [word.format(model=inputs / "model", inputs=inputs, out=out) for word in argv]


TRANSMIT = ["transmit", "--model", "{model}", "--synthetic", "1", "--out", "{out}"]
PSNR = ["--psnr", "10"]

TRANSMIT_CASES = [
    # quality
    ("psnr-unknown", ["--psnr", "7"], "unknown PSNR label 7"),
    ("psnr-nan", ["--psnr", "nan"], "argument --psnr: must be a finite number, got 'nan'"),
    ("psnr-inf", ["--psnr", "inf"], "argument --psnr: must be a finite number, got 'inf'"),
    ("psnr-negative", ["--psnr", "-5"], "unknown PSNR label -5"),
    ("psnr-fraction", ["--psnr", "10.5"], "unknown PSNR label 10.5"),
    ("psnr-word", ["--psnr", "ten"], "'ten'"),
    ("snr-nan", ["--peak-snr-db", "nan"], "argument --peak-snr-db: must be a finite number, got 'nan'"),
    ("snr-minus-inf", ["--peak-snr-db=-inf"], "must be a finite number, got '-inf'"),
    ("snr-minus-1000", ["--peak-snr-db", "-1000"], "-1000 dB"),
    ("snr-minus-1e308", ["--peak-snr-db=-1e308"], "-1e+308 dB"),
    ("esn0-nan", ["--channel", "unit-power", "--esn0-db", "nan"], "argument --esn0-db: must be a finite number"),
    # a noiseless channel, which the record's strict JSON could not hold
    ("esn0-plus-inf", ["--channel", "unit-power", "--esn0-db", "inf"], "must be a finite number, got 'inf'"),
    ("esn0-minus-1000", ["--channel", "unit-power", "--esn0-db", "-1000"], "-1000 dB"),
    ("esn0-on-awgn", ["--esn0-db", "3"], "Es/N0"),
    ("psnr-on-unit-power", ["--channel", "unit-power", "--psnr", "10"], "PSNR label"),
    ("two-qualities", ["--psnr", "10", "--peak-snr-db", "3"], "not allowed with argument"),
    ("no-quality", [], "one of the arguments"),
    # channel options
    ("coherence-zero", [*PSNR, "--channel", "rayleigh", "--coherence-symbols", "0"], "--coherence-symbols"),
    ("coherence-negative", [*PSNR, "--channel", "rayleigh", "--coherence-symbols", "-4"], "-4"),
    ("coherence-float", [*PSNR, "--channel", "rayleigh", "--coherence-symbols", "1.5"], "'1.5'"),
    ("channel-unknown", [*PSNR, "--channel", "wifi"], "'wifi'"),
    ("fading-unknown", [*PSNR, "--channel", "unit-power", "--fading", "rician"], "'rician'"),
    ("map-denoiser-unknown", [*PSNR, "--map-denoiser", "median"], "'median'"),
    # sampler
    ("guidance-nan", [*PSNR, "--guidance", "nan"], "guidance=nan"),
    ("guidance-inf", [*PSNR, "--guidance", "inf"], "guidance=inf"),
    ("guidance-minus-inf", [*PSNR, "--guidance=-inf"], "guidance=-inf"),
    ("guidance-word", [*PSNR, "--guidance", "high"], "'high'"),
    ("steps-zero", [*PSNR, "--steps", "0"], "steps=0"),
    ("steps-negative", [*PSNR, "--steps", "-3"], "steps=-3"),
    ("steps-float", [*PSNR, "--steps", "2.5"], "'2.5'"),
    ("dpmpp-1000-steps", [*PSNR, "--steps", "1000"], "steps=1000"),
    ("dpmpp-sde-1000-steps", [*PSNR, "--sampler", "dpmpp-sde", "--steps", "1000"], "steps=1000"),
    ("unipc-1000-steps", [*PSNR, "--sampler", "unipc", "--steps", "1000"], "steps=1000"),
    ("unipc-5000-steps", [*PSNR, "--sampler", "unipc", "--steps", "5000"], "steps=5000"),
    ("ddim-uneven-steps", [*PSNR, "--sampler", "ddim", "--steps", "999"], "ddim999"),
    ("ddpm-too-many-steps", [*PSNR, "--sampler", "ddpm", "--steps", "1001"], "1001"),
    ("sampler-unknown", [*PSNR, "--sampler", "euler"], "'euler'"),
    # source
    ("synthetic-word", [*PSNR, "--synthetic", "seven"], "'seven'"),
    # from tools/fresh_bad_inputs.py
    ("seed-beyond-64-bits", [*PSNR, "--seed", str(2**70)], "--seed"),
    ("seed-negative", [*PSNR, "--seed", "-1"], "--seed"),
    (
        "frequency-response-empty",
        ["--channel", "ofdm-official", "--esn0-db", "5", "--frequency-response", "{inputs}/empty.npy"],
        "empty.npy",
    ),
]

LABEL_CASES = [
    ("labels-empty", "empty.png", "empty.png"),
    ("labels-truncated", "truncated.png", "truncated.png"),
    ("labels-text", "text.png", "text.png"),
    ("labels-folder", "folder.png", "folder.png"),
    ("labels-missing", "missing.png", "missing.png"),
    ("labels-rgb", "rgb.png", "rgb.png"),
    ("labels-unknown-ids", "unknown-ids.png", "unknown-ids.png"),
    ("labels-odd-size", "odd-size.png", "15x31"),
]

MODEL_CASES = [
    ("model-missing", "no-such-model", "no-such-model"),
    ("model-empty-folder", "empty-dir", "empty-dir"),
    ("model-a-file", "a-file", "a-file"),
    ("model-no-config", "model-no-config", "model-no-config"),
    ("model-list-json", "model-list-json", "receiver.json"),
    ("model-bad-json", "model-bad-json", "receiver.json"),
    ("model-unknown-field", "model-unknown-field", "colour"),
    ("model-wrong-type", "model-wrong-type", "image_size"),
    ("model-nested-type", "model-nested-type", "SamplerConfig.steps"),
    ("model-newer", "model-newer", "9.0.0"),
    ("model-missing-field", "model-missing-field", "base_channels"),
    ("model-unet-type", "model-unet-type", "base_channels"),
    ("model-truncated", "model-truncated", "model.safetensors"),
    ("model-no-weights", "model-no-weights", "model.safetensors"),
]


@pytest.mark.parametrize(("options", "culprit"), [c[1:] for c in TRANSMIT_CASES], ids=[c[0] for c in TRANSMIT_CASES])
def test_transmit_options(inputs, tmp_path, capsys, options, culprit):
    out = tmp_path / "out"
    assert_cli_error(fill(TRANSMIT + options, inputs, out), culprit, capsys, out)


@pytest.mark.parametrize(("name", "culprit"), [c[1:] for c in LABEL_CASES], ids=[c[0] for c in LABEL_CASES])
def test_transmit_label_files(inputs, tmp_path, capsys, name, culprit):
    out = tmp_path / "out"
    argv = ["transmit", "--model", str(inputs / "model"), "--labels", str(inputs / name), *PSNR, "--out", str(out)]
    assert_cli_error(argv, culprit, capsys, out)


# an instance map takes any id, and its size is the label map's: those two cases are the label map's alone
INSTANCE_CASES = [c for c in LABEL_CASES if c[1] not in ("unknown-ids.png", "odd-size.png")]


@pytest.mark.parametrize(("name", "culprit"), [c[1:] for c in INSTANCE_CASES], ids=[c[0] for c in INSTANCE_CASES])
def test_transmit_instance_files(inputs, tmp_path, capsys, name, culprit):
    out = tmp_path / "out"
    argv = ["transmit", "--model", str(inputs / "model"), "--labels", str(inputs / "labels.png")]
    argv += ["--instances", str(inputs / name), *PSNR, "--out", str(out)]
    assert_cli_error(argv, culprit, capsys, out)


@pytest.mark.parametrize(
    ("name", "culprit"),
    [("empty.png", "empty.png"), ("text.png", "text.png"), ("folder.png", "folder.png"), ("small-image.png", "size")],
)
def test_transmit_original_images(inputs, tmp_path, capsys, name, culprit):
    out = tmp_path / "out"
    argv = ["transmit", "--model", str(inputs / "model"), "--labels", str(inputs / "labels.png")]
    assert_cli_error([*argv, "--image", str(inputs / name), *PSNR, "--out", str(out)], culprit, capsys, out)


@pytest.mark.parametrize(("name", "culprit"), [c[1:] for c in MODEL_CASES], ids=[c[0] for c in MODEL_CASES])
@pytest.mark.parametrize("command", ["transmit", "sample"])
def test_broken_model_folders(inputs, tmp_path, capsys, name, culprit, command):
    out = tmp_path / "out"
    model = str(inputs / name)
    if command == "transmit":
        argv = ["transmit", "--model", model, "--synthetic", "1"]
    else:
        argv = ["sample", "--model", model, "--labels", str(inputs / "empty-dir")]
    assert_cli_error([*argv, *PSNR, "--out", str(out)], culprit, capsys, out)


@pytest.mark.parametrize(
    ("out_name", "culprit"),
    [("a-file", "a-file"), ("a-file/below", "a-file"), ("/proc/gesco-out", "/proc/gesco-out")],
    ids=["out-is-a-file", "out-below-a-file", "out-not-writable"],
)
@pytest.mark.parametrize("command", ["transmit", "sample", "data"])
def test_unusable_output_paths(inputs, tmp_path, capsys, out_name, culprit, command):
    (tmp_path / "a-file").write_text("x")
    out = Path(out_name) if out_name.startswith("/") else tmp_path / out_name
    if command == "transmit":
        argv = [*fill(TRANSMIT, inputs, out), *PSNR]
    elif command == "sample":
        labels = tmp_path / "labels"
        labels.mkdir()
        (labels / "a.png").write_bytes((inputs / "labels.png").read_bytes())
        argv = ["sample", "--model", str(inputs / "model"), "--labels", str(labels), *PSNR, "--out", str(out)]
    else:
        argv = ["data", "synth", "--layout", "folder", "--n", "1", "--size", "16x32", "--out", str(out)]
    line = assert_cli_error(argv, culprit, capsys, out)
    assert "sampling" not in line


@pytest.mark.parametrize("out_name", ["a-file", "a-file/below"])
@pytest.mark.parametrize("command", ["evaluate", "compare"])
def test_reports_refuse_an_unusable_out_before_any_work(inputs, tmp_path, capsys, monkeypatch, command, out_name):
    def load(cls, *args, **kwargs):
        pytest.fail("a model was loaded before --out was checked")

    monkeypatch.setattr(DiffusionReceiver, "from_pretrained", classmethod(load))
    (tmp_path / "a-file").write_text("x")
    out = tmp_path / out_name
    argv = [command, "--model", str(inputs / "model"), "--out", str(out)]
    assert_cli_error(argv + (["--data", "synthetic"] if command == "evaluate" else []), "a-file", capsys, out)


@pytest.mark.parametrize("snr", ["nan", "inf", "1e999"])
def test_compare_refuses_a_non_finite_es_n0_before_any_work(inputs, tmp_path, capsys, snr):
    out = tmp_path / "out"
    argv = ["compare", "--model", str(inputs / "model"), "--snr", "3", snr, "--out", str(out)]
    assert_cli_error(argv, f"argument --snr: must be a finite number, got '{snr}'", capsys, out)


SAMPLE = ["sample", "--model", "{model}", "--out", "{out}", *PSNR]
SAMPLE_CASES = [
    ("labels-missing", ["--labels", "{inputs}/missing"], "missing"),
    ("labels-a-file", ["--labels", "{inputs}/a-file"], "a-file"),
    ("labels-no-png", ["--labels", "{inputs}/empty-dir"], "empty-dir"),
    ("batch-zero", ["--labels", "{inputs}/empty-dir", "--batch-size", "0"], "--batch-size"),
    ("batch-negative", ["--labels", "{inputs}/empty-dir", "--batch-size", "-2"], "-2"),
    ("guidance-nan", ["--labels", "{inputs}/good-labels", "--guidance", "nan"], "guidance=nan"),
    ("steps-zero", ["--labels", "{inputs}/good-labels", "--steps", "0"], "steps=0"),
]


@pytest.mark.parametrize(("options", "culprit"), [c[1:] for c in SAMPLE_CASES], ids=[c[0] for c in SAMPLE_CASES])
def test_sample_options(inputs, tmp_path, capsys, options, culprit):
    out = tmp_path / "out"
    assert_cli_error(fill(SAMPLE + options, inputs, out), culprit, capsys, out)


@pytest.mark.parametrize("name", ["empty.png", "truncated.png", "text.png", "rgb.png", "unknown-ids.png"])
def test_sample_folder_with_a_bad_label_file(inputs, tmp_path, capsys, name):
    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "a-good.png").write_bytes((inputs / "labels.png").read_bytes())
    (labels / f"b-{name}").write_bytes((inputs / name).read_bytes())
    out = tmp_path / "out"
    argv = ["sample", "--model", str(inputs / "model"), "--labels", str(labels), *PSNR, "--out", str(out)]
    assert_cli_error(argv, f"b-{name}", capsys, out)


CONVERT_CASES = [
    ("missing", ["{inputs}/no-such.pt", "--image-size", "16x32"], "no-such.pt"),
    ("a-folder", ["{inputs}/empty-dir", "--image-size", "16x32"], "empty-dir"),
    ("empty", ["{inputs}/empty.pt", "--image-size", "16x32"], "empty.pt"),
    ("garbage", ["{inputs}/garbage.pt", "--image-size", "16x32"], "garbage.pt"),
    ("a-list", ["{inputs}/list.pt", "--image-size", "16x32"], "list"),
    ("foreign-keys", ["{inputs}/foreign.pt", "--image-size", "16x32"], "not an official"),
    ("odd-size", ["{inputs}/garbage.pt", "--config", "official-tiny", "--image-size", "15x31"], "15x31"),
    ("size-zero", ["{inputs}/garbage.pt", "--image-size", "0x32"], "'0x32'"),
    ("size-malformed", ["{inputs}/garbage.pt", "--image-size", "16by32"], "'16by32'"),
    ("no-size", ["{inputs}/garbage.pt"], "--image-size"),
    ("config-unknown", ["{inputs}/garbage.pt", "--config", "giant"], "giant"),
    ("config-list-json", ["{inputs}/garbage.pt", "--config", "{inputs}/list.json"], "list.json"),
]


@pytest.mark.parametrize(("argv", "culprit"), [c[1:] for c in CONVERT_CASES], ids=[c[0] for c in CONVERT_CASES])
def test_convert_official(inputs, tmp_path, capsys, argv, culprit):
    (inputs / "list.json").write_text("[1]")
    out = tmp_path / "out"
    words = fill(argv, inputs, out)
    assert_cli_error(["convert-official", words[0], str(out), *words[1:]], culprit, capsys, out)


DATA_CASES = [
    ("n-zero", ["--n", "0"], "--n"),
    ("n-negative", ["--n", "-1"], "-1"),
    ("seed-negative", ["--seed", "-1"], "--seed"),
    ("size-zero", ["--size", "0x8"], "'0x8'"),
    ("size-one-side", ["--size", "64"], "'64'"),
    ("folder-with-split", ["--layout", "folder", "--split", "val"], "--split"),
    ("layout-unknown", ["--layout", "kitti"], "'kitti'"),
]


@pytest.mark.parametrize(("options", "culprit"), [c[1:] for c in DATA_CASES], ids=[c[0] for c in DATA_CASES])
def test_data_synth(tmp_path, capsys, options, culprit):
    out = tmp_path / "out"
    argv = ["data", "synth", "--out", str(out), "--size", "16x32", "--n", "1"]
    layout = [] if "--layout" in options else ["--layout", "folder"]
    assert_cli_error([*argv, *layout, *options], culprit, capsys, out)


TRAIN_CASES = [
    ("a-list", lambda c: [c], "got list"),
    ("a-string", lambda c: "config", "got str"),
    ("unknown-field", lambda c: {**c, "batchsize": 2}, "batchsize"),
    ("batch-size-string", lambda c: {**c, "batch_size": "2"}, "TrainConfig.batch_size"),
    ("batch-size-float", lambda c: {**c, "batch_size": 2.5}, "TrainConfig.batch_size"),
    ("batch-size-bool", lambda c: {**c, "batch_size": True}, "TrainConfig.batch_size"),
    ("batch-size-zero", lambda c: {**c, "batch_size": 0}, "batch_size"),
    ("max-steps-zero", lambda c: {**c, "max_steps": 0}, "max_steps"),
    ("checkpoint-every-zero", lambda c: {**c, "checkpoint_every": 0}, "checkpoint_every"),
    ("checkpoint-every-negative", lambda c: {**c, "checkpoint_every": -5}, "checkpoint_every"),
    ("log-every-zero", lambda c: {**c, "log_every": 0}, "log_every"),
    ("keep-checkpoints-negative", lambda c: {**c, "keep_checkpoints": -1}, "keep_checkpoints"),
    ("sample-every-negative", lambda c: {**c, "sample_every": -1}, "sample_every"),
    ("warmup-negative", lambda c: {**c, "warmup_steps": -1}, "warmup_steps"),
    ("dropout-above-one", lambda c: {**c, "condition_dropout": 1.5}, "condition_dropout"),
    ("noise-unknown", lambda c: {**c, "noise": "loud"}, "'loud'"),
    ("noise-sigmas-empty", lambda c: {**c, "noise_sigmas": []}, "noise_sigmas"),
    ("noise-sigmas-strings", lambda c: {**c, "noise_sigmas": ["a"]}, "noise_sigmas"),
    ("lr-schedule-unknown", lambda c: {**c, "lr_schedule": "linear"}, "'linear'"),
    ("mixed-precision-unknown", lambda c: {**c, "mixed_precision": "fp8"}, "'fp8'"),
    ("learning-rate-string", lambda c: {**c, "learning_rate": "fast"}, "TrainConfig.learning_rate"),
    ("learning-rate-nan", lambda c: {**c, "learning_rate": NAN}, "TrainConfig.learning_rate"),
    ("ema-decay-nan", lambda c: {**c, "ema_decay": NAN}, "TrainConfig.ema_decay"),
    ("noise-sigma-nan", lambda c: {**c, "noise_sigmas": [0.1, NAN]}, "TrainConfig.noise_sigmas"),
    ("data-not-object", lambda c: {**c, "data": 5}, "TrainConfig.data"),
    ("data-size-string", lambda c: {**c, "data": {**c["data"], "size": "16x32"}}, "DataConfig.size"),
    ("data-size-odd", lambda c: {**c, "data": {**c["data"], "size": [15, 31]}}, "data.size"),
    ("data-size-three", lambda c: {**c, "data": {**c["data"], "size": [16, 32, 3]}}, "DataConfig.size"),
    ("data-unknown-field", lambda c: {**c, "data": {**c["data"], "colour": 1}}, "colour"),
    ("data-kind-unknown", lambda c: {**c, "data": {**c["data"], "kind": "kitti"}}, "'kitti'"),
    ("data-kind-without-root", lambda c: {**c, "data": {**c["data"], "kind": "cityscapes"}}, "data.root"),
    ("data-scenes-in-eval-seeds", lambda c: {**c, "data": {**c["data"], "seed_offset": 999_999}}, "seed_offset"),
    ("model-channels-string", lambda c: {**c, "model": {**c["model"], "base_channels": "32"}}, "base_channels"),
    ("model-unknown-field", lambda c: {**c, "model": {**c["model"], "depth": 3}}, "depth"),
    ("model-labels-mismatch", lambda c: {**c, "model": {**c["model"], "label_channels": 35}}, "label_channels"),
    ("sampler-steps-zero", lambda c: {**c, "sampler": {"steps": 0}}, "steps=0"),
    ("sampler-unknown", lambda c: {**c, "sampler": {"sampler": "euler"}}, "'euler'"),
    ("sampler-old-fields", lambda c: {**c, "sample_steps": 20}, "sample_steps"),
    ("other-class", lambda c: {**c, "_class_name": "SamplerConfig"}, "SamplerConfig"),
    ("newer-version", lambda c: {**c, "_gesco_version": "9.1.0"}, "9.1.0"),
    ("bad-version", lambda c: {**c, "_gesco_version": "latest"}, "latest"),
    ("ema-decay-one", lambda c: {**c, "ema_decay": 1.0}, "decay"),
    ("grad-clip-negative", lambda c: {**c, "grad_clip": -1.0}, "grad_clip"),
    ("seed-negative", lambda c: {**c, "seed": -1}, "seed"),
    ("init-weights-missing", lambda c: {**c, "init_weights": "/no/such/model"}, "/no/such/model"),
    # from tools/fresh_bad_inputs.py
    ("learning-rate-minus-zero", lambda c: {**c, "learning_rate": -0.0}, "TrainConfig.learning_rate"),
    ("learning-rate-inf", lambda c: {**c, "learning_rate": INF}, "TrainConfig.learning_rate"),
    ("noise-sigma-negative", lambda c: {**c, "noise_sigmas": [0.1, -0.1]}, "TrainConfig.noise_sigmas"),
    ("noise-sigma-inf", lambda c: {**c, "noise_sigmas": [INF]}, "TrainConfig.noise_sigmas"),
    ("ema-decay-negative", lambda c: {**c, "ema_decay": -1.0}, "TrainConfig.ema_decay"),
    ("data-no-scenes", lambda c: {**c, "data": {**c["data"], "num_scenes": 0}}, "data.num_scenes"),
    ("model-too-large", lambda c: {**c, "model": {**c["model"], "base_channels": 10**9}}, "base_channels=1000000000"),
]


@pytest.mark.parametrize(("change", "culprit"), [c[1:] for c in TRAIN_CASES], ids=[c[0] for c in TRAIN_CASES])
def test_train_config_files(tmp_path, capsys, change, culprit):
    out = tmp_path / "run"
    path = tmp_path / "config.json"
    path.write_text(json.dumps(change(tiny_train_config(out))))
    assert_cli_error(["train", "--config", str(path)], culprit, capsys, out)


TRAIN_FILE_CASES = [
    ("missing", lambda p: None, "config.json"),
    ("empty", lambda p: p.write_text(""), "config.json"),
    ("not-json", lambda p: p.write_text("{batch_size: 2"), "config.json"),
    ("binary", lambda p: p.write_bytes(b"\xff\xfe\x00"), "config.json"),
    ("a-folder", lambda p: p.mkdir(), "config.json"),
]


@pytest.mark.parametrize(("make", "culprit"), [c[1:] for c in TRAIN_FILE_CASES], ids=[c[0] for c in TRAIN_FILE_CASES])
def test_train_config_file_itself(tmp_path, capsys, make, culprit):
    path = tmp_path / "config.json"
    make(path)
    assert_cli_error(["train", "--config", str(path)], culprit, capsys, tmp_path / "run")


@pytest.mark.parametrize(
    ("command", "options", "culprit"),
    [
        ("train", ["--max-steps", "0"], "--max-steps"),
        ("train", ["--max-steps", "-5"], "-5"),
        ("train", ["--batch-size", "0"], "--batch-size"),
        ("train", ["--max-steps", "many"], "'many'"),
        ("train-map-denoiser", ["--max-steps", "0"], "--max-steps"),
        ("train-map-denoiser", ["--max-steps", "-1"], "-1"),
        ("train-deep-jscc", ["--max-steps", "0"], "--max-steps"),
        ("train-deep-jscc", ["--channel-uses-per-pixel", "0"], "0.0 channel uses per pixel"),
        ("train-deep-jscc", ["--channel-uses-per-pixel", "-1"], "-1.0 channel uses per pixel"),
        ("train-deep-jscc", ["--channel-uses-per-pixel", "1e-9"], "1e-09 channel uses per pixel"),
        ("train-deep-jscc", ["--channel-uses-per-pixel", "nan"], "nan"),
        ("train-deep-jscc", ["--channel-uses-per-pixel", "inf"], "inf"),
    ],
)
def test_training_overrides(tmp_path, capsys, command, options, culprit):
    out = tmp_path / "run"
    config = tmp_path / "config.json"
    if command == "train-deep-jscc":
        config.write_text(json.dumps({"output_dir": str(out), "max_steps": 1}))
    else:
        config.write_text(json.dumps(tiny_train_config(out) if command == "train" else {"output_dir": str(out)}))
    assert_cli_error([command, "--config", str(config), *options], culprit, capsys, out)


@pytest.mark.parametrize(
    ("command", "options", "culprit"),
    [
        ("train-detector", ["--lr", "-1"], "DetectorTrainConfig.learning_rate must be a finite number > 0, got -1"),
        ("train-detector", ["--lr", "nan"], "learning_rate must be a finite number > 0, got nan"),
        ("train-detector", ["--min-area", "nan"], "DetectorTrainConfig.min_area must be a finite number >= 0"),
        ("train-detector", ["--classes", "26", "999"], "classes [999] have no boxes in the synthetic scenes"),
        ("train-depth", ["--lr", "inf"], "DepthTrainConfig.learning_rate must be a finite number > 0, got inf"),
        ("train-segmenter", ["--lr", "0"], "SegmenterTrainConfig.learning_rate must be a finite number > 0, got 0"),
    ],
)
def test_geometry_and_segmenter_training_refuse_settings_that_cannot_train(tmp_path, capsys, command, options, culprit):
    out = tmp_path / "run"
    data = ["--data", "synthetic"] if command == "train-segmenter" else []
    assert_cli_error([command, *data, "--out", str(out), "--steps", "1", *options], culprit, capsys, out)


def test_resume_without_checkpoints_and_a_run_without_resume(tmp_path, capsys):
    out = tmp_path / "run"
    config = tmp_path / "config.json"
    config.write_text(json.dumps(tiny_train_config(out)))
    assert_cli_error(["train", "--config", str(config), "--resume"], "no checkpoint", capsys, out / "checkpoints")


# -- faults of the environment ------------------------------------------------------------------------------------


def test_a_full_disk_mid_transmit_leaves_no_output(inputs, tmp_path, capsys, monkeypatch):
    written = []

    def full(self, fp, *args, **kwargs):
        if written:
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(fp)
        return original(self, fp, *args, **kwargs)

    original = Image.Image.save
    monkeypatch.setattr(Image.Image, "save", full)
    out = tmp_path / "out"
    line = assert_cli_error([*fill(TRANSMIT, inputs, out), *PSNR], "No space left on device", capsys, out)
    assert ".png" in line  # the file being written is named


def test_a_failed_transmit_keeps_the_previous_complete_output(inputs, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    assert run_cli([*fill(TRANSMIT, inputs, out), *PSNR]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    monkeypatch.setattr("gesco.io.write_json", lambda *a, **k: (_ for _ in ()).throw(OSError(errno.EIO, "I/O error")))
    assert run_cli([*fill(TRANSMIT, inputs, out), "--psnr", "5"]) == 2
    assert "I/O error" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not list(tmp_path.glob(".out.partial-*"))


def test_nan_weights_give_an_error_naming_the_cause(inputs, tmp_path, capsys):
    model = DiffusionReceiver.from_pretrained(inputs / "model")
    with torch.no_grad():
        for parameter in model.unet.parameters():
            parameter.fill_(NAN)
    folder = model.save_pretrained(tmp_path / "nan-model")
    out = tmp_path / "out"
    argv = ["transmit", "--model", str(folder), "--synthetic", "1", *PSNR, "--out", str(out)]
    assert_cli_error(argv, "weights hold NaN", capsys, out)


# -- the API -------------------------------------------------------------------------------------------------------


def _quality(kind, value):
    from gesco.channel.quality import ChannelQuality

    return ChannelQuality(kind, value)


def _conversion(name, value):
    from gesco.channel import quality

    return getattr(quality, name)(value)


def _sampler(**fields):
    return SamplerConfig(**fields)


def _sample(y=None, steps=2, sampler="ddim", x_T=None):
    from gesco.receiver.sampling import sample

    model = GescoUNet(TINY_UNET).eval()
    y = torch.zeros(1, 36, 16, 32) if y is None else y
    return sample(model, y, SamplerConfig(sampler=sampler, steps=steps), x_T=x_T, progress=False)


def _map(labels, table="cityscapes", instances=None):
    from gesco.semantics.maps import SemanticMap

    return SemanticMap(labels, table, instances)


def _link(semantic_map=None, quality=None, channel=None, generator=None):
    from gesco.channel.quality import ChannelQuality
    from gesco.link import Link

    semantic_map = _map(torch.full((2, 4, 4), 7)) if semantic_map is None else semantic_map
    quality = ChannelQuality.psnr_label(10) if quality is None else quality
    return Link(channel=channel)(semantic_map, quality, generator=generator)


def _receive(values):
    from gesco.channel.base import Received
    from gesco.channel.quality import ChannelQuality
    from gesco.receiver.receiver import Receiver

    payload = _link().payload
    payload = type(payload)(**{**payload.__dict__, "values": values(payload.values)})
    received = Received(payload, torch.zeros(2), ChannelQuality.psnr_label(10), torch.zeros(2, dtype=torch.int64))
    return Receiver()(received)


def _transmit(thing):
    from gesco.semantics.transmitter import Transmitter

    return Transmitter()(thing)


def _link_of(**blocks):
    from gesco.link import Link

    return Link(**blocks)


def _map_with_edge_rule(rule):
    from gesco.semantics.maps import SemanticMap

    return SemanticMap(torch.zeros(1, 4, 4, dtype=torch.long), "cityscapes", None, rule)


def _payload(values):
    from gesco.semantics.classes import class_table
    from gesco.semantics.payload import Payload

    return Payload(values, torch.ones(2, 36, dtype=torch.bool), class_table("cityscapes"))


def _received(sigma=None, payload=None, uses=None):
    from gesco.channel.base import Received
    from gesco.channel.quality import ChannelQuality

    payload = _link().payload if payload is None else payload
    sigma = torch.zeros(2) if sigma is None else sigma
    uses = torch.zeros(2, dtype=torch.int64) if uses is None else uses
    return Received(payload, sigma, ChannelQuality.psnr_label(10), uses)


def _budget_of(height, width):
    from gesco.baselines.accounting import channel_use_budget

    return channel_use_budget(height, width, per_pixel=1.0)


def _ofdm(**fields):
    from gesco.channel.ofdm.config import OfdmConfig

    return OfdmConfig(**fields)


def _config(cls_path, data):
    import importlib

    module, name = cls_path.rsplit(".", 1)
    return getattr(importlib.import_module(module), name).from_dict(data)


def _symbols(n0=0.1, coherence=4, fading="rayleigh"):
    from gesco.channel.digital.symbol_channel import SymbolChannel

    return SymbolChannel(fading=fading, coherence_symbols=coherence)(torch.ones(1, 8, dtype=torch.complex64), n0=n0)


def _budget(per_pixel):
    from gesco.baselines.accounting import channel_use_budget

    return channel_use_budget(16, 32, per_pixel=per_pixel)


def _latent(per_pixel):
    from gesco.baselines.deep_jscc import latent_channels_for

    return latent_channels_for(per_pixel)


def _image_size(size, preset="official-tiny"):
    from gesco.receiver.convert_official import check_image_size

    return check_image_size(size, UNetConfig.preset(preset))


def _read_labels(name):
    from gesco.datasets.label_files import read_label_map
    from gesco.semantics.classes import class_table

    path = Path(__file__).parent / "no-such-file.png" if name is None else name
    return read_label_map(path, class_table("cityscapes"))


API_CASES = [
    # channel quality
    ("quality-kind", lambda: _quality("snr", 3), ValueError, "'snr'"),
    ("quality-nan-db", lambda: _quality("peak_snr_db", NAN), ValueError, "NaN"),
    ("quality-minus-inf-db", lambda: _quality("peak_snr_db", -INF), ValueError, "-inf dB"),
    ("quality-minus-1000-db", lambda: _quality("esn0_db", -1000), ValueError, "-1000 dB"),
    ("quality-nan-esn0", lambda: _quality("esn0_db", NAN), ValueError, "NaN"),
    ("quality-nan-sigma", lambda: _quality("noise_std", NAN), ValueError, "NaN"),
    ("quality-inf-sigma", lambda: _quality("noise_std", INF), ValueError, "sigma must be a finite"),
    ("quality-negative-sigma", lambda: _quality("noise_std", -0.1), ValueError, "-0.1"),
    ("quality-label-7", lambda: _quality("psnr_label", 7), ValueError, "unknown PSNR label 7"),
    ("quality-label-nan", lambda: _quality("psnr_label", NAN), ValueError, "NaN"),
    ("quality-label-fraction", lambda: _quality("psnr_label", 10.5), ValueError, "10.5"),
    ("quality-bool", lambda: _quality("psnr_label", True), TypeError, "True"),
    ("quality-string", lambda: _quality("peak_snr_db", "3"), TypeError, "'3'"),
    ("quality-none", lambda: _quality("peak_snr_db", None), TypeError, "None"),
    ("quality-empty", lambda: _quality("peak_snr_db", []), ValueError, "at least one value"),
    ("quality-per-map-count", lambda: _link(quality=_quality("psnr_label", [10, 5, 1])), ValueError, "3 quality"),
    ("peak-snr-to-sigma-nan", lambda: _conversion("peak_snr_db_to_sigma", NAN), ValueError, "nan dB"),
    ("peak-snr-to-sigma-overflow", lambda: _conversion("peak_snr_db_to_sigma", -1e4), ValueError, "-10000"),
    ("esn0-to-n0-nan", lambda: _conversion("esn0_db_to_n0", NAN), ValueError, "nan dB"),
    ("esn0-to-n0-overflow", lambda: _conversion("esn0_db_to_n0", -1e4), ValueError, "-10000"),
    ("paper-sigma-unknown", lambda: _conversion("paper_sigma", 12), ValueError, "12"),
    ("paper-sigma-inf", lambda: _conversion("paper_sigma", INF), ValueError, "inf"),
    # sampler settings
    ("sampler-unknown", lambda: _sampler(sampler="euler"), ValueError, "'euler'"),
    ("sampler-steps-zero", lambda: _sampler(steps=0), ValueError, "steps=0"),
    ("sampler-steps-negative", lambda: _sampler(steps=-1), ValueError, "steps=-1"),
    ("sampler-steps-float", lambda: _sampler(steps=2.5), ValueError, "steps=2.5"),
    ("sampler-steps-bool", lambda: _sampler(steps=True), ValueError, "steps=True"),
    ("sampler-guidance-nan", lambda: _sampler(guidance=NAN), ValueError, "guidance=nan"),
    ("sampler-guidance-inf", lambda: _sampler(guidance=INF), ValueError, "guidance=inf"),
    ("sampler-guidance-string", lambda: _sampler(guidance="2"), ValueError, "guidance='2'"),
    ("sampler-eta-nan", lambda: _sampler(eta=NAN), ValueError, "eta=nan"),
    ("sampler-eta-negative", lambda: _sampler(eta=-0.5), ValueError, "eta=-0.5"),
    ("sampler-eta-on-dpmpp", lambda: _sampler(sampler="dpmpp", eta=0.5), ValueError, "eta=0.5"),
    ("sampler-respacing-on-unipc", lambda: _sampler(sampler="unipc", respacing="10"), ValueError, "respacing='10'"),
    ("sampler-autocast", lambda: _sampler(autocast_dtype="int8"), ValueError, "'int8'"),
    # sampling
    ("sample-dpmpp-1000", lambda: _sample(sampler="dpmpp", steps=1000), ValueError, "steps=1000"),
    ("sample-dpmpp-sde-1000", lambda: _sample(sampler="dpmpp-sde", steps=1000), ValueError, "steps=1000"),
    ("sample-unipc-1000", lambda: _sample(sampler="unipc", steps=1000), ValueError, "steps=1000"),
    ("sample-map-3d", lambda: _sample(y=torch.zeros(36, 16, 32)), ValueError, "(36, 16, 32)"),
    ("sample-map-empty-batch", lambda: _sample(y=torch.zeros(0, 36, 16, 32)), ValueError, "(0, 36, 16, 32)"),
    ("sample-map-zero-size", lambda: _sample(y=torch.zeros(1, 36, 0, 0)), ValueError, "(1, 36, 0, 0)"),
    ("sample-map-nan", lambda: _sample(y=torch.full((1, 36, 16, 32), NAN)), ValueError, "NaN or infinite"),
    ("sample-map-inf", lambda: _sample(y=torch.full((1, 36, 16, 32), INF)), ValueError, "NaN or infinite"),
    ("sample-map-1e20", lambda: _sample(y=torch.full((1, 36, 16, 32), 1e20)), ValueError, "1e+20"),
    ("sample-x-t-shape", lambda: _sample(x_T=torch.zeros(1, 3, 8, 8)), ValueError, "(1, 3, 8, 8)"),
    # the link
    ("link-empty-batch", lambda: _link(_map(torch.zeros(0, 4, 4, dtype=torch.long))), ValueError, "empty"),
    ("link-zero-size-map", lambda: _link(_map(torch.zeros(1, 0, 0, dtype=torch.long))), ValueError, "empty"),
    ("link-not-a-map", lambda: _link(torch.zeros(1, 4, 4)), TypeError, "Tensor"),
    ("link-quality-float", lambda: _link(quality=10.0), TypeError, "float"),
    ("link-channel-type", lambda: _link(channel=torch.nn.Identity()), TypeError, "Identity"),
    ("link-generators", lambda: _link(generator=[torch.Generator()]), ValueError, "got 1 items"),
    ("received-nan", lambda: _receive(lambda v: v * NAN), ValueError, "received map holds"),
    ("received-inf", lambda: _receive(lambda v: v + INF), ValueError, "received map holds"),
    ("map-label-range", lambda: _map(torch.full((1, 4, 4), 99)), ValueError, "99"),
    ("map-table", lambda: _map(torch.zeros(1, 4, 4, dtype=torch.long), table="kitti"), ValueError, "kitti"),
    ("map-float-labels", lambda: _map(torch.zeros(1, 4, 4)), TypeError, "float"),
    (
        "map-instances-shape",
        lambda: _map(torch.zeros(1, 4, 4, dtype=torch.long), instances=torch.zeros(1, 2, 2, dtype=torch.long)),
        ValueError,
        "(1, 2, 2)",
    ),
    # configs
    ("config-list", lambda: _config("gesco.training.config.TrainConfig", [1]), TypeError, "got list"),
    ("config-unknown", lambda: _config("gesco.training.config.TrainConfig", {"epochs": 3}), ValueError, "epochs"),
    ("config-wrong-type", lambda: _config("gesco.training.config.TrainConfig", {"seed": "0"}), TypeError, "seed"),
    (
        "config-nested-type",
        lambda: _config("gesco.training.config.TrainConfig", {"data": {"flip": 1}}),
        TypeError,
        "DataConfig.flip",
    ),
    (
        "config-nested-unknown",
        lambda: _config("gesco.training.config.TrainConfig", {"data": {"x": 1}}),
        ValueError,
        "'x'",
    ),
    (
        "config-literal",
        lambda: _config("gesco.receiver.sampling.SamplerConfig", {"sampler": "euler"}),
        TypeError,
        "euler",
    ),
    (
        "config-checkpoint-zero",
        lambda: _config("gesco.training.config.TrainConfig", {"checkpoint_every": 0}),
        ValueError,
        "checkpoint_every",
    ),
    (
        "config-unet-zero",
        lambda: _config("gesco.receiver.unet.UNetConfig", {"base_channels": 0}),
        ValueError,
        "base_channels",
    ),
    # channels, budgets, sizes
    ("symbols-n0-nan", lambda: _symbols(n0=NAN), ValueError, "n0=nan"),
    ("symbols-n0-negative", lambda: _symbols(n0=-1.0), ValueError, "n0=-1.0"),
    ("symbols-coherence-zero", lambda: _symbols(coherence=0), ValueError, "coherence_symbols=0"),
    ("symbols-fading", lambda: _symbols(fading="rician"), ValueError, "'rician'"),
    ("budget-zero", lambda: _budget(0.0), ValueError, "per_pixel=0.0"),
    ("budget-nan", lambda: _budget(NAN), ValueError, "per_pixel=nan"),
    ("budget-inf", lambda: _budget(INF), ValueError, "per_pixel=inf"),
    ("latent-zero", lambda: _latent(0.0), ValueError, "0.0 channel uses"),
    ("latent-nan", lambda: _latent(NAN), ValueError, "nan"),
    ("image-size-odd", lambda: _image_size((15, 31)), ValueError, "15x31"),
    ("image-size-zero", lambda: _image_size((0, 32)), ValueError, "(0, 32)"),
    ("image-size-one-side", lambda: _image_size((16,)), ValueError, "(16,)"),
    ("image-size-strings", lambda: _image_size(("16", 32)), ValueError, "'16'"),
    ("image-size-paper", lambda: _image_size((250, 500), "cityscapes"), ValueError, "250x500"),
    # files
    ("read-labels-missing", lambda: _read_labels(None), FileNotFoundError, "no-such-file.png"),
    # from tools/fresh_bad_inputs.py: the blocks of the link
    ("transmitter-a-tensor", lambda: _transmit(torch.zeros(1, 4, 4, dtype=torch.long)), TypeError, "Tensor"),
    ("transmitter-none", lambda: _transmit(None), TypeError, "NoneType"),
    ("link-transmitter-object", lambda: _link_of(transmitter=object()), TypeError, "transmitter"),
    ("link-receiver-string", lambda: _link_of(receiver="fds"), TypeError, "receiver"),
    ("map-table-none", lambda: _map(torch.zeros(1, 4, 4, dtype=torch.long), table=None), TypeError, "NoneType"),
    ("map-edge-rule", lambda: _map_with_edge_rule("diagonal"), ValueError, "'diagonal'"),
    ("payload-numpy", lambda: _payload(np.zeros((2, 36, 4, 4))), TypeError, "ndarray"),
    ("received-sigma-shape", lambda: _received(sigma=torch.zeros(3)), ValueError, "Received.sigma"),
    ("received-sigma-nan", lambda: _received(sigma=torch.full((2,), NAN)), ValueError, "Received.sigma"),
    ("received-uses-shape", lambda: _received(uses=torch.zeros(1)), ValueError, "complex_channel_uses"),
    ("received-not-a-payload", lambda: _received(payload=torch.zeros(2, 36, 4, 4)), TypeError, "Tensor"),
    ("quality-tensor-2d", lambda: _quality("peak_snr_db", torch.zeros(2, 2)), ValueError, "(2, 2)"),
    ("budget-no-pixels", lambda: _budget_of(0, 32), ValueError, "height=0"),
    # OFDM settings
    ("ofdm-delay-string", lambda: _ofdm(delay_spread_ns="100"), TypeError, "delay_spread_ns"),
    ("ofdm-spacing-none", lambda: _ofdm(subcarrier_spacing_khz=None), TypeError, "subcarrier_spacing_khz"),
    ("ofdm-symbols-string", lambda: _ofdm(ofdm_symbols="14"), TypeError, "ofdm_symbols"),
    ("ofdm-antennas-bool", lambda: _ofdm(antennas=True), TypeError, "antennas"),
    ("ofdm-symbols-zero", lambda: _ofdm(ofdm_symbols=0), ValueError, "ofdm_symbols=0"),
    # what reaches the receiver and which model is named
    ("receiver-given-a-payload", lambda: _receive_a_payload(), TypeError, "Payload"),
    ("model-name-empty", lambda: _resolve(""), FileNotFoundError, "'' is empty"),
    ("model-name-blank", lambda: _resolve("  "), FileNotFoundError, "'  ' is empty"),
]


def _receive_a_payload():
    from gesco.receiver.receiver import Receiver

    return Receiver(None)(_received().payload)


def _resolve(name):
    from gesco.pretrained import resolve

    return resolve(name)


@pytest.mark.parametrize(("call", "error", "culprit"), [c[1:] for c in API_CASES], ids=[c[0] for c in API_CASES])
def test_api(call, error, culprit):
    with pytest.raises(error) as raised:
        call()
    assert culprit in str(raised.value) or culprit in str(getattr(raised.value, "filename", "")), str(raised.value)


def _never_called(*args):
    raise AssertionError("the model ran: sampling did not check its inputs first")


@pytest.mark.parametrize(
    ("sampler", "y", "culprit"),
    [
        ("dpmpp", torch.zeros(1, 36, 16, 32), "steps=1000"),
        ("dpmpp-sde", torch.zeros(1, 36, 16, 32), "steps=1000"),
        ("unipc", torch.zeros(1, 36, 16, 32), "steps=1000"),
        ("ddim", torch.full((1, 36, 16, 32), 1e20), "1e+20"),
        ("ddim", torch.full((1, 36, 16, 32), NAN), "NaN or infinite"),
    ],
    ids=["dpmpp-1000", "dpmpp-sde-1000", "unipc-1000", "map-1e20", "map-nan"],
)
def test_sampling_refuses_before_the_model_runs(sampler, y, culprit):
    """A bad request fails before the first network call (a sampler at 1000 steps would run for minutes)."""
    from gesco.receiver.sampling import sample

    steps = 2 if sampler == "ddim" else 1000
    with pytest.raises(ValueError, match=re.escape(culprit)):
        sample(_never_called, y, SamplerConfig(sampler=sampler, steps=steps), progress=False)


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("empty.png", ValueError),
        ("truncated.png", ValueError),
        ("text.png", ValueError),
        ("folder.png", IsADirectoryError),
        ("rgb.png", ValueError),
        ("unknown-ids.png", ValueError),
    ],
)
def test_api_label_files(inputs, name, error):
    with pytest.raises(error) as raised:
        _read_labels(inputs / name)
    assert name in str(raised.value)


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"a": NAN}, "a"),
        ({"a": [1.0, INF]}, "a[1]"),
        ({"cells": [{"miou": -INF}]}, "cells[0].miou"),
        ([{"x": {"y": NAN}}], "[0].x.y"),
        (NAN, "the value"),
    ],
)
def test_json_outputs_are_strict(tmp_path, data, key):
    from gesco.io import NonFiniteValueError, write_json

    path = tmp_path / "out.json"
    with pytest.raises(NonFiniteValueError) as raised:
        write_json(path, data)
    assert f"{key} is" in str(raised.value) and str(path) in str(raised.value)
    assert not path.exists() and list(tmp_path.iterdir()) == []


def test_an_output_folder_over_a_file_is_refused(tmp_path):
    from gesco.io import OutputPathError, output_folder

    (tmp_path / "out").write_text("x")
    with pytest.raises(OutputPathError, match="out is an existing file"):
        with output_folder(tmp_path / "out"):
            pass
    assert (tmp_path / "out").read_text() == "x"


def test_save_pretrained_over_a_file_is_refused(tmp_path):
    from gesco.io import OutputPathError

    (tmp_path / "model").write_text("x")
    with pytest.raises(OutputPathError, match="model is an existing file"):
        DiffusionReceiver(GescoUNet(TINY_UNET), ReceiverConfig(image_size=(16, 32))).save_pretrained(tmp_path / "model")


class _DetrStyle(torch.nn.Module):
    """A detector exported as DETR is: boxes and logits in a dict, not the one tensor of rows gesco reads."""

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"pred_boxes": torch.zeros(x.shape[0], 3, 4), "pred_logits": torch.zeros(x.shape[0], 3, 2)}


GEOMETRY_CASES = [
    ("detector-missing", ["--detector", "{inputs}/no-detector.pt"], "no-detector.pt"),
    ("detector-no-config", ["--detector", "{geometry}/bare.pt"], "needs a JSON config"),
    ("detector-junk-onnx", ["--detector", "{geometry}/junk.onnx"], "junk.onnx is not an ONNX model"),
    ("detector-dict-output", ["--detector", "{geometry}/detr.pt"], "returned a dict"),
    ("depth-not-a-model", ["--depth", "{geometry}/junk.pt"], "junk.pt is neither an ONNX file"),
    ("depth-config-alone", ["--depth-config", "{geometry}/junk.json"], "without a depth network"),
    # a negative or NaN area would silently score every box
    ("detector-min-area-negative", ["--detector", "{geometry}/detr.pt", "--detector-min-area", "-3"], "got -3"),
    ("detector-min-area-nan", ["--detector", "{geometry}/detr.pt", "--detector-min-area", "nan"], "got nan"),
]


@pytest.mark.parametrize(("options", "culprit"), [c[1:] for c in GEOMETRY_CASES], ids=[c[0] for c in GEOMETRY_CASES])
@pytest.mark.parametrize("command", ["evaluate", "compare"])
def test_a_bad_detector_or_depth_network_fails_before_any_image_is_made(
    inputs, tmp_path, capsys, command, options, culprit
):
    from gesco.evaluation.geometry_networks import ExternalDepthConfig, ExternalDetectorConfig

    if "onnx" in culprit:
        pytest.importorskip("onnxruntime")
    geometry = tmp_path / "geometry"
    geometry.mkdir()
    torch.jit.script(_DetrStyle()).save(str(geometry / "detr.pt"))
    torch.jit.script(_DetrStyle()).save(str(geometry / "bare.pt"))
    ExternalDetectorConfig(label_map=(26, 24)).save(geometry / "detr.json")
    (geometry / "junk.onnx").write_bytes(b"not a protobuf")
    ExternalDetectorConfig(label_map=(26,)).save(geometry / "junk.json")
    (geometry / "junk.pt").write_bytes(b"not a model")
    out = tmp_path / "out"
    argv = [command, "--model", str(inputs / "model"), "--n", "1", "--no-fid", "--out", str(out)]
    if command == "evaluate":
        argv += ["--data", "synthetic", "--psnr", "10"]
    else:  # Deep JSCC's channel uses are the comparison's budget: a tiny one at the receiver's size
        from gesco.baselines.deep_jscc import DeepJSCC, DeepJSCCConfig

        small = DeepJSCCConfig(image_size=(16, 32), hidden_channels=(4, 4, 4, 4))
        DeepJSCC(small).save_pretrained(tmp_path / "djscc")
        argv += ["--methods", "gesco-analog", "--aware-model", "none", "--deep-jscc", str(tmp_path / "djscc")]
    argv += [w.format(inputs=inputs, geometry=geometry) for w in options]
    if options[0].startswith("--depth"):
        ExternalDepthConfig().save(geometry / "junk.json")
    assert_cli_error(argv, culprit, capsys, out)
