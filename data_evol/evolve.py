"""Stage 1: evolve the seeds for R rounds, eliminating failed evolutions after each round.

Each seed is one lineage. In round r the lineage's head (the seed, or its last evolution that
survived elimination) is rewritten by one method drawn by weight from the stream (seed id, r); an
evolution that fails elimination leaves the head as it was, so the parent goes back to the pool
for the next round (WizardLM). Every finished call is stored at once (`evolved.jsonl` keyed by
"<seed id>/r<round>", `eliminated.jsonl` by the same id, the judge's reply included), so a rerun asks
only for what is missing and replays the rest.

A rerun that asks again a call that failed (or a line set aside as unreadable) can change a lineage's head
for the later rounds: a stored evolution counts only if it was made from the head the lineage has now (its
`parent_id`), and an elimination only for the evolution it judged; anything else is asked again, and the
newest record of an id wins. So the rerun ends where a run without the failure would have.
"""
from __future__ import annotations

from pathlib import Path

from tqdm.auto import tqdm

from data_evol.calls import CallStats, run_requests
from data_evol.eliminate import clean_evolution, elimination_reason, judge_says_equal
from data_evol.models import ModelPool, model_name
from data_evol.prompts import Templates
from data_evol.records import Instruction, instruction_key
from rrtf.backends import GenerationRequest, SamplingParams
from sandbox.base.store import JsonlStore


def evolve_stage(seeds: list[Instruction], cfg, templates: Templates, models: ModelPool, out: Path,
                 calls: dict[str, CallStats]) -> list[Instruction]:
    """Seeds (if cfg.keep_seeds) then every surviving evolution, round by round."""
    allowed = tuple(cfg.methods) if cfg.methods else None
    unknown = sorted(set(allowed or ()) - set(templates.methods))
    if unknown:
        raise ValueError(f"methods: unknown {unknown}; the templates ({templates.path}) have {', '.join(templates.methods)}")
    by_id = {s.id: s for s in seeds}
    heads = {s.seed_id: s for s in seeds}
    survivors: list[Instruction] = []
    with JsonlStore(out / "evolved.jsonl", instruction_key, parse=Instruction.from_record) as evolved, \
            JsonlStore(out / "eliminated.jsonl", instruction_key) as elim:
        for r in range(1, cfg.rounds + 1):
            _evolve_round(r, heads, evolved, cfg, templates, models, allowed, calls.setdefault("evolve", CallStats()))
            parents = {seed_id: head.id for seed_id, head in heads.items()}
            children = [Instruction.from_record(rec) for rec in _newest(evolved).values()
                        if rec["round"] == r and rec.get("parent_id") == parents.get(rec["seed_id"])]
            by_id.update((c.id, c) for c in children)
            _eliminate_round(r, children, by_id, elim, cfg, templates, models, calls.setdefault("judge", CallStats()))
            verdicts = _newest(elim)
            for child in sorted(children, key=lambda c: c.seed_id):
                if verdicts.get(child.id, {}).get("kept"):
                    heads[child.seed_id] = child
                    survivors.append(child)
    order = {s.seed_id: i for i, s in enumerate(seeds)}
    survivors.sort(key=lambda c: (c.round, order.get(c.seed_id, 0)))
    return (list(seeds) if cfg.keep_seeds else []) + survivors


def _newest(store: JsonlStore) -> dict[str, dict]:
    """id -> the newest record of that id (a record asked again is appended after the one it replaces)."""
    return {rec["id"]: rec for rec in store.records}


def _evolve_round(r: int, heads: dict[str, Instruction], store: JsonlStore, cfg, templates: Templates, models: ModelPool,
                  allowed: tuple[str, ...] | None, stats: CallStats) -> None:
    todo = []
    stored = _newest(store)
    for seed_id, parent in heads.items():
        cid = f"{seed_id}/r{r}"
        if stored.get(cid, {}).get("parent_id") != parent.id:  # missing, or made from a head the lineage no longer has
            method = templates.choose_method(cfg.seed, seed_id, r, allowed=allowed)
            request = GenerationRequest(messages=templates.evolve_messages(method, parent.instruction), key=f"evolve/{cid}")
            todo.append(((cid, parent, method), request))
    if not todo:
        return
    evolver = model_name(cfg.evolver)
    backend = models.get(cfg.evolver)  # built (the default teacher: trained) before the progress bar starts

    def store_child(key, text: str) -> None:
        cid, parent, method = key
        child = Instruction(id=cid, seed_id=parent.seed_id, instruction=clean_evolution(text), round=r, parent_id=parent.id,
                            method=method, model=evolver, template_version=templates.tag, origin=parent.origin)
        store.write({**child.to_record(), "response": text})

    params = SamplingParams(temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens, seed=cfg.seed)
    with tqdm(total=len(heads), initial=len(heads) - len(todo), desc=f"evolve round {r}", unit="task", disable=not cfg.progress) as bar:
        run_requests(backend, todo, params, store_child, concurrency=cfg.concurrency, batch_size=cfg.batch_size,
                     max_failed=cfg.max_failed_calls, stats=stats, bar=bar)


def _eliminate_round(r: int, children: list[Instruction], by_id: dict[str, Instruction], store: JsonlStore, cfg,
                     templates: Templates, models: ModelPool, stats: CallStats) -> None:
    ask_judge, decided = [], []
    stored = _newest(store)
    for child in children:
        done = stored.get(child.id)
        # judged already: this very evolution (records before parent_id was stored count), and not a failed judge call
        if done and done.get("parent_id", child.parent_id) == child.parent_id and done.get("reason") != "judge_failed":
            continue
        reason = elimination_reason(child.instruction, by_id[child.parent_id].instruction, leak_phrases=templates.leak_phrases,
                                    min_words=cfg.min_words, max_words=cfg.max_words, sorry_max_words=cfg.sorry_max_words)
        if reason or not cfg.judge:
            decided.append({"id": child.id, "round": r, "method": child.method, "kept": not reason, "reason": reason,
                            "parent_id": child.parent_id})
        else:
            messages = templates.judge_messages(by_id[child.parent_id].instruction, child.instruction)
            ask_judge.append((child, GenerationRequest(messages=messages, key=f"judge/{child.id}")))
    store.write_many(decided)  # the rules are one unit of work (no calls): one write, one fsync
    if not ask_judge:
        return

    def store_verdict(child: Instruction, reply: str) -> None:
        equal = judge_says_equal(reply)
        store.write({"id": child.id, "round": r, "method": child.method, "kept": not equal, "parent_id": child.parent_id,
                     "reason": "judge_equal" if equal else "", "judge": reply[:500], "judge_unclear": equal is None})

    params = SamplingParams(temperature=0.0, max_new_tokens=16, seed=cfg.seed)
    with tqdm(total=len(ask_judge), desc=f"judge round {r}", unit="task", disable=not cfg.progress) as bar:
        run_requests(models.get(cfg.judge), ask_judge, params, store_verdict, concurrency=cfg.concurrency,
                     batch_size=cfg.batch_size, max_failed=cfg.max_failed_calls, stats=stats, bar=bar)
    judged = _newest(store)
    for child, _ in ask_judge:  # the judge failed on it (counted in calls): not kept for now, asked again on the next run
        if judged.get(child.id, {}).get("parent_id", child.parent_id) != child.parent_id or child.id not in judged:
            store.write({"id": child.id, "round": r, "method": child.method, "kept": False, "reason": "judge_failed",
                         "parent_id": child.parent_id})


__all__ = ["evolve_stage"]
