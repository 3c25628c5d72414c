"""unifuse.allocator: freed memory stays in the process (no page faults when it is reused)."""

from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest

_CHILD = r"""
import json, resource, sys, torch
from unifuse.allocator import retain_freed_memory
on = retain_freed_memory() if sys.argv[1] == "1" else False
faults = []
for _ in range(6):
    r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    ts = [torch.ones(2**18) for _ in range(40)]  # 40 MiB in 1 MiB tensors, written, then all freed
    del ts
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0)
print(json.dumps({"on": on, "again": retain_freed_memory() if on else None, "faults": faults}))
"""


def _run(flag: str) -> dict:
    out = subprocess.run([sys.executable, "-c", _CHILD, flag], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_freed_memory_is_reused_without_page_faults():
    default, kept = _run("0"), _run("1")
    assert kept["on"] and kept["again"]  # applied, and a second call reports the same
    # 40 MiB = 10240 pages. glibc's defaults may or may not hand the freed memory back to the
    # kernel (its thresholds adapt to the history of the process: measured 0-10k faults per
    # round), so only the retained case is asserted: from the third round on the freed pages
    # are reused, and never more pages are mapped than with the defaults.
    assert max(kept["faults"][2:]) < 500, kept
    assert sum(kept["faults"][1:]) <= sum(default["faults"][1:]) + 2000, (kept, default)
