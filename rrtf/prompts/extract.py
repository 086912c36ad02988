"""From a model's response to the code the sandbox runs: stop strings, end markers, code blocks,
and the closing brace of a Java/C++ continuation. Pure text functions, shared by every backend,
the sampler and evaluation."""
from __future__ import annotations

import re

# Stop sequences of base models continuing a Python function (Codex / human-eval).
CONTINUATION_STOP = ["\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#"]
# Text after which a response is over even if the model did not stop: the end-of-text token, or the
# model starting a new turn of the template.
END_MARKERS = ("<|endoftext|>", "\n### Instruction", "\n### Response", "\n###")

_FENCE = re.compile(r"```[ \t]*([\w+#.-]*)[ \t]*\n(.*?)(?:```|\Z)", re.S)
# A line at column 0 that starts Python code: keywords, decorators, comments, calls, assignments.
_PY_CODE_START = re.compile(
    r"^(def |async def |class |import |from \w[\w.]* import |@|#|if __name__|print\(|assert |return |"
    r"for |while |if |try:|with |[A-Za-z_][\w.]*\s*(=|\(|\[|\+=|-=|:))"
)
# A line that reads as English: a capitalised word, then two more words, and none of the characters
# code at column 0 would have ("Solution s = new Solution();" is Java, "Here is the code:" is prose),
# or a heading such as "Explanation:".
_PROSE = re.compile(r"^([A-Z][a-z]*('[a-z]+)?[,!.:]? [A-Za-z`'\"(][^=;{}]*\s\S|[A-Z][a-z]+( [a-z]+)?:\s*$)")
_CLIKE_CODE_START = re.compile(
    r"^(#include|#import|import |package |using |public |private |class |struct |template|static |int |void |//|/\*|"
    r"[A-Za-z_][\w:<>,\s*&]*[\s*&]\w+\s*\()"
)


def trim_at_stop(text: str, stop: list[str] | tuple[str, ...] | None) -> str:
    """Cut `text` at the earliest occurrence of any stop string (the stop string itself is dropped).

    Every backend applies this to its output, because servers and `generate(stop_strings=...)` stop
    *after* emitting the stop string and some servers accept only a few stop strings.
    """
    if not stop:
        return text
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=len(text))
    return text[:cut]


def cut_at_end_markers(response: str, markers: tuple[str, ...] = END_MARKERS) -> str:
    return trim_at_stop(response, markers)


def extract_code(response: str, language: str = "python") -> str:
    """The code in a model response, the way PanGu-Coder2 extracts it before running the tests.

    1. Cut at the end-of-text token or a new template turn.
    2. If there is a fenced ``` block, return the first one (an unclosed fence runs to the end).
    3. Otherwise, drop leading prose lines before the first line that starts code, and drop
       everything from the first column-0 line that reads as prose (trailing explanations).

    This is for answers to instructions (whole programs); the continuation of a code prompt is cut
    by the continuation strategy instead.
    """
    text = cut_at_end_markers(response)
    fenced = _FENCE.search(text)
    if fenced:
        return fenced.group(2).rstrip() + "\n"
    lines = text.split("\n")
    starts = _PY_CODE_START if language == "python" else _CLIKE_CODE_START
    # The first line that starts code; failing that, the first line that is not prose.
    code_lines = [i for i, line in enumerate(lines) if line.strip() and starts.match(line)]
    other_lines = [i for i, line in enumerate(lines) if line.strip() and not _PROSE.match(line)]
    if not code_lines and not other_lines:
        return ""  # nothing but prose
    first = (code_lines or other_lines)[0]
    kept: list[str] = []
    for line in lines[first:]:
        if line[:1] not in ("", " ", "\t") and _PROSE.match(line):
            break
        kept.append(line)
    code = "\n".join(kept).rstrip()
    return code + "\n" if code else ""


def truncate_at_closing_brace(prefix: str, text: str) -> str:
    """Java/C++ continuation: keep the text up to the brace that closes everything the prompt
    opened (the method, and for Java its class); braces in comments and literals do not count."""
    depth = sum((prefix[i] == "{") - (prefix[i] == "}") for i in _code_positions(prefix))
    if depth <= 0:
        return text
    for i in _code_positions(text):
        depth += (text[i] == "{") - (text[i] == "}")
        if depth == 0:
            return text[: i + 1] + "\n"
    return text


def _code_positions(text: str):
    """Indices of the characters of `text` outside string/char literals and comments."""
    i = 0
    while i < len(text):
        j = _skip_literal_or_comment(text, i)
        if j != i:
            i = j
            continue
        yield i
        i += 1


def _skip_literal_or_comment(text: str, i: int) -> int:
    """Index just past the string/char literal or comment starting at text[i], else i."""
    if text[i] in "\"'":
        j = i + 1
        while j < len(text) and text[j] not in (text[i], "\n"):
            j += 2 if text[j] == "\\" else 1
        return min(j + 1, len(text))
    if text.startswith("//", i):
        j = text.find("\n", i)
        return len(text) if j < 0 else j
    if text.startswith("/*", i):
        j = text.find("*/", i + 2)
        return len(text) if j < 0 else j + 2
    return i


__all__ = ["CONTINUATION_STOP", "END_MARKERS", "cut_at_end_markers", "extract_code", "trim_at_stop",
           "truncate_at_closing_brace"]
