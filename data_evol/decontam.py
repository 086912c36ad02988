"""Decontamination against every benchmark the project ships (`rrtf.datasets.benchmark_texts()`).

A record is contaminated when one of three checks reaches its threshold against one benchmark task:

- `ngram`: the fraction of a benchmark prompt's word n-grams (n = ngram_size; the whole prompt when
  it is shorter) found in the record's prompt text. Catches verbatim copies, also inside longer text.
- `near`: TF-IDF cosine between the record and a benchmark task's *statement* (its docstring or
  comments without signature, examples and tests; LeetCode's question without its header; MBPP's
  sentence), over Snowball-stemmed content words and unordered word pairs (data_evol/decontam_text.py),
  IDF over the benchmark tasks (so one record's verdict never depends on the other records). The record
  is compared whole and by its own statement. Catches light rewording: word order and forms, a phrase
  reworded, dropped examples, renamed functions, an instruction wrapper (Magicoder issue #40's paraphrases).
- `code_ngram`: the fraction of a benchmark solution's token n-grams (identifiers and numbers,
  n = code_ngram_size) in the record's solution; solutions under code_min_tokens tokens are skipped
  (too generic to mean anything).

Words are lower-cased, snake_case and camelCase split, so `below_zero` and "below zero" match. Thresholds:
docs/data_evol.md (measured recall on planted and hand-written rewordings, false positives on clean seeds).
"""
from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from data_evol.decontam_text import features, prose_words, statement
from sandbox.base.records import Problem

_CODE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+")
PROMPT_FIELDS = ("instruction", "input", "prompt", "text", "problem_description", "question", "query")
SOLUTION_FIELDS = ("output", "response", "canonical_solution", "solution", "code", "completion")


def code_tokens(text: str) -> list[str]:
    return _CODE.findall(text)


def ngrams(tokens: Sequence[str], n: int) -> set[tuple[str, ...]]:
    if len(tokens) < n:
        return {tuple(tokens)} if tokens else set()
    return {tuple(tokens[i: i + n]) for i in range(len(tokens) - n + 1)}


@dataclass(frozen=True)
class Match:
    benchmark: str
    benchmark_task_id: str
    method: str  # "ngram", "near" or "code_ngram"
    score: float


class GramIndex:
    """Texts by their n-grams, for "what share of a known text's n-grams is in this one"."""

    def __init__(self, n: int):
        self.n = n
        self.entries: list[tuple[str, str]] = []  # (benchmark, task_id)
        self.counts: list[int] = []
        self.grams: dict[tuple[str, ...], list[int]] = defaultdict(list)
        self._seen: set[tuple[str, str]] = set()
        self._short: list[tuple[str, ...]] | None = None

    def add(self, tokens: list[str], entry: tuple[str, str]) -> bool:
        key = (entry[0], " ".join(tokens))
        if not tokens or key in self._seen:
            return False
        self._seen.add(key)
        grams = ngrams(tokens, self.n)
        for g in grams:
            self.grams[g].append(len(self.entries))
        self.counts.append(len(grams))
        self.entries.append(entry)
        self._short = None
        return True

    def containment(self, tokens: list[str]) -> tuple[float, int]:
        """(best share, entry index), or (0.0, -1) when nothing is shared."""
        hits: dict[int, int] = defaultdict(int)
        for g in ngrams(tokens, self.n):
            for e in self.grams.get(g, ()):
                hits[e] += 1
        if len(tokens) >= self.n:  # a known text shorter than n is one "gram": found only if present whole
            if self._short is None:
                self._short = [g for g in self.grams if len(g) < self.n]
            text = f" {' '.join(tokens)} "
            for g in self._short:
                if f" {' '.join(g)} " in text:
                    for e in self.grams[g]:
                        hits[e] = max(hits[e], 1)
        best = max(hits, key=lambda e: hits[e] / self.counts[e], default=-1)
        return (hits[best] / self.counts[best], best) if best >= 0 else (0.0, -1)


class BenchmarkIndex:
    """Every benchmark prompt and solution, indexed for the three checks."""

    def __init__(self, problems: Iterable[tuple[str, Problem]], *, ngram_size: int = 8, code_ngram_size: int = 10,
                 code_min_tokens: int = 16):
        import numpy as np
        from scipy import sparse

        self.prompts, self.code = GramIndex(ngram_size), GramIndex(code_ngram_size)
        self.statements: list[tuple[str, str]] = []  # (benchmark, task_id) of each row of the near check
        docs, seen = [], set()
        self.benchmarks: dict[str, int] = defaultdict(int)
        for name, p in problems:
            self.benchmarks[name] += 1
            text = statement(p.prompt)
            for t in (p.prompt, text):  # the statement alone too: a copy inside other text may keep only it
                self.prompts.add(prose_words(t), (name, p.task_id))
            feats = features(prose_words(text))
            key = " ".join(sorted(feats))
            if feats and key not in seen:  # once per task: HumanEval's repeat in HumanEval+ and 6 HumanEvalPack languages (IDF over tasks)
                seen.add(key)
                docs.append(feats)
                self.statements.append((name, p.task_id))
            tokens = code_tokens(p.canonical_solution)
            if len(tokens) >= code_min_tokens:
                self.code.add(tokens, (name, p.task_id))
        df: dict[str, int] = defaultdict(int)
        for d in docs:
            for f in d:
                df[f] += 1
        self.vocab = {f: i for i, f in enumerate(sorted(df))}
        m = len(docs)
        self.idf = np.array([math.log((1 + m) / (1 + df[f])) + 1 for f in sorted(df)], dtype=np.float64)
        self.max_idf = math.log(1 + m) + 1
        rows, cols, vals = [], [], []
        for i, d in enumerate(docs):
            for f, c in d.items():
                rows.append(i)
                cols.append(self.vocab[f])
                vals.append(c * self.idf[self.vocab[f]])
        matrix = sparse.csr_matrix((vals, (rows, cols)), shape=(m, len(self.vocab)))
        norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
        self.matrix = (sparse.diags(1 / np.maximum(norms, 1e-12)) @ matrix).T.tocsr()

    @classmethod
    def from_registry(cls, benchmarks: Sequence[str] | None = None, **kwargs) -> BenchmarkIndex:
        from rrtf.datasets import DATASETS, benchmark_texts

        if benchmarks:
            known = [name for name, spec in DATASETS.items() if spec.benchmark]
            unknown = sorted(set(benchmarks) - set(known))
            if unknown:
                raise ValueError(f"benchmarks: unknown {unknown}; registered benchmarks: {', '.join(known)}")
        wanted = set(benchmarks or ())
        return cls(((n, p) for n, p in benchmark_texts() if not wanted or n in wanted), **kwargs)

    def near_scores(self, texts: Sequence[str], chunk: int = 2048) -> list[tuple[float, int]]:
        """(best TF-IDF cosine, its row in self.statements) for each text, the text taken whole and as its
        statement (a record that is a code prompt is compared by its docstring); in chunks: the block is dense."""
        out: list[tuple[float, int]] = []
        for start in range(0, len(texts), chunk):
            part = texts[start: start + chunk]
            whole, alone = self._near_chunk(part), self._near_chunk([statement(t) for t in part])
            out += [max(a, b) for a, b in zip(whole, alone)]
        return out

    def _near_chunk(self, texts: Sequence[str]) -> list[tuple[float, int]]:
        import numpy as np
        from scipy import sparse

        if not self.vocab:
            return [(0.0, 0)] * len(texts)
        rows, cols, vals, norms = [], [], [], []
        for i, text in enumerate(texts):
            total = 0.0
            for f, c in features(prose_words(text)).items():
                j = self.vocab.get(f)
                w = c * (self.idf[j] if j is not None else self.max_idf)  # an unknown word counts as the rarest known
                total += w * w
                if j is not None:
                    rows.append(i)
                    cols.append(j)
                    vals.append(w)
            norms.append(math.sqrt(total) or 1.0)
        query = sparse.csr_matrix((vals, (rows, cols)), shape=(len(texts), len(self.vocab)))
        sims = (sparse.diags(1 / np.array(norms)) @ query @ self.matrix).toarray()
        best = sims.argmax(axis=1)
        return [(float(sims[i, b]), int(b)) for i, b in enumerate(best)]

    def scores(self, prompt: str, solution: str = "", near: tuple[float, int] | None = None) -> list[Match]:
        """The best match of each check (whatever its score)."""
        out = []
        score, e = self.prompts.containment(prose_words(prompt))
        if e >= 0:
            out.append(Match(*self.prompts.entries[e], "ngram", round(score, 4)))
        if prompt.strip() and self.statements:
            near = near if near is not None else self.near_scores([prompt])[0]
            out.append(Match(*self.statements[near[1]], "near", round(near[0], 4)))
        if solution:
            score, e = self.code.containment(code_tokens(solution))
            if e >= 0:
                out.append(Match(*self.code.entries[e], "code_ngram", round(score, 4)))
        return out


def contamination(matches: Sequence[Match], settings) -> Match | None:
    """The flagged match with the highest score, or None when every check is under its threshold."""
    limit = {"ngram": settings.ngram_threshold, "near": settings.near_threshold, "code_ngram": settings.ngram_threshold}
    flagged = [m for m in matches if m.score >= limit[m.method]]
    return max(flagged, key=lambda m: m.score, default=None)


def record_texts(rec: dict) -> tuple[str, str]:
    """(prompt text, solution text) of any instruction record: the known fields that are strings."""
    prompt = "\n".join(rec[f] for f in PROMPT_FIELDS if isinstance(rec.get(f), str))
    solution = "\n".join(rec[f] for f in SOLUTION_FIELDS if isinstance(rec.get(f), str))
    return prompt, solution


__all__ = ["PROMPT_FIELDS", "SOLUTION_FIELDS", "BenchmarkIndex", "GramIndex", "Match", "code_tokens", "contamination", "ngrams",
           "record_texts"]
