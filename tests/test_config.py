"""Config contract: every config in the package survives JSON, and from_dict / load refuse bad data by name."""

from __future__ import annotations

import dataclasses
import importlib
import json
import pkgutil

import pytest

import gesco
from gesco.config import Config, ConfigError, ConfigTypeError, ConfigVersionError
from gesco.receiver.pipeline import ReceiverConfig
from gesco.receiver.sampling import SamplerConfig
from gesco.receiver.unet import UNetConfig
from gesco.training.config import DataConfig, TrainConfig

#: Configs that must be found, so that the discovery below cannot pass by finding nothing.
KNOWN = {
    "UNetConfig",
    "DiffusionConfig",
    "SamplerConfig",
    "ReceiverConfig",
    "DataConfig",
    "TrainConfig",
    "DigitalConfig",
    "SegmenterConfig",
    "ExternalSegmenterConfig",
    "SegmenterTrainConfig",
    "DeepJSCCConfig",
    "DeepJSCCTrainConfig",
}

#: Values for configs whose defaults are not valid on their own (an external segmenter needs its label map).
NOT_DEFAULT = {
    "ExternalSegmenterConfig": {"label_map": (7, 8, -1), "input_size": (32, 64)},
    "ExternalDetectorConfig": {"label_map": (26, 24, -1), "input_size": (32, 64)},
}


def _import_every_module() -> None:
    """Import all of gesco; a module whose optional third-party dependency is absent is skipped."""
    for module in pkgutil.walk_packages(gesco.__path__, prefix="gesco."):
        try:
            importlib.import_module(module.name)
        except ModuleNotFoundError as err:
            if err.name is None or err.name.split(".")[0] == "gesco":
                raise  # a broken gesco import, not an optional extra


def _subclasses(cls: type) -> list[type]:
    return [c for sub in cls.__subclasses__() for c in (sub, *_subclasses(sub))]


def _package_configs() -> list[type[Config]]:
    _import_every_module()
    found = {c for c in _subclasses(Config) if c.__module__.startswith("gesco.")}
    return sorted(found, key=lambda c: f"{c.__module__}.{c.__qualname__}")


PACKAGE_CONFIGS = _package_configs()


def test_every_known_config_is_discovered():
    assert KNOWN <= {c.__name__ for c in PACKAGE_CONFIGS}


@pytest.mark.parametrize("cls", PACKAGE_CONFIGS, ids=lambda c: c.__name__)
def test_defaults_round_trip_through_json(cls):
    config = cls(**NOT_DEFAULT.get(cls.__name__, {}))
    loaded = cls.from_dict(json.loads(json.dumps(config.to_dict())))
    assert type(loaded) is cls and loaded == config
    assert loaded.to_dict() == config.to_dict()  # tuples stay tuples, nested configs stay configs


@pytest.mark.parametrize("cls", PACKAGE_CONFIGS, ids=lambda c: c.__name__)
def test_defaults_round_trip_through_a_file(cls, tmp_path):
    config = cls(**NOT_DEFAULT.get(cls.__name__, {}))
    assert cls.load(config.save(tmp_path / "config.json")) == config


# from_dict: shapes of data ----------------------------------------------------------------------


def test_data_that_is_not_a_dict_is_a_type_error_naming_the_class():
    with pytest.raises(ConfigTypeError, match="a UNetConfig must be a JSON object .*got list"):
        UNetConfig.from_dict([32, [1, 2]])
    assert issubclass(ConfigTypeError, TypeError) and issubclass(ConfigTypeError, ValueError)


def test_a_file_holding_a_json_list_is_a_type_error_naming_the_file(tmp_path):
    path = tmp_path / "unet.json"
    path.write_text("[1, 2, 3]\n")
    with pytest.raises(ConfigTypeError, match=rf"{path}: a UNetConfig must be a JSON object"):
        UNetConfig.load(path)


def test_a_file_that_is_not_json_is_a_config_error(tmp_path):
    path = tmp_path / "unet.json"
    path.write_text("{base_channels: 32")
    with pytest.raises(ConfigError, match="not valid JSON"):
        UNetConfig.load(path)


def test_unknown_field_is_named():
    with pytest.raises(ConfigError, match=r"unknown UNetConfig fields \['base_chanels'\]"):
        UNetConfig.from_dict({"base_chanels": 32})


def test_another_class_name_is_refused():
    with pytest.raises(ConfigError, match="describes a 'SamplerConfig', not a 'UNetConfig'"):
        UNetConfig.from_dict(SamplerConfig().to_dict())


@dataclasses.dataclass(frozen=True)
class _NeedsAName(Config):
    """A config with a field that has no default (the package's configs all have defaults)."""

    name: str
    size: int = 1


def test_missing_field_without_default_is_named():
    assert _NeedsAName.from_dict({"name": "a"}) == _NeedsAName("a")
    with pytest.raises(ConfigError, match=r"_NeedsAName needs the fields \['name'\]"):
        _NeedsAName.from_dict({"size": 2})


# from_dict: types of values ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "cls, field, value, message",
    [
        (DataConfig, "num_workers", "2", r"DataConfig\.num_workers must be int, got '2'"),
        (DataConfig, "num_workers", True, r"DataConfig\.num_workers must be int, got True"),
        (SamplerConfig, "steps", 20.5, r"SamplerConfig\.steps must be int, got 20\.5"),
        (SamplerConfig, "guidance", False, r"SamplerConfig\.guidance must be float, got False"),
        (SamplerConfig, "guidance", "2", r"SamplerConfig\.guidance must be float, got '2'"),
        (DataConfig, "flip", 1, r"DataConfig\.flip must be bool, got 1"),
        (DataConfig, "split", 3, r"DataConfig\.split must be str, got 3"),
        (DataConfig, "kind", None, r"DataConfig\.kind must be str, got None"),
        (DataConfig, "root", 5, r"DataConfig\.root must be str \| None, got 5"),
        (DataConfig, "size", [64, "128"], r"DataConfig\.size must be tuple\[int, int\], got \[64, '128'\] \(item 1"),
        (DataConfig, "size", [64], r"DataConfig\.size must be tuple\[int, int\], got \[64\] \(2 items wanted"),
        (DataConfig, "size", "64x128", r"DataConfig\.size must be tuple\[int, int\], got '64x128'"),
        (UNetConfig, "channel_mult", [1, 2.0], r"UNetConfig\.channel_mult must be tuple\[int, \.\.\.\]"),
        (TrainConfig, "noise_sigmas", [0.1, None], r"TrainConfig\.noise_sigmas must be tuple\[float, \.\.\.\]"),
        (SamplerConfig, "sampler", "euler", r"SamplerConfig\.sampler must be Literal\[.*'ddim'.*got 'euler'"),
        (TrainConfig, "model", "small64", r"TrainConfig\.model must be UNetConfig, got 'small64'"),
        (ReceiverConfig, "sampler", ["ddim", 50], r"ReceiverConfig\.sampler must be SamplerConfig, got \['ddim'"),
    ],
)
def test_wrong_types_name_the_field_the_type_and_the_value(cls, field, value, message):
    with pytest.raises(ConfigTypeError, match=message):
        cls.from_dict({field: value})


def test_wrong_type_inside_a_nested_config_names_both_levels(tmp_path):
    data = TrainConfig().to_dict()
    data["data"]["size"] = ["64", 128]
    path = tmp_path / "train.json"
    path.write_text(json.dumps(data))
    message = rf"{path}: TrainConfig\.data: DataConfig\.size must be tuple\[int, int\]"
    with pytest.raises(ConfigTypeError, match=message):
        TrainConfig.load(path)


def test_what_json_gives_is_turned_into_what_the_fields_hold():
    config = SamplerConfig.from_dict({"guidance": 3, "respacing": None})
    assert config.guidance == 3.0 and isinstance(config.guidance, float) and config.respacing is None
    data = DataConfig.from_dict({"size": [32, 64], "root": "x", "num_classes": None})
    assert data.size == (32, 64) and isinstance(data.size, tuple)
    train = TrainConfig.from_dict({"model": {"base_channels": 32, "channel_mult": [1, 2], "attention_ds": [2]}})
    assert train.model == UNetConfig(base_channels=32, channel_mult=(1, 2), attention_ds=(2,))
    assert TrainConfig.from_dict({"data": DataConfig(num_scenes=5)}).data.num_scenes == 5


# from_dict: versions ----------------------------------------------------------------------------


def _running() -> tuple[int, int]:
    major, minor = gesco.__version__.split(".")[:2]
    return int(major), int(minor)


def test_config_from_a_newer_gesco_is_refused_naming_file_and_version(tmp_path):
    major, minor = _running()
    for newer in (f"{major}.{minor + 1}.0", f"{major + 1}.0.0"):
        data = {**SamplerConfig().to_dict(), "_gesco_version": newer}
        path = tmp_path / "sampler.json"
        path.write_text(json.dumps(data))
        with pytest.raises(ConfigVersionError, match=rf"{path} was written by gesco {newer}, newer than this gesco"):
            SamplerConfig.load(path)
        with pytest.raises(ValueError, match=newer):
            SamplerConfig.from_dict(data)


@pytest.mark.parametrize("version", ["banana", "", 1, None])
def test_unreadable_version_is_refused(version):
    with pytest.raises(ConfigVersionError, match="is not a version"):
        SamplerConfig.from_dict({"_gesco_version": version})


def test_older_equal_patch_newer_and_absent_versions_load():
    major, minor = _running()
    for version in ("0.0.1", gesco.__version__, f"{major}.{minor}.99", f"{major}.{minor}.0.dev3"):
        assert SamplerConfig.from_dict({"_gesco_version": version, "steps": 7}).steps == 7
    assert SamplerConfig.from_dict({"steps": 7}).steps == 7
