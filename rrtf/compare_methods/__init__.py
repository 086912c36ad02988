"""`python -m rrtf.compare_methods`: every training method (rrtf.methods: RRTF as published, RRTF with
score-gap weights, SFT, RFT, DPO, GRPO, multi-round RRTF) at the same prompts and the same number of generated
samples per prompt, under several conditions (the embedded default; the paper's -- data_evol problems, two
teachers of different quality; no teacher), over seeds; then mean, standard deviation, a paired comparison
against RRTF, wall time, held-out loss against pass@1, a plot (results.json, results.md, methods.png).

Each (method, condition, seed) is one `rrtf.train` run in its own process (OUT/runs/CONDITION/METHOD-seedS),
its record kept in OUT/results.jsonl; a rerun skips finished runs, and an interrupted one resumes through
rrtf.train's own resume. The methods that train on ranked candidates share one sampling per (condition, seed)
(OUT/shared/CONDITION-seedS, the base model's samples judged and ranked once): the same data for each.
"""
