"""Atomic writes: a reader never sees a half-written checkpoint, image, report or folder of outputs.

- :func:`atomic_path`, :func:`atomic_write_text`, :func:`atomic_save`: one file, renamed into place.
- :func:`write_json`: strict JSON (no NaN, no Infinity), atomically; a non-finite value is named by its key path.
- :func:`output_folder`: a command's whole set of outputs, built aside and moved into place at the end.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file


class NonFiniteValueError(ValueError):
    """A value bound for a JSON file is NaN or infinite; strict JSON has neither."""


class OutputPathError(ValueError):
    """An output path that cannot take what a command writes, e.g. an existing file where a folder goes."""


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        try:
            yield tmp_path
        except OSError as err:
            # a full disk reports no file name; name the file being written
            if err.filename is None and err.errno is not None:
                raise OSError(err.errno, f"{err.strerror} (writing {path})", str(path)) from err
            raise
        # mkstemp makes the file private (0600); give the result the permissions a plain open() would
        os.chmod(tmp_path, 0o666 & ~_current_umask())
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def atomic_save(path: str | Path, writer: Callable[[Path], None]) -> None:
    """Run ``writer(tmp_path)`` and move the result onto ``path`` atomically."""
    with atomic_path(path) as tmp:
        writer(tmp)


def first_non_finite(data: Any, where: str = "") -> tuple[str, float] | None:
    """The key path (e.g. ``"cells[2].miou"``) and value of the first NaN or infinite float in ``data``, or None."""
    if isinstance(data, float) and not math.isfinite(data):
        return where or "the value", data
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, (list, tuple)) else ()
    for key, value in items:
        inner = f"{where}.{key}".lstrip(".") if isinstance(key, str) else f"{where}[{key}]"
        found = first_non_finite(value, inner)
        if found is not None:
            return found
    return None


def write_json(path: str | Path, data: Any, *, indent: int | None = 2) -> Path:
    """Write ``data`` as strict JSON (RFC 8259: no NaN, no Infinity), atomically.

    Raises:
        NonFiniteValueError: a float in ``data`` is NaN or infinite; the message names its key path and the file,
            and nothing is written.
    """
    path = Path(path)
    found = first_non_finite(data)
    if found is not None:
        key, value = found
        raise NonFiniteValueError(
            f"{key} is {value} and would be written to {path}; strict JSON has no NaN or Infinity, "
            "so an upstream result is broken (look for a NaN input or a diverged model)"
        )
    atomic_write_text(path, json.dumps(data, indent=indent, allow_nan=False) + "\n")
    return path


_STAGING = ".partial-"


def _staging_prefix(path: Path) -> str:
    return f".{path.name}{_STAGING}"


def _remove_stale_staging(path: Path) -> None:
    """Remove the staging folders of earlier runs towards ``path`` whose process is gone (killed, crashed)."""
    prefix = _staging_prefix(path)
    for stale in path.parent.glob(f"{prefix}*"):
        pid = stale.name[len(prefix) :].partition("-")[0]
        if stale.is_dir() and pid.isdigit() and not _process_alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _merge_into(staging: Path, target: Path, last: Sequence[str], replace: Sequence[str]) -> None:
    """Move every file of ``staging`` to the same place under the existing folder ``target``; the names in
    ``last`` (relative paths) are removed from ``target`` first and moved in at the end, so ``target`` never
    shows them beside a partial set. The entries named in ``replace`` are removed next, before any file moves."""
    for name in (*last, *replace):
        _remove(target / name)
    files = sorted(p.relative_to(staging) for p in staging.rglob("*") if not p.is_dir())
    ordered = [f for f in files if str(f) not in last] + [f for f in files if str(f) in last]
    for relative in ordered:
        destination = target / relative
        if destination.is_dir():
            shutil.rmtree(destination)
        destination.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / relative, destination)


def check_output_path(path: str | Path) -> Path:
    """``path`` as a Path, when it can become an output folder: an existing folder, or a new path whose nearest
    existing ancestor is a folder. Commands that work long before writing call it first.

    Raises:
        OutputPathError: ``path`` or one of its ancestors is an existing file.
    """
    path = Path(path)
    for part in (path, *path.parents):
        if part.is_dir():
            break
        if part.exists():
            where = "there" if part == path else f"at {path}, below it"
            raise OutputPathError(f"{part} is an existing file, but an output folder goes {where}; give another path")
    return path


@contextmanager
def output_folder(path: str | Path, *, last: Sequence[str] = (), replace: Sequence[str] = ()) -> Iterator[Path]:
    """Yield a staging folder beside ``path``; when the block succeeds, move what it holds into ``path``.

    A new ``path`` is the staging folder renamed in one step. An existing folder receives the files one by one
    (other files in it stay, so a data set can gain a second split), the names in ``last`` at the end: write
    the file that marks a complete set (``record.json``) among them. ``replace`` names the other files and
    folders of the set: an earlier run's are removed before the new ones move in, so none of them (a plot of a
    metric no longer reported) stays beside the new set. A failed block leaves ``path`` as it was and removes
    its staging folder; one left by a killed run is removed when the next run towards ``path`` starts.

    Raises:
        OutputPathError: ``path`` is an existing file.
        OSError: the parent folder cannot be written (read-only, full); raised here, before any work is done.
    """
    path = check_output_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_staging(path)
        staging = Path(tempfile.mkdtemp(prefix=f"{_staging_prefix(path)}{os.getpid()}-", dir=path.parent))
    except OSError as err:
        # name the output asked for, not the staging folder beside it
        raise OSError(err.errno, f"{err.strerror} (cannot create an output folder there)", str(path)) from err
    try:
        yield staging
        if path.is_dir():
            _merge_into(staging, path, last, replace)
        else:
            # mkdtemp makes the folder private (0700); give it the permissions a plain mkdir would
            os.chmod(staging, 0o777 & ~_current_umask())
            os.replace(staging, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def save_tensors(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    """Save a flat dict of tensors as safetensors, atomically."""
    contiguous = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    atomic_save(path, lambda tmp: save_file(contiguous, str(tmp), metadata=metadata))


def load_tensors(path: str | Path, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Load a safetensors file; a missing, truncated or corrupt file raises ``ValueError``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weights file at {path}")
    try:
        return load_file(str(path), device=str(device))
    except (SafetensorError, OSError, RuntimeError) as err:
        raise ValueError(f"cannot read weights from {path} (truncated or not a safetensors file): {err}") from err
