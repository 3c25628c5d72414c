"""One rank of a data-parallel test run (launched by test_distributed.py like torchrun would).

Usage: python ddp_worker.py DATA_ROOT OUT_DIR ITERATIONS   (RANK, WORLD_SIZE, MASTER_* in the env)
Iteration 2 carries a NaN in one MFF sample held by rank 1: every rank must skip it.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from training_helpers import ddp_config_dict, poison_batches  # noqa: E402  (also registers toy_fuser)

from unifuse.training.config import from_dict  # noqa: E402
from unifuse.training.distributed import init_distributed, shutdown  # noqa: E402
from unifuse.training.trainer import Trainer  # noqa: E402

if __name__ == "__main__":
    data_root, out, iterations = sys.argv[1], sys.argv[2], int(sys.argv[3])
    cfg = from_dict(ddp_config_dict(Path(data_root), iterations))
    ctx = init_distributed("cpu")
    try:
        trainer = Trainer(cfg, out, ctx=ctx)
        poison_batches(trainer, at_step=2, task="MFF", global_index=2)  # rank 1's first sample
        trainer.fit()
    finally:
        shutdown(ctx)
