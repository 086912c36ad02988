"""Training methods, one registered module each (discovered): `build_method(config)` by `--method NAME`;
the hooks are in rrtf.methods.base, the methods and their budgets in docs/methods.md."""
from rrtf.methods.base import METHODS, TrainingMethod, build_method, training_arguments

__all__ = ["METHODS", "TrainingMethod", "build_method", "training_arguments"]
