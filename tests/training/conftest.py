"""Fixtures for trainer tests (helpers live in ``training_helpers``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# helpers are imported by name from this folder (works with --import-mode=importlib too)
sys.path.insert(0, str(Path(__file__).resolve().parent))

from training_helpers import write_pairs  # noqa: E402


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """Three task folders of six 24x24 gray pairs (IVF vi/ir, MFF a/b, MEF over/under)."""
    return write_pairs(tmp_path_factory.mktemp("pairs"))
