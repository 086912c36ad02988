"""Elimination of failed evolutions (WizardLM, arXiv 2304.12244, section 3.3), each rule a pure function.

An evolved task is eliminated, with the first reason that applies, when it is
- `empty`: nothing came back;
- `template_leak`: it echoes the template ("#Rewritten Test#", "given prompt", the template's own words);
- `sorry`: a short apology instead of a task ("Sorry, I cannot ...", fewer than `sorry_max_words` words);
- `stopwords_only`: only punctuation and stop words;
- `too_short` / `too_long`: outside [min_words, max_words] words;
- `no_information_gain`: the same task as its parent (equal once case and spacing are folded, or
  made only of the parent's words and no longer than it); with `--judge`, also when an LLM judge says
  the two are equal (`judge_equal`).
Failed evolutions are not lost: the parent goes back to the pool for the next round.
"""
from __future__ import annotations

import re

from data_evol.records import normalize

REASONS = ("empty", "template_leak", "sorry", "stopwords_only", "too_short", "too_long", "no_information_gain", "judge_equal")
_WORD = re.compile(r"[A-Za-z0-9_']+")
_SORRY = re.compile(r"\b(sorry|apologi[sz]e|i cannot|i can't|i can not|i am unable|i'm unable|as an ai)\b", re.I)
STOP_WORDS = frozenset("""
a about above after again against all am an and any are as at be because been before being below between both but by
can could did do does doing down during each few for from further had has have having he her here hers herself him
himself his how i if in into is it its itself just me more most my myself no nor not now of off on once only or other
our ours ourselves out over own same she should so some such than that the their theirs them themselves then there
these they this those through to too under until up very was we were what when where which while who whom why will with
would you your yours yourself yourselves ok okay yes please thanks thank
""".split())


def words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def is_sorry(text: str, max_words: int) -> bool:
    """A short apology or refusal: WizardLM's '"sorry" and relatively short (< 80 words)'."""
    return bool(_SORRY.search(text)) and len(words(text)) < max_words


def leaked_phrase(text: str, phrases: tuple[str, ...]) -> str:
    low = text.lower()
    return next((p for p in phrases if p.lower() in low), "")


def no_information_gain(child: str, parent: str) -> bool:
    if normalize(child) == normalize(parent):
        return True
    child_words, parent_words = words(child), words(parent)
    return bool(child_words) and set(child_words) <= set(parent_words) and len(child_words) <= len(parent_words)


def elimination_reason(child: str, parent: str, *, leak_phrases: tuple[str, ...], min_words: int, max_words: int,
                       sorry_max_words: int) -> str:
    """The first rule `child` (an evolution of `parent`) breaks, or "" to keep it."""
    if not child.strip():
        return "empty"
    if leaked_phrase(child, leak_phrases):
        return "template_leak"
    if is_sorry(child, sorry_max_words):
        return "sorry"
    ws = words(child)
    if not [w for w in ws if w not in STOP_WORDS]:
        return "stopwords_only"
    if len(ws) < min_words:
        return "too_short"
    if len(ws) > max_words:
        return "too_long"
    if no_information_gain(child, parent):
        return "no_information_gain"
    return ""


def judge_says_equal(reply: str) -> bool | None:
    """True: "Equal"; False: "Not Equal"; None: neither (the evolution is kept, counted as unclear)."""
    low = reply.strip().lower()
    if re.search(r"\bnot\s+equal\b", low):
        return False
    if re.search(r"\bequal\b", low):
        return True
    return None


def clean_evolution(response: str) -> str:
    """The task text of an evolver's reply: whitespace and wrapping quotes trimmed, nothing rewritten
    (a heading left in is the `template_leak` rule's business, not silently fixed)."""
    text = response.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    return text


__all__ = ["REASONS", "STOP_WORDS", "clean_evolution", "elimination_reason", "is_sorry", "judge_says_equal", "leaked_phrase",
           "no_information_gain", "words"]
