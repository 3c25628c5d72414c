"""Tests of the command-line scripts in ``scripts/`` (helpers live in ``script_loader``)."""

from __future__ import annotations

import sys
from pathlib import Path

# helpers are imported by name from this folder (works with --import-mode=importlib too)
sys.path.insert(0, str(Path(__file__).resolve().parent))
