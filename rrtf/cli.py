"""The command-line surface every `python -m ...` entry point shares: a bad input is one clear line
on stderr and exit status 2, not a traceback. `--debug` (or RRTF_DEBUG=1) shows the traceback too;
anything that is not an input error (a bug) keeps its traceback.
"""
from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from rrtf.backends.openai_backend import EndpointError
from sandbox.base.errors import RecordError
from sandbox.base.store import StoreError
from sandbox.isolation import IsolationError

# What a user can cause and fix: bad records, values, paths, endpoints, a full disk, no isolation.
INPUT_ERRORS: tuple[type[BaseException], ...] = (RecordError, ValueError, FileNotFoundError, NotADirectoryError,
                                                 IsADirectoryError, PermissionError, ConnectionError, StoreError, TimeoutError,
                                                 IsolationError, EndpointError)


def run_cli(main: Callable[[list[str]], Any], argv: Sequence[str] | None = None, *, prog: str = "") -> int:
    """Call `main(argv)`; turn input errors into `prog: error: ...` and exit status 2."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("RRTF_DEBUG") == "1"
    args = [a for a in args if a != "--debug"]
    try:
        result = main(args)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except INPUT_ERRORS as exc:
        if debug:
            traceback.print_exc()
        message = str(exc).strip() or type(exc).__name__
        hint = "" if debug else " (--debug shows the traceback)"
        print(f"{prog}: error: {message}{hint}", file=sys.stderr)
        return 2
    return result if isinstance(result, int) else 0


__all__ = ["INPUT_ERRORS", "run_cli"]
