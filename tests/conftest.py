"""Shared fixtures: the official reference tensors (in ../shared/reference beside the clone) and seeds."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

REFERENCE_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "reference"


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    if not (REFERENCE_DIR / "README.md").is_file():
        pytest.skip(f"official reference tensors not found at {REFERENCE_DIR} (shared/ must sit beside the repo)")
    return REFERENCE_DIR


@pytest.fixture(scope="session")
def official_sampling(reference_dir: Path) -> dict:
    return torch.load(reference_dir / "official-tiny-cityscapes-sampling.pt", weights_only=True)


@pytest.fixture
def generator() -> torch.Generator:
    return torch.Generator().manual_seed(20261125)


@pytest.fixture
def one_torch_thread():
    """Run a test on one intra-op thread, then restore the setting."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
