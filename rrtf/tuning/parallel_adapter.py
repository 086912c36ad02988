"""Parallel adapters (He et al. 2022, as Astraios placed them): a bottleneck adapter beside the attention
input projection (`c_attn`), its output added to the layer's. Implementation: rrtf.tuning.bottleneck."""
from __future__ import annotations

from rrtf.tuning.base import TUNING_METHODS
from rrtf.tuning.bottleneck import BottleneckMethod, bottleneck_options

ParallelAdapterOptions = bottleneck_options(
    "parallel_adapter", doc="Parallel adapters beside the attention projection.",
    targets_help="Module names (NAME[:PLACEMENT], placement parallel by default). Default: c_attn (Llama: q_proj k_proj v_proj).")


@TUNING_METHODS.register("parallel_adapter")
class ParallelAdapter(BottleneckMethod):
    options_class = ParallelAdapterOptions
    default_kind = "parallel"
