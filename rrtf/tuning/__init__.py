"""Tuning methods, one registered module each (discovered): `build_tuning_method(config)`; the hooks
are in rrtf.tuning.base. A new method is one module here with one `@TUNING_METHODS.register` class."""
from rrtf.tuning.base import TUNING_METHODS, NotMergeable, PeftTuningMethod, TuningMethod, build_tuning_method, option_classes

__all__ = ["TUNING_METHODS", "NotMergeable", "PeftTuningMethod", "TuningMethod", "build_tuning_method", "option_classes"]
