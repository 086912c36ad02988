"""Stage 2: exact duplicates, then near duplicates by MinHash LSH (datasketch).

Texts are compared case- and space-folded (exact) and as sets of word 3-grams (near; texts under
three words use their words). Of a group of duplicates the first in pool order is kept -- seeds
before round 1 before round 2 -- and each removed record names the one it duplicates and the
estimated Jaccard similarity. Pure and deterministic (fixed MinHash seed): the stage is recomputed,
not resumed, because it is seconds of work on 100K texts and makes no calls.
"""
from __future__ import annotations

from collections.abc import Sequence

from data_evol.eliminate import words
from data_evol.records import normalize


def shingles(text: str, n: int = 3) -> set[bytes]:
    ws = words(text)
    if len(ws) < n:
        return {w.encode() for w in ws} or {b""}
    return {" ".join(ws[i: i + n]).encode() for i in range(len(ws) - n + 1)}


def dedupe(items: Sequence[tuple[str, str]], *, threshold: float = 0.8, num_perm: int = 128,
           progress: bool = False) -> tuple[list[str], list[dict]]:
    """(kept ids, removed) for (id, text) items; removed: {id, reason: exact|near, duplicate_of, similarity}."""
    from datasketch import MinHash, MinHashLSH
    from tqdm.auto import tqdm

    removed: list[dict] = []
    first_by_text: dict[str, str] = {}
    unique: list[tuple[str, str]] = []
    for id_, text in items:
        key = normalize(text)
        if key in first_by_text:
            removed.append({"id": id_, "reason": "exact", "duplicate_of": first_by_text[key], "similarity": 1.0})
        else:
            first_by_text[key] = id_
            unique.append((id_, text))
    hashes = MinHash.bulk([sorted(shingles(t)) for _, t in unique], num_perm=num_perm, seed=1)
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    kept: list[str] = []
    sketches = {}
    for (id_, _), m in tqdm(list(zip(unique, hashes)), desc="dedupe", unit="text", disable=not progress):
        best, best_sim = "", 0.0
        for other in lsh.query(m):
            sim = m.jaccard(sketches[other])
            if sim > best_sim:
                best, best_sim = other, sim
        if best and best_sim >= threshold:  # LSH finds candidates; the estimate decides
            removed.append({"id": id_, "reason": "near", "duplicate_of": best, "similarity": round(best_sim, 4)})
            continue
        lsh.insert(id_, m)
        sketches[id_] = m
        kept.append(id_)
    return kept, removed


__all__ = ["dedupe", "shingles"]
