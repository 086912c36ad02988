"""What decontamination compares: a benchmark task's statement, and words as a person reads them.

A light rewording of a benchmark task keeps its statement and changes the words around it -- a
HumanEval task asked as an instruction loses the signature and the `>>>` examples, an MBPP task loses
"Write a python function to", a LeetCode task its "You are an expert Python programmer" header and its
examples -- and changes word forms and order ("identifies" / "identify", "sorted and rotated" /
"rotated sorted"). So the near check compares statements (`statement`), not whole prompts, over
Snowball-stemmed content words (PyStemmer), with word pairs taken in either order within a window
(`features`): scaffolding no longer dilutes a short task, and a reordering or an inflection no longer
breaks its bigrams. Measured choices (window 2, 3, 4; framing words in or out): docs/data_evol.md.
"""
from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from functools import lru_cache

import Stemmer

from data_evol.eliminate import STOP_WORDS

_WORD = re.compile(r"[a-z0-9]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_ORDINAL = re.compile(r"\b([a-z])-(th|st|nd|rd)\b")  # "n-th" and "nth" are one word
PAIR_WINDOW = 3  # pairs: any two content words within this many consecutive ones, in either order


_stemmer = Stemmer.Stemmer("english")


@lru_cache(maxsize=1 << 16)
def stem(word: str) -> str:
    return _stemmer.stemWord(word)


def prose_words(text: str) -> list[str]:
    """Lower-cased words; snake_case and camelCase split (`below_zero`, `belowZero` and "below zero" match)."""
    text = _CAMEL.sub(" ", text).lower().replace("_", " ")
    return _WORD.findall(_ORDINAL.sub(r"\1\2", text))


def content(words: Sequence[str]) -> list[str]:
    """Stems of the content words (stop words out). Framing words ("write", "function", "python") stay: left
    out as well, short generic tasks in other languages ("Write a Java program to check a palindrome") matched
    benchmark tasks and Code Alpaca 2K's flagged share at the same recall went from 2% to 8%; folded to one word
    each ("create", "implement" -> "write"; "compute", "return" -> "find"), recall at 2% flagged fell (measured)."""
    return [stem(w) for w in words if len(w) > 1 and w not in STOP_WORDS]


def features(words: Sequence[str]) -> dict[str, int]:
    """Content stems, and unordered pairs of content stems within PAIR_WINDOW of each other."""
    c = content(words)
    out: dict[str, int] = defaultdict(int)
    for i, w in enumerate(c):
        out[w] += 1
        for v in c[i + 1: i + PAIR_WINDOW]:
            if v != w:
                out[" ".join(sorted((w, v)))] += 1
    return out


_DOCSTRING = re.compile(r'"""(.*?)"""|\'\'\'(.*?)\'\'\'', re.S)
_BLOCK = re.compile(r"/\*+(.*?)\*/", re.S)
_LINE = re.compile(r"^\s*(?://+|#(?![!\w]))\s?(.*)$", re.M)  # // and # comments, not #include or #!
# A line that starts examples, constraints or a test: it and the lines after it (to a blank line) are no statement.
_EXAMPLE = re.compile(r"\s*((for )?examples?\b|(constraints|input|output|explanation|note)\s*:)|.*(>>>|==>|=>|\bassert\b)", re.I)
_QUESTION = re.compile(r"###\s*Question:\s*(.*?)(?:###|$)", re.S)  # LeetCodeDataset's prompt scaffolding
_EXAMPLES_ON = re.compile(r"\n\s*(Example\s*\d*:|Constraints:)", re.I)


def _drop_examples(text: str) -> str:
    keep, skip = [], False
    for line in text.splitlines():
        line = line.strip().lstrip("*").strip()
        if _EXAMPLE.match(line):
            skip = True
        elif not (skip and line):
            skip = False
            keep.append(line)
    return " ".join(x for x in keep if x)


def statement(prompt: str) -> str:
    """A benchmark prompt's task statement: its docstring or comments (any language), without examples,
    tests and the benchmark's own scaffolding; the prompt itself when it is prose ("" when nothing is left)."""
    q = _QUESTION.search(prompt)
    if q:
        return _drop_examples(_EXAMPLES_ON.split(q.group(1))[0])
    parts = [a or b for a, b in _DOCSTRING.findall(prompt)] + _BLOCK.findall(prompt)
    if not parts and _CODE_LINE.search(prompt):
        parts = ["\n".join(_LINE.findall(prompt))]
    return _drop_examples("\n\n".join(parts) if parts else prompt)


_CODE_LINE = re.compile(r"[;{}()]\s*$|^\s*(def|class|import|from|fn|func|#include|package|public|@\w+)\b", re.M)


__all__ = ["PAIR_WINDOW", "content", "features", "prose_words", "statement", "stem"]
