"""TrainConfig: the nested preview sampler, the checks, and every shipped JSON that holds a training config."""

import json
import math
from dataclasses import fields
from pathlib import Path

import pytest
import torch

from gesco.baselines.deep_jscc_training import DeepJSCCTrainConfig
from gesco.config import ConfigError
from gesco.evaluation.depth_training import DepthTrainConfig
from gesco.evaluation.detector_training import DetectorTrainConfig
from gesco.evaluation.segmenter_training import SegmenterTrainConfig
from gesco.receiver.pipeline import DiffusionReceiver
from gesco.receiver.sampling import SamplerConfig
from gesco.receiver.unet import GescoUNet
from gesco.training.config import TrainConfig
from gesco.training.consistency_distillation import ConsistencyDistillConfig
from gesco.training.guidance_distillation import GuidanceDistillConfig
from gesco.training.map_denoiser_training import MapDenoiserTrainConfig
from gesco.training.trainer import export_receiver
from helpers import TINY_UNET

REPO = Path(__file__).resolve().parents[2]
TRAINING_CONFIGS = sorted(REPO.glob("configs/train-*.json")) + sorted(
    REPO.glob("src/gesco/pretrained/*/training-config.json")
)
CONFIG_CLASSES = {
    cls.__name__: cls
    for cls in (
        TrainConfig,
        SegmenterTrainConfig,
        DeepJSCCTrainConfig,
        MapDenoiserTrainConfig,
        DetectorTrainConfig,
        DepthTrainConfig,
        GuidanceDistillConfig,
        ConsistencyDistillConfig,
    )
}


def test_the_preview_sampler_is_one_nested_sampler_config():
    assert TrainConfig().sampler == SamplerConfig(sampler="dpmpp", steps=20, guidance=1.5)
    config = TrainConfig(sampler=SamplerConfig(sampler="ddim", steps=10, guidance=3.0))
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ConfigError, match='"sampler": {"sampler": "dpmpp-sde", "steps": 20}'):
        TrainConfig.from_dict({"sample_sampler": "dpmpp-sde", "sample_steps": 20})


@pytest.mark.parametrize("field", ["checkpoint_every", "max_steps", "batch_size", "log_every"])
def test_counts_must_be_at_least_one(field):
    with pytest.raises(ValueError, match=f"{field} must be >= 1"):
        TrainConfig(**{field: 0})


#: Optimiser settings that cannot train: zero or unbounded steps, decay and clipping turned around or off by NaN,
#: an EMA that never follows the weights.
UNTRAINABLE = [
    ("learning_rate", 0.0),
    ("learning_rate", -1e-3),
    ("learning_rate", math.nan),
    ("learning_rate", math.inf),
    ("weight_decay", -1e-4),
    ("weight_decay", math.nan),
    ("grad_clip", -1.0),
    ("grad_clip", math.nan),
    ("ema_decay", 1.0),
    ("ema_decay", -0.1),
    ("ema_decay", math.nan),
    ("warmup_steps", -1),
    ("keep_checkpoints", -1),
]


@pytest.mark.parametrize("config_class", list(CONFIG_CLASSES.values()), ids=list(CONFIG_CLASSES))
def test_every_trainer_refuses_optimiser_settings_that_cannot_train(config_class):
    names = {f.name for f in fields(config_class)}
    cases = [(name, value) for name, value in UNTRAINABLE if name in names]
    assert {"learning_rate", "ema_decay", "warmup_steps", "keep_checkpoints"} <= {name for name, _ in cases}
    for name, value in cases:
        with pytest.raises(ValueError, match=rf"{config_class.__name__}\.{name} must be .*, got {value}"):
            config_class(**{name: value})
    # the edges that still train are accepted: no clipping, no weight decay, no averaging, no warm-up
    edges = {"grad_clip": 0.0, "weight_decay": 0.0, "ema_decay": 0.0, "warmup_steps": 0, "keep_checkpoints": 0}
    config_class(**{name: value for name, value in edges.items() if name in names})


@pytest.mark.parametrize("path", TRAINING_CONFIGS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_training_config_file_loads(path):
    cls = CONFIG_CLASSES[json.loads(path.read_text())["_class_name"]]
    config = cls.load(path)
    assert cls.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_shipped_receivers_record_their_preview_sampler():
    for name in ("synthetic-streets-64x128", "synthetic-streets-64x128-sdm"):
        config = TrainConfig.load(REPO / "src" / "gesco" / "pretrained" / name / "training-config.json")
        assert config.sampler == SamplerConfig(sampler="dpmpp-sde", steps=20, guidance=1.5, autocast_dtype="float32"), (
            name
        )


def test_export_receiver_keeps_the_configs_sampler(tmp_path):
    unet = TINY_UNET
    sampler = SamplerConfig(sampler="ddim", steps=7, guidance=2.5)
    config = TrainConfig(model=unet, sampler=sampler)
    torch.manual_seed(0)
    export_receiver(config, GescoUNet(unet).state_dict(), tmp_path)
    assert DiffusionReceiver.from_pretrained(tmp_path).config.sampler == sampler
