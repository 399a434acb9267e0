"""TrainConfig: the nested preview sampler, the checks, and every shipped JSON that holds a training config."""

import json
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
