"""scripts/stacks_report.py end to end on a tiny run (slow: the full report is its real exercise)."""

from __future__ import annotations

import pytest
from script_loader import load_script


@pytest.mark.slow
def test_quick_report(tmp_path):
    mod = load_script("stacks_report")
    out = tmp_path / "stacks.md"
    assert mod.main(["--quick", "--out", str(out)]) == 0
    text = out.read_text()
    for needle in ("reduction comparison", "tita tree/exposure", "Hand-held stacks",
                   "homography", "Time per frame"):
        assert needle in text, needle
    assert (tmp_path / "stacks" / "handheld_tita_homography.png").is_file()
