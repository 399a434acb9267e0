import json

import pytest
import torch

from gesco.cli.main import main
from gesco.datasets import SyntheticStreetsDataset
from gesco.evaluation.segmenter import (
    SYNTHETIC_CLASS_IDS,
    ExternalSegmenter,
    ExternalSegmenterConfig,
    GescoSegmenter,
    SegmenterConfig,
    default_class_ids,
    load_segmenter,
)
from gesco.evaluation.segmenter_training import (
    SegmenterTrainConfig,
    augment,
    class_weights,
    target_lookup,
    train_segmenter,
)
from gesco.semantics.classes import class_table
from gesco.training.checkpoint import list_checkpoints, load_checkpoint
from gesco.training.config import DataConfig

CITYSCAPES = class_table("cityscapes")
TINY = SegmenterConfig(widths=(4, 8))


def test_default_segmenter_is_compact_and_predicts_its_classes(generator):
    model = GescoSegmenter(SegmenterConfig())
    assert 200_000 < model.num_parameters < 600_000
    images = torch.rand(2, 3, 30, 50, generator=generator) * 2 - 1
    assert model(images).shape == (2, len(SYNTHETIC_CLASS_IDS), 30, 50)  # sizes not divisible by 8 work
    predicted = model.predict(images)
    assert predicted.shape == (2, 30, 50) and set(predicted.unique().tolist()) <= set(SYNTHETIC_CLASS_IDS)
    assert model.training  # predict restores the mode
    assert len(default_class_ids(CITYSCAPES)) == 19 and len(default_class_ids(class_table("ade20k"))) == 150


def test_segmenter_round_trip(tmp_path, generator):
    model = GescoSegmenter(TINY)
    model(torch.rand(4, 3, 16, 16, generator=generator))  # move the batch-norm statistics
    model.save_pretrained(tmp_path / "seg")
    loaded = load_segmenter(tmp_path / "seg")
    images = torch.rand(2, 3, 16, 32, generator=generator) * 2 - 1
    assert torch.equal(loaded.predict(images), model.predict(images)) and not loaded.training
    with pytest.raises(FileNotFoundError, match="not a gesco segmenter folder"):
        load_segmenter(tmp_path)
    with pytest.raises(ValueError, match="class_ids"):
        SegmenterConfig(class_ids=(7, 7))


def test_external_torchscript_segmenter_with_normalisation_and_label_map(tmp_path):
    class Thresholds(torch.nn.Module):
        """Logit 0 wins where the red input exceeds 100, logit 1 elsewhere; inputs must be raw 0..255 pixels."""

        def forward(self, x):
            red = x[:, :1]
            return torch.cat([red - 100, 100 - red, torch.full_like(red, -1000.0)], dim=1)[:, :, ::2, ::2]

    torch.jit.script(Thresholds()).save(str(tmp_path / "seg.pt"))
    config = ExternalSegmenterConfig(class_table="cityscapes", label_map=(26, 7, -1), input_range=(0.0, 255.0))
    config.save(tmp_path / "seg.json")
    segmenter = load_segmenter(tmp_path / "seg.pt")
    images = -torch.ones(1, 3, 8, 8)
    images[:, 0, :, 4:] = 1.0  # red 255 on the right half
    predicted = segmenter.predict(images)
    assert predicted.shape == (1, 8, 8)
    assert (predicted[0, :, :3] == 7).all() and (predicted[0, :, 5:] == 26).all()
    wrong = ExternalSegmenter(segmenter.network, config.replace(label_map=(26, 7)))
    with pytest.raises(ValueError, match="must return"):
        wrong.predict(images)
    with pytest.raises(FileNotFoundError, match="needs a JSON config"):
        ExternalSegmenter.from_file(tmp_path / "seg.pt", tmp_path / "absent.json")
    with pytest.raises(ValueError, match="label_map"):
        ExternalSegmenterConfig(label_map=(99,))
    (tmp_path / "model.onnx").write_bytes(b"onnx")
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="gesco\\[onnx\\]"):
            ExternalSegmenter.from_file(tmp_path / "model.onnx", config)


def test_class_weights_favour_rare_classes_and_augment_keeps_pairs(generator):
    dataset = SyntheticStreetsDataset(8, 0, height=32, width=64)
    lookup = target_lookup(CITYSCAPES, SYNTHETIC_CLASS_IDS)
    weights = class_weights(dataset, lookup, len(SYNTHETIC_CLASS_IDS), scenes=8, power=0.5, max_weight=10)
    by_name = {CITYSCAPES.names[c]: float(w) for c, w in zip(SYNTHETIC_CLASS_IDS, weights)}
    assert by_name["pole"] > by_name["road"] and by_name["traffic sign"] > by_name["sky"]
    labels = torch.stack([dataset[i].labels for i in range(8)])
    road, sky = (int((labels == c).sum()) for c in (7, 23))
    index = SYNTHETIC_CLASS_IDS.index
    assert float(weights[index(7)] / weights[index(23)]) == pytest.approx((sky / road) ** 0.5, rel=1e-4)
    images = torch.rand(4, 3, 8, 8, generator=generator) * 2 - 1
    labels = torch.arange(64).view(1, 8, 8).expand(4, 8, 8)
    out_images, out_labels = augment(images, labels, torch.Generator().manual_seed(1))
    flipped = out_labels[:, 0, 0] == 7
    assert out_images.shape == images.shape and out_images.abs().max() <= 1
    assert torch.equal(out_labels[flipped], labels[flipped].flip(-1))
    assert torch.equal(out_labels[~flipped], labels[~flipped])


def tiny_run(output, **changes) -> SegmenterTrainConfig:
    config = SegmenterTrainConfig(
        output_dir=str(output),
        data=DataConfig(kind="synthetic", size=(16, 32), num_scenes=32),
        validation=DataConfig(kind="synthetic", size=(16, 32), num_scenes=4, seed_offset=2_000_000),
        model=TINY,
        batch_size=2,
        max_steps=6,
        checkpoint_every=3,
        weight_scenes=4,
        warmup_steps=2,
        lr_schedule="constant",
    )
    return config.replace(**changes)


def test_training_resumes_exactly_and_exports(tmp_path):
    # 3 steps + resume + 3 steps equal 6 steps straight (the warm-up of 2 steps, then a constant rate)
    straight = train_segmenter(tiny_run(tmp_path / "a"), progress=False)
    first = train_segmenter(tiny_run(tmp_path / "b", max_steps=3), progress=False)
    resumed = train_segmenter(tiny_run(tmp_path / "b"), resume=True, progress=False)
    assert len(straight.losses) == 6 and len(first.losses) == len(resumed.losses) == 3
    assert first.losses + resumed.losses == pytest.approx(straight.losses, abs=1e-6)
    assert straight.step == resumed.step == 6 and first.step == 3
    a = load_checkpoint(list_checkpoints(tmp_path / "a" / "checkpoints")[-1])
    b = load_checkpoint(list_checkpoints(tmp_path / "b" / "checkpoints")[-1])
    assert a.step == b.step == 6 and a.ema_updates == b.ema_updates == 6
    for name, value in a.model.items():
        assert torch.allclose(value.float(), b.model[name].float(), atol=1e-6), name
        assert torch.allclose(a.ema[name], b.ema[name], atol=1e-6), name
    assert a.lr_scheduler == b.lr_scheduler
    history = json.loads((tmp_path / "b" / "history.json").read_text())
    assert [h["step"] for h in history] == [3, 6] and 0 <= history[-1]["validation_miou"] <= 1
    assert resumed.validation.miou == pytest.approx(straight.validation.miou, abs=1e-6)
    assert isinstance(load_segmenter(tmp_path / "b" / "model"), GescoSegmenter)
    with pytest.raises(ValueError, match="already holds checkpoints"):
        train_segmenter(tiny_run(tmp_path / "a"), progress=False)
    with pytest.raises(ValueError, match="reach the evaluation seeds"):
        tiny_run(tmp_path / "c", data=DataConfig(kind="synthetic", num_scenes=10, seed_offset=999_995))


def test_train_segmenter_command(tmp_path, capsys):
    out = tmp_path / "seg"
    args = [
        "train-segmenter",
        "--out",
        str(out),
        "--steps",
        "2",
        "--batch-size",
        "2",
        "--size",
        "16x32",
        "--scenes",
        "16",
        "--val-scenes",
        "2",
        "--widths",
        "4",
        "8",
        "--checkpoint-every",
        "2",
        "--no-progress",
    ]
    assert main(args) == 0
    assert "validation mIoU" in capsys.readouterr().out
    assert (out / "model" / "model.safetensors").is_file() and (out / "class_weights.json").is_file()
    assert main(["train-segmenter", "--data", "cityscapes", "--out", str(tmp_path / "x")]) == 2
    assert "--root" in capsys.readouterr().err


def test_external_onnx_segmenter(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")

    class RedThreshold(torch.nn.Module):
        def forward(self, x):
            red = x[:, :1]
            return torch.cat([red - 100, 100 - red], dim=1)

    torch.onnx.export(
        RedThreshold(),
        (torch.zeros(1, 3, 8, 8),),
        str(tmp_path / "seg.onnx"),
        dynamo=False,
        input_names=["images"],
        output_names=["logits"],
        dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}},
    )
    ExternalSegmenterConfig(class_table="cityscapes", label_map=(26, 7), input_range=(0.0, 255.0)).save(
        tmp_path / "seg.json"
    )
    segmenter = load_segmenter(tmp_path / "seg.onnx")
    images = -torch.ones(2, 3, 8, 8)
    images[:, 0, :, 4:] = 1.0
    predicted = segmenter.predict(images)
    assert predicted.shape == (2, 8, 8)
    assert (predicted[:, :, :4] == 7).all() and (predicted[:, :, 4:] == 26).all()
