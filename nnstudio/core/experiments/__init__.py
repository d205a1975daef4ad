"""Hyperparameter sweeps and k-fold cross-validation on Optuna (Qt-free).

Optuna's storage is the only record of a study: every trial is a normal run (own run folder, run.json,
TensorBoard, best.pt), its params named like the config keys they set.
"""

from nnstudio.core.experiments.space import (
    Param,
    SweepConfig,
    load_sweep,
    parse_sweep,
    trial_config,
)

__all__ = ["Param", "SweepConfig", "load_sweep", "parse_sweep", "trial_config"]
