"""Shared fixtures. Tests needing ``../shared`` skip with a clear reason when it is absent."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("UNIFUSE_SHARED", REPO.parent / "shared"))

torch.set_num_threads(int(os.environ.get("UNIFUSE_TEST_THREADS", min(2, torch.get_num_threads()))))

# tests run in importlib mode (test files in different folders may share a name); helper
# modules that live beside the tests (e.g. tests/losses/_loss_refs.py) are made importable
for _sub in sorted((REPO / "tests").iterdir()):
    if _sub.is_dir() and not _sub.name.startswith((".", "_")) and str(_sub) not in sys.path:
        sys.path.append(str(_sub))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"shared data folder not found at {SHARED} (set UNIFUSE_SHARED)")
    return SHARED


@pytest.fixture(scope="session")
def reference_dir(shared_dir: Path) -> Path:
    d = shared_dir / "reference"
    if not d.is_dir():
        pytest.skip(f"no reference folder at {d}")
    return d


@pytest.fixture(scope="session")
def data_dir(shared_dir: Path) -> Path:
    d = shared_dir / "data"
    if not d.is_dir():
        pytest.skip(f"no data folder at {d}")
    return d
