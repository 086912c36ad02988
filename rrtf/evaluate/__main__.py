import sys

from rrtf.cli import run_cli
from rrtf.evaluate.cli import exit_status, main

sys.exit(run_cli(lambda argv: exit_status(main(argv)), prog="python -m rrtf.evaluate"))
