"""The command-line surface every `python -m ...` entry point shares: a bad input is one clear line
on stderr and exit status 2, not a traceback. `--debug` (or RRTF_DEBUG=1) shows the traceback too;
anything that is not an input error (a bug) keeps its traceback.
"""
from __future__ import annotations

import argparse
import errno
import logging
import os
import re
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rrtf.backends.openai_backend import EndpointError
from sandbox.base.errors import RecordError
from sandbox.base.store import StoreError
from sandbox.isolation import IsolationError

# Messages third-party imports print on every command that say nothing to its user, each matched exactly
# (logger: pattern of the whole message), so a real error from the same library still shows. peft, which
# transformers' Trainer imports, imports torchao: it reports its optional CUDA kernels (.so) that cannot
# load on this machine, and registers enums in a way torch now calls deprecated.
KNOWN_NOISE: dict[str, str] = {
    "torchao": r"Failed to load \S*torchao\S*\.so: .*",
    "torch.utils._pytree": r"<enum '\w+'> is an Enum subclass and is now natively supported by torch\.compile as an opaque "
                           r"value type\. Calling register_constant\(\) on Enum subclasses is deprecated .*",
}
KNOWN_WARNINGS: tuple[tuple[str, type[Warning]], ...] = (
    (r"`is_gradient_checkpointing` is deprecated", FutureWarning),  # a library (not rrtf) asks transformers by the old name
)


class _DropKnownNoise(logging.Filter):
    def __init__(self, pattern: str):
        super().__init__()
        self.pattern = re.compile(pattern, re.DOTALL)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            return not self.pattern.fullmatch(record.getMessage())
        except Exception:  # a record that cannot be formatted is shown as it is
            return True


def quiet_known_noise() -> None:
    """Drop KNOWN_NOISE and KNOWN_WARNINGS (idempotent). Installed when this module is imported, which
    every entry point does before anything heavy, and again by run_cli."""
    for name, pattern in KNOWN_NOISE.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropKnownNoise) for f in logger.filters):
            logger.addFilter(_DropKnownNoise(pattern))
    for message, category in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)


quiet_known_noise()

# What a user can cause and fix: bad records, values, paths, endpoints, a full disk, no isolation.
INPUT_ERRORS: tuple[type[BaseException], ...] = (RecordError, ValueError, FileNotFoundError, NotADirectoryError,
                                                 IsADirectoryError, FileExistsError, PermissionError, ConnectionError, StoreError,
                                                 TimeoutError, IsolationError, EndpointError)


class UsageError(ValueError):
    """A flag argparse refused (wrong type, missing value, bad choice): one line naming the flag."""


def _usage_error(self: argparse.ArgumentParser, message: str):
    raise UsageError(message)


@contextmanager
def one_line_usage_errors() -> Iterator[None]:
    """While a command parses its flags, argparse's error (the whole usage text, then the problem) is
    one line: `prog: error: argument --num_samples: invalid int value: 'abc' (--help lists the options)`."""
    original = argparse.ArgumentParser.error
    argparse.ArgumentParser.error = _usage_error
    try:
        yield
    finally:
        argparse.ArgumentParser.error = original


def config_file_of(args: Sequence[str]) -> str | None:
    """The value of `--config PATH` / `--config=PATH` (TRL's YAML config), if given."""
    for i, arg in enumerate(args):
        if arg == "--config" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--config="):
            return arg.split("=", 1)[1]
    return None


def check_config_file(path: str) -> None:
    """A `--config` file that is not a YAML mapping of option: value is one line naming the file (and
    the line), not a parser's traceback."""
    import yaml

    p = Path(path)
    if p.is_dir():
        raise IsADirectoryError(f"--config {path}: is a directory, not a YAML file")
    if not p.is_file():
        raise FileNotFoundError(f"--config {path}: no such file")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ValueError(f"--config {path}: not UTF-8 text (byte {exc.start})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        at = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else path
        raise ValueError(f"--config {at}: malformed YAML ({problem})") from None
    if data is not None and not isinstance(data, dict):
        raise ValueError(f"--config {path}: expected a mapping of option: value, got {type(data).__name__}")


def check_output_path(path: str | os.PathLike, flag: str, *, directory: bool) -> None:
    """An output path the job could not create, refused before any work: `path` (a directory when
    `directory`, else a file) or one of its parents is an existing file, or a file path is a directory."""
    p = Path(path)
    if directory and p.exists() and not p.is_dir():
        raise NotADirectoryError(f"{flag} {p}: is an existing file, not a directory; choose another {flag}")
    if not directory and p.is_dir():
        raise IsADirectoryError(f"{flag} {p}: is an existing directory, not a file; choose another {flag}")
    for parent in p.parents:
        if parent.exists():
            if not parent.is_dir():
                raise NotADirectoryError(f"{flag} {p}: {parent} is an existing file, not a directory; choose another {flag}")
            break


def run_cli(main: Callable[[list[str]], Any], argv: Sequence[str] | None = None, *, prog: str = "") -> int:
    """Call `main(argv)`; turn input errors into `prog: error: ...` and exit status 2."""
    quiet_known_noise()
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("RRTF_DEBUG") == "1"
    args = [a for a in args if a != "--debug"]
    try:
        config = config_file_of(args)
        if config is not None:
            check_config_file(config)
        with one_line_usage_errors():
            result = main(args)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except (*INPUT_ERRORS, OSError) as exc:
        if isinstance(exc, OSError) and not isinstance(exc, INPUT_ERRORS) and exc.errno != errno.ENOSPC:
            raise  # a full disk is the user's to fix; any other system error is a bug to report with its traceback
        if debug:
            traceback.print_exc()
        message = str(exc).strip() or type(exc).__name__
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC and exc.strerror:
            message = exc.strerror + (f": {exc.filename}" if exc.filename else "")
        hint = " (--help lists the options)" if isinstance(exc, UsageError) else "" if debug else " (--debug shows the traceback)"
        print(f"{prog}: error: {message}{hint}", file=sys.stderr)
        return 2
    return result if isinstance(result, int) else 0


__all__ = ["INPUT_ERRORS", "KNOWN_NOISE", "UsageError", "check_config_file", "check_output_path", "one_line_usage_errors",
           "quiet_known_noise", "run_cli"]
