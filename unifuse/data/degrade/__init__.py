"""Seeded degradation toolkit (spec ``mmaif.md`` §1): operators, composition, prompts, training wrapper.

Slot convention: A = visible / over-exposed / far-focused, B = infrared / under-exposed / near-focused.

>>> out = degrade_pair(a, b, task="ivf", seed=123, n=(1, 3))   # a, b: float (3|1, H, W) in [0, 1]
>>> out.a, out.b, out.types, out.params, out.prompt
"""

from .compose import (  # noqa: F401
    COMMON,
    EXCLUSIVE,
    EXTRA,
    N_PROBS,
    TASKS,
    WEATHER,
    DegradeResult,
    DegradeSpec,
    canonical,
    check_types,
    degrade_pair,
    derive_seed,
    draw_types,
    list_types,
    parse_n,
    possible_targets,
    task_pool,
)
from .depth import DepthEstimator, FileDepth, ModelDepth, PseudoDepth  # noqa: F401
from .operators import ORDER, TYPES, DegradationType  # noqa: F401
from .prompts import all_prompts, generic_prompts  # noqa: F401
