"""OpenMP's idle-thread policy for this process, chosen before torch loads its OpenMP runtime.

After each parallel region GNU OpenMP (the runtime of the PyPI torch wheels on Linux) keeps its
idle threads spinning, by default for 300,000 spins, so that the next region starts at once.
unifuse also runs work on threads of its own (:mod:`unifuse.parallel`: blockwise inference,
the metric suite, the C++ attention kernel's ranges); on a machine with few cores those
threads then wait for a core that a spinning OpenMP thread holds. ``GOMP_SPINCOUNT=10000``
keeps a short spin (back-to-back torch operations still start at once) and then lets the idle
threads sleep. On the 2-core AVX2 EPYC measured (BENCHMARKS.md, session 12), TITA training
step at two threads, alternating processes, medians of 6 steps: wall 10.06 s with the default,
10.10 s with ``OMP_WAIT_POLICY=PASSIVE`` (never spin), 9.62 s with ``GOMP_SPINCOUNT=10000``,
and in a second run 10.60 s passive vs 9.55 s; process CPU time 19.1 / 16.5 / 17.6 s. TITA
inference and the metric suite were within noise with ``PASSIVE``.

The setting is read once, when the OpenMP runtime loads (with torch), so it is made only when
``import unifuse`` comes first (always for the ``unifuse`` command) and only when none of
``OMP_WAIT_POLICY``, ``GOMP_SPINCOUNT``, ``KMP_BLOCKTIME`` is set already: an explicit
setting wins (``GOMP_SPINCOUNT=300000`` restores GNU OpenMP's default).
"""

from __future__ import annotations

import os
import sys

_KEYS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")
#: spins of an idle GNU OpenMP thread before it sleeps
SPIN_COUNT = "10000"


def prefer_short_openmp_spin() -> bool:
    """Set ``GOMP_SPINCOUNT`` to :data:`SPIN_COUNT` if torch is not loaded yet and no wait
    setting is given; returns whether it was set."""
    if "torch" in sys.modules or any(k in os.environ for k in _KEYS):
        return False
    os.environ["GOMP_SPINCOUNT"] = SPIN_COUNT
    return True
