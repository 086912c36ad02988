"""`python -m rrtf.tuning params --model_name_or_path DIR [--json]` (rrtf.tuning.params)."""
from __future__ import annotations

import sys

from rrtf.cli import run_cli

COMMANDS = ("params",)


def main(argv: list[str] | None = None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        raise ValueError(f"usage: python -m rrtf.tuning {{{','.join(COMMANDS)}}} [options]  (--help after the command)")
    from rrtf.tuning.params import main as params_main

    return params_main(argv[1:])


if __name__ == "__main__":
    sys.exit(run_cli(main, prog="python -m rrtf.tuning"))
