"""Training: resumable, data-parallel multi-task training with plug-in recipes (:mod:`.objectives`:
TITA with FAMO and EMA (default), TC-MoA, TC-MoA stage-0 MAE pretraining).

Quick use::

    from unifuse.training import load_config, Trainer
    cfg = load_config("configs/tita_smoke.yaml", {"iterations": 4})
    Trainer(cfg, "runs/smoke").fit()          # or: unifuse train configs/tita_smoke.yaml --out runs/smoke

Modules: :mod:`.config` (typed YAML recipes), :mod:`.trainer` (the loop), :mod:`.objectives`
(what one iteration does, per model), :mod:`.schedule` (learning-rate schedules), :mod:`.checkpoint`
(atomic safetensors + JSON), :mod:`.distributed` (torchrun / DDP helpers), :mod:`.ema`,
:mod:`.weighting` / :mod:`.famo` (task weighting), :mod:`.diagnostics` (gradient conflicts),
:mod:`.logging` (CSV / TensorBoard), :mod:`.plot` (PIL figures).
"""

from __future__ import annotations

from .config import TrainConfig, load_config  # noqa: F401
from .ema import ModelEMA  # noqa: F401
from .trainer import Trainer, train  # noqa: F401
from .weighting import create_weighting, list_weightings  # noqa: F401

__all__ = ["TrainConfig", "load_config", "ModelEMA", "Trainer", "train", "create_weighting", "list_weightings"]
