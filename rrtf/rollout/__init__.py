"""The one rollout engine every job generates and judges through: a problem as asked (`AskedProblem`)
-> n completions per stage (`generate`: Candidate records, per-sample seeds, resumable) -> the sandbox
(`judge`: Verdict records, keyed by the judged code). The sampler (training), evaluation, data_evol's
answer stage and compare_tuning are stages and scoring around it; a backend plugs in once."""
from rrtf.rollout.asked import AskedProblem, as_asked, ask, dataset_default_strategy, resolve_strategy
from rrtf.rollout.generate import PROMPT_TOO_LONG, RolloutConfig, Stage, candidate_key, generate, stop_for

__all__ = ["PROMPT_TOO_LONG", "AskedProblem", "RolloutConfig", "Stage", "as_asked", "ask", "candidate_key", "dataset_default_strategy", "generate",
           "resolve_strategy", "stop_for"]
