"""ExportConfig and BenchConfig: one dataclass each for Python, CLI flags and YAML (`--config`),
parsed by TRL's TrlParser like every other stage. Validation happens here, before any model is read."""
from __future__ import annotations

from dataclasses import dataclass, field

from rrtf.options import SandboxOptions

TARGETS = ("ct2", "gptq")


@dataclass
class SourceOptions:
    model: str | None = field(default=None, metadata={
        "help": "Model to export: a checkpoint directory, an rrtf run directory (e.g. outputs/rrtf-default) or a PEFT adapter. "
                "Adapters and every tuning method are merged first (the method's merge hook). Default: the embedded tiny StarCoder."})
    tuning_method: str | None = field(default=None, metadata={
        "help": "Tuning method that saved an adapter (default: from the run's identity, or 'lora' for a LoRA adapter)."})
    base_model: str | None = field(default=None, metadata={"help": "Base model of an adapter (default: the one its adapter_config names)."})


@dataclass
class GPTQOptions:
    bits: int = field(default=4, metadata={"help": "GPTQ bit width: 2, 3, 4 or 8."})
    group_size: int = field(default=128, metadata={"help": "GPTQ group size (input columns per scale; -1: one group per row). "
                                                            "Smaller than the hidden size of tiny models: use 32."})
    desc_act: bool = field(default=False, metadata={"help": "GPTQ act-order (slower kernels; usually off for speed)."})
    calibration_dataset: str = field(default="tiny-tasks:train", metadata={
        "help": "Calibration problems (rrtf.datasets name or JSONL): prompt + reference answer of each."})
    calibration_samples: int = field(default=128, metadata={"help": "Number of calibration problems."})
    gptq_dtype: str = field(default="auto", metadata={
        "help": "dtype of the unquantised parts (auto: GPTQModel's choice, bfloat16 on CPU, float16 on GPU; or float32/float16)."})

    def check_gptq(self) -> None:
        from quantize.gptq import check_gptq_options

        check_gptq_options(self.bits, self.group_size)
        if self.calibration_samples < 1:
            raise ValueError(f"calibration_samples must be >= 1, got {self.calibration_samples}")
        if self.gptq_dtype not in ("auto", "float32", "float16", "bfloat16"):
            raise ValueError(f"gptq_dtype must be auto, float32, float16 or bfloat16, got {self.gptq_dtype!r}")


@dataclass
class ExportConfig(SourceOptions, GPTQOptions):
    to: str = field(default="ct2", metadata={"help": "Export target: ct2 (CTranslate2) or gptq (GPTQModel, GPTQ v1 format)."})
    output_dir: str | None = field(default=None, metadata={"help": "Directory of the export (self-contained: tokenizer included)."})
    quantization: str = field(default="int8", metadata={
        "help": "CTranslate2 weight type: int8, int8_float32, int8_float16, int8_bfloat16, float16, bfloat16, float32."})
    force: bool = field(default=False, metadata={"help": "Overwrite an existing output_dir."})

    def __post_init__(self) -> None:
        if self.to not in TARGETS:
            raise ValueError(f"--to {self.to!r}: choose one of {', '.join(TARGETS)}")
        if not self.output_dir:
            raise ValueError("--output_dir is required: where the export is written")
        if self.to == "ct2":
            from quantize.ct2 import check_quantization

            check_quantization(self.quantization)
        else:
            self.check_gptq()


@dataclass
class BenchConfig(SourceOptions, GPTQOptions, SandboxOptions):
    builds: list[str] | None = field(default=None, metadata={
        "help": "Builds side by side: transformers:DTYPE, ct2:QUANTIZATION[@COMPUTE_TYPE], gptq:BITS. Default on CPU: "
                "transformers:float32 ct2:int8 ct2:int8_float32 gptq:8 gptq:4; on GPU: transformers:float16 ct2:int8_float16 "
                "ct2:float16 gptq:8 gptq:4."})
    out: str = field(default="outputs/quantize/bench.json", metadata={
        "help": "JSON rows; the markdown table (.md) and plot (.png) go next to it, the resumable per-build rows into work_dir."})
    work_dir: str | None = field(default=None, metadata={"help": "Where the builds are exported (default: OUT's stem + '.builds/')."})
    device: str = field(default="auto", metadata={"help": "cpu, cuda or auto."})
    threads: int = field(default=0, metadata={"help": "CPU threads for every build alike (0: all cores)."})
    new_tokens: int = field(default=64, metadata={"help": "Tokens generated per latency run (exactly this many: EOS is ignored)."})
    batch_sizes: list[int] = field(default_factory=lambda: [1, 8], metadata={"help": "Batch sizes of the latency runs."})
    repeats: int = field(default=3, metadata={"help": "Latency runs per batch size (the median is reported)."})
    dataset: str | None = field(default="tiny-tasks:heldout", metadata={
        "help": "pass@1 (greedy) problem set, judged in the sandbox; 'none' to skip. Its prompts are the latency prompts too."})
    max_problems: int | None = field(default=None, metadata={"help": "At most this many pass@1 problems."})
    max_new_tokens: int = field(default=64, metadata={"help": "Token budget of each pass@1 answer."})
    prompt_template: str | None = field(default=None, metadata={"help": "Prompt template (default: the training one)."})
    random_init: str | None = field(default=None, metadata={
        "help": "Benchmark a randomly initialised model of a named shape instead of --model (latency only): "
                "starcoderbase-1b, starcoder-15b, tiny."})
    keep_builds: bool = field(default=True, metadata={
        "help": "Keep each export after it is measured (false: delete it once its row is written -- for models whose "
                "builds do not all fit on the disk at once)."})

    def __post_init__(self) -> None:
        from quantize.builds import parse_build

        self.check_gptq()
        for b in self.builds or []:
            parse_build(b)  # unknown kinds, precisions, bit widths: an error now, not after an hour
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"--device must be cpu, cuda or auto, got {self.device!r}")
        if self.new_tokens < 2 or self.repeats < 1 or not self.batch_sizes or min(self.batch_sizes) < 1:
            raise ValueError("new_tokens must be >= 2, repeats >= 1 and batch_sizes positive")
        if self.dataset and self.dataset.lower() == "none":
            self.dataset = None


__all__ = ["BenchConfig", "ExportConfig", "GPTQOptions", "SourceOptions", "TARGETS"]
