"""Frozen dataclass configs that travel with the weights as ``config.json``.

A config folder holds ``config.json`` with the config's class name and the gesco version
beside the fields, so ``from_pretrained(dir)`` needs nothing but the folder.

:meth:`Config.from_dict` checks what it reads against the field annotations, so a wrong value fails
on load, naming ``ClassName.field``, rather than deep inside a model. The annotations it understands are
``int``, ``float`` (an int is accepted), ``str``, ``bool``, ``X | None``, ``tuple[X, ...]``,
``tuple[X, Y]``, ``Literal[...]`` and nested configs.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import types
import typing
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

import gesco
from gesco.io import atomic_write_text

CONFIG_NAME = "config.json"


class ConfigError(ValueError):
    """A config file or dict that cannot be read: unknown or missing fields, wrong class, newer gesco."""


class ConfigTypeError(ConfigError, TypeError):
    """A config value of the wrong type (or outside its ``Literal``); both a ``TypeError`` and a ``ValueError``."""


class ConfigVersionError(ConfigError):
    """A config written by a newer gesco (major.minor) than the one running, or with an unreadable version."""


def _major_minor(version: object) -> tuple[int, int] | None:
    match = re.match(r"(\d+)\.(\d+)", version) if isinstance(version, str) else None
    return (int(match[1]), int(match[2])) if match else None


def _check_version(data: dict[str, Any], where: str) -> None:
    """Refuse a ``_gesco_version`` newer in major.minor than this gesco; accept an older, equal or absent one."""
    if "_gesco_version" not in data:
        return  # hand-written configs need not say
    written = data["_gesco_version"]
    running = _major_minor(gesco.__version__)
    parsed = _major_minor(written)
    if parsed is None:
        raise ConfigVersionError(f"{where}: _gesco_version {written!r} is not a version like '1.2.0'")
    if running is not None and parsed > running:
        raise ConfigVersionError(
            f"{where} was written by gesco {written}, newer than this gesco {gesco.__version__}; "
            "upgrade gesco to read it"
        )


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


class _Mismatch(Exception):
    """Raised by :func:`_convert`; ``reason`` says which part of the value is wrong."""

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason)
        self.reason = reason


def _convert(value: Any, annotation: Any, where: str) -> Any:
    """``value`` as the field wants it (JSON lists -> tuples, int -> float, dicts -> configs), else :class:`_Mismatch`.

    ``where`` ("ClassName.field") prefixes the errors of nested configs.
    """
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        arms = [a for a in args if a is not type(None)]
        if len(arms) == 1:
            return _convert(value, arms[0], where)
        for arm in arms:
            try:
                return _convert(value, arm, where)
            except (_Mismatch, ConfigError):
                continue
        raise _Mismatch()
    if origin is Literal:
        # compare types too: True == 1 and 1 == 1.0, but neither is the literal the field allows
        if not any(type(value) is type(a) and value == a for a in args):
            raise _Mismatch(f"allowed: {', '.join(map(repr, args))}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise _Mismatch()
        if len(args) == 2 and args[1] is Ellipsis:
            item_types = [args[0]] * len(value)
        elif len(value) != len(args):
            raise _Mismatch(f"{len(args)} items wanted, {len(value)} given")
        else:
            item_types = list(args)
        items = []
        for index, (item, item_type) in enumerate(zip(value, item_types, strict=True)):
            try:
                items.append(_convert(item, item_type, f"{where}[{index}]"))
            except _Mismatch as err:
                raise _Mismatch(f"item {index} is {item!r}, not {_type_name(item_type)}") from err
        return tuple(items)
    if isinstance(annotation, type) and issubclass(annotation, Config):
        if isinstance(value, annotation):
            return value
        if not isinstance(value, dict):
            raise _Mismatch(f"a nested {annotation.__name__} is a JSON object")
        return annotation.from_dict(value, source=where)
    if annotation is bool:
        if not isinstance(value, bool):
            raise _Mismatch()
        return value
    if annotation is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise _Mismatch()
        return value
    if annotation is float:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise _Mismatch()
        if math.isnan(value):
            # Python's JSON reader takes a bare NaN; no setting means it
            raise _Mismatch("NaN is no setting")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise _Mismatch()
        return value
    raise TypeError(f"{where}: Config.from_dict cannot read fields annotated {_type_name(annotation)}")


@dataclasses.dataclass(frozen=True)
class Config:
    """Base of every gesco config: a frozen dataclass with a JSON round trip."""

    config_name: ClassVar[str] = CONFIG_NAME

    def to_dict(self) -> dict[str, Any]:
        out = {"_class_name": type(self).__name__, "_gesco_version": gesco.__version__}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            out[field.name] = value.to_dict() if isinstance(value, Config) else value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str | None = None) -> Self:
        """Build the config from ``data`` (e.g. parsed JSON), checking every value against its annotation.

        Args:
            data: field values, plus the optional ``_class_name`` and ``_gesco_version`` that
                :meth:`to_dict` writes; missing fields take their defaults.
            source: where ``data`` came from (a file), named first in every error.

        Raises:
            ConfigTypeError (a TypeError and a ValueError): ``data`` is not a dict, or a value has the wrong type
                or lies outside its ``Literal``.
            ConfigVersionError: ``data`` was written by a newer gesco.
            ConfigError (a ValueError): another class's config, an unknown field, or a missing one without default.
        """
        where = f"{source}: " if source else ""
        if not isinstance(data, dict):
            raise ConfigTypeError(
                f"{where}a {cls.__name__} must be a JSON object (dict) of fields, got {type(data).__name__}"
            )
        _check_version(data, source or cls.__name__)
        name = data.get("_class_name", cls.__name__)
        if name != cls.__name__:
            raise ConfigError(f"{where}config describes a {name!r}, not a {cls.__name__!r}")
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
        unknown = sorted(k for k in data if not k.startswith("_") and k not in fields)
        if unknown:
            raise ConfigError(f"{where}unknown {cls.__name__} fields {unknown}; known fields: {sorted(fields)}")
        missing = sorted(
            k
            for k, f in fields.items()
            if k not in data and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        )
        if missing:
            raise ConfigError(f"{where}{cls.__name__} needs the fields {missing}, which have no default")
        kwargs = {}
        for key in fields.keys() & data.keys():
            value, annotation = data[key], hints[key]
            try:
                kwargs[key] = _convert(value, annotation, f"{where}{cls.__name__}.{key}")
            except _Mismatch as err:
                detail = f" ({err.reason})" if err.reason else ""
                raise ConfigTypeError(
                    f"{where}{cls.__name__}.{key} must be {_type_name(annotation)}, got {value!r}{detail}"
                ) from None
        return cls(**kwargs)

    def replace(self, **changes: Any) -> Self:
        return dataclasses.replace(self, **changes)

    def save(self, path: str | Path) -> Path:
        """Write to ``path`` (a ``.json`` file, or a folder that gets ``config.json``)."""
        path = Path(path)
        if path.suffix != ".json":
            path.mkdir(parents=True, exist_ok=True)
            path = path / self.config_name
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Read from a ``.json`` file or a folder holding ``config.json``.

        Raises:
            FileNotFoundError: no such file.
            ConfigError: not JSON, or as :meth:`from_dict` (e.g. :class:`ConfigTypeError` for a JSON list), naming
                the file.
        """
        path = Path(path)
        if path.is_dir():
            path = path / cls.config_name
        if not path.is_file():
            raise FileNotFoundError(f"no {cls.__name__} config at {path}")
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ConfigError(f"{path} is not valid JSON: {err}") from err
        return cls.from_dict(data, source=str(path))
