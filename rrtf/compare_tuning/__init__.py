"""`python -m rrtf.compare_tuning`: every tuning method trained on the same data with the same budget,
three seeds each, then a table and plots -- trainable %, final train and held-out loss, held-out pass@1
(mean and spread), step time, peak memory, loss curves -- and the papers' findings checked against it.

On the embedded default (the warm tiny StarCoder, tiny-tasks) it runs on two CPU cores; pointed at real
checkpoints and GPUs (--model_name_or_path, --dataset, --max_steps, ...) it is the Astraios experiment.
Resumable: the shared data is made once (OUT/data), every method x seed runs in its own process and
its record is kept (OUT/results.jsonl); a rerun skips finished runs. docs/tuning.md has the measured table.
"""
