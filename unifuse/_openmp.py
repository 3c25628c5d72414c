"""OpenMP's idle-thread policy for this process, chosen before torch loads its OpenMP runtime.

After each parallel region GNU / Intel OpenMP keep their idle threads spinning for a while
(``OMP_WAIT_POLICY`` unset), so that the next region starts at once. unifuse also runs work
on threads of its own (:mod:`unifuse.parallel`: blockwise inference, the metric suite, the
C++ attention kernel's ranges); on a machine with few cores those threads then wait for a
core that a spinning OpenMP thread holds. ``OMP_WAIT_POLICY=PASSIVE`` makes idle OpenMP
threads sleep instead. On the 2-core AVX2 EPYC measured (BENCHMARKS.md, session 12) a TITA
training step at two threads took 3.5–6 % less wall time and 16–17 % less CPU time with it
(two A/Bs of 3 alternating rounds); TITA inference and the metric suite were within noise.

The policy is read once, when the OpenMP runtime loads (with torch), so it is set only when
``import unifuse`` comes first (always for the ``unifuse`` command) and only when neither
``OMP_WAIT_POLICY`` nor ``GOMP_SPINCOUNT`` / ``KMP_BLOCKTIME`` is set already: an explicit
setting wins (``GOMP_SPINCOUNT=300000`` is GNU OpenMP's default behaviour).
"""

from __future__ import annotations

import os
import sys

_KEYS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")


def prefer_passive_openmp_threads() -> bool:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` if torch is not loaded yet and no wait setting is given;
    returns whether it was set."""
    if "torch" in sys.modules or any(k in os.environ for k in _KEYS):
        return False
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return True
