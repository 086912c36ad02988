"""Quantised builds of a trained model, and a benchmark that compares them side by side.

    python -m quantize export --model outputs/rrtf-default --to ct2 --quantization int8 --output_dir out/ct2-int8
    python -m quantize export --model outputs/rrtf-default --to gptq --bits 4 --group_size 32 --output_dir out/gptq-4bit
    python -m quantize bench --model outputs/rrtf-default --out outputs/quantize/bench.json

- `quantize.ct2`: CTranslate2 export through its converter API (GPTBigCode multi-head fixed), cached
  conversion for the `ct2` generation backend (`quantize/ct2_backend.py`, a plug-in of rrtf's backend registry;
  `--backend ct2` in training).
- `quantize.gptq`: GPTQ through GPTQModel, calibrated on the project's problems, GPTQ v1 format.
- `quantize.source`: what is exported -- checkpoints, adapters and runs, merged through the tuning hooks.
- `quantize.bench` (+ builds, measure, report, shapes): the Table-4-style benchmark.

docs/quantize.md is the user guide. Importing this package is light (no torch).
"""
