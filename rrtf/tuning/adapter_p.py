"""AdapterP (Pfeiffer et al. 2020, as Astraios placed it): one bottleneck adapter at the output of the
MLP (`mlp.c_proj`). Implementation: rrtf.tuning.bottleneck."""
from __future__ import annotations

from rrtf.tuning.base import TUNING_METHODS
from rrtf.tuning.bottleneck import BottleneckMethod, bottleneck_options

AdapterPOptions = bottleneck_options(
    "adapter_p", doc="AdapterP: one bottleneck adapter at the MLP's output.",
    targets_help="Module names (NAME[:PLACEMENT], placement output by default). Default: mlp.c_proj (Llama: down_proj).")


@TUNING_METHODS.register("adapter_p")
class AdapterP(BottleneckMethod):
    options_class = AdapterPOptions
    default_kind = "output"
