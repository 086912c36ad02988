"""AdapterH (Houlsby et al. 2019, as Astraios placed it): a bottleneck adapter at the input of the MLP
(`c_fc`) and one at its output (`mlp.c_proj`). Implementation: rrtf.tuning.bottleneck."""
from __future__ import annotations

from rrtf.tuning.base import TUNING_METHODS
from rrtf.tuning.bottleneck import BottleneckMethod, bottleneck_options

AdapterHOptions = bottleneck_options(
    "adapter_h", doc="AdapterH: bottleneck adapters at the MLP's input and output.",
    targets_help="NAME:PLACEMENT entries (placement input, output or parallel). Default: c_fc:input mlp.c_proj:output "
                 "(Llama: gate_proj:input up_proj:input down_proj:output).")


@TUNING_METHODS.register("adapter_h")
class AdapterH(BottleneckMethod):
    options_class = AdapterHOptions
    default_kind = "output"
