"""Tuning methods, one registered module each (discovered): `build_tuning_method(config)`; the hooks
are in rrtf.tuning.base, the methods and their defaults in docs/tuning.md. A new method is one module
here with one `@TUNING_METHODS.register` class. `python -m rrtf.tuning params` counts what each trains."""
from rrtf.tuning.base import (
    TUNING_METHODS,
    NotMergeable,
    PeftTuningMethod,
    TuningMethod,
    build_tuning_method,
    count_parameters,
    load_saved,
    option_classes,
)

__all__ = ["TUNING_METHODS", "NotMergeable", "PeftTuningMethod", "TuningMethod", "build_tuning_method", "count_parameters",
           "load_saved", "option_classes"]
