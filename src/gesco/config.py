"""Frozen dataclass configs that travel with the weights as ``config.json``.

A config folder holds ``config.json`` with the config's class name and the gesco version
beside the fields, so ``from_pretrained(dir)`` needs nothing but the folder.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, ClassVar, Self

from gesco.io import atomic_write_text

CONFIG_NAME = "config.json"


def _coerce(value: Any, annotation: Any) -> Any:
    """JSON gives lists where a config wants tuples; turn them back, recursively."""
    origin = typing.get_origin(annotation)
    if origin in (types.UnionType, typing.Union):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return value if value is None or len(args) != 1 else _coerce(value, args[0])
    if origin is tuple and isinstance(value, list):
        args = typing.get_args(annotation)
        inner = args[0] if args else Any
        return tuple(_coerce(v, inner) for v in value)
    if dataclasses.is_dataclass(annotation) and isinstance(value, dict):
        return annotation.from_dict(value)
    return value


@dataclasses.dataclass(frozen=True)
class Config:
    """Base of every gesco config: a frozen dataclass with a JSON round trip."""

    config_name: ClassVar[str] = CONFIG_NAME

    def to_dict(self) -> dict[str, Any]:
        out = {"_class_name": type(self).__name__}
        from gesco import __version__

        out["_gesco_version"] = __version__
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            out[field.name] = value.to_dict() if isinstance(value, Config) else value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        name = data.get("_class_name", cls.__name__)
        if name != cls.__name__:
            raise ValueError(f"config describes a {name!r}, not a {cls.__name__!r}")
        hints = typing.get_type_hints(cls)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(k for k in data if not k.startswith("_") and k not in known)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} fields {unknown}; known fields: {sorted(known)}")
        kwargs = {k: _coerce(v, hints[k]) for k, v in data.items() if k in known}
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
        """Read from a ``.json`` file or a folder holding ``config.json``."""
        path = Path(path)
        if path.is_dir():
            path = path / cls.config_name
        if not path.is_file():
            raise FileNotFoundError(f"no {cls.__name__} config at {path}")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} is not valid JSON: {err}") from err
        return cls.from_dict(data)
