"""Evol-Instruct data job: evolve seed instructions (WizardCoder's code methods, PanGu-Coder2's
framing), eliminate failed evolutions, dedupe (MinHash LSH), decontaminate against every shipped
benchmark, answer with teacher solutions and unit tests, validate them in the sandbox, and write
`sandbox.Problem` records that `python -m rrtf.train --dataset DIR/problems.jsonl` trains on.

    python -m data_evol                         # the embedded default, offline
    python -m data_evol --config evol.yaml
    python -m data_evol decontaminate --input SEEDS --output_dir DIR

Light at import (no torch): models, the sandbox and plotting are imported where they are used.
Docs: docs/data_evol.md.
"""
