"""Fixtures for trainer tests (helpers live in ``training_helpers``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from training_helpers import write_pairs


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """Three task folders of six 24x24 gray pairs (IVF vi/ir, MFF a/b, MEF over/under)."""
    return write_pairs(tmp_path_factory.mktemp("pairs"))
