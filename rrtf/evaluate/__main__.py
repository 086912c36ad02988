import sys

from rrtf.cli import run_cli
from rrtf.evaluate.cli import main

sys.exit(run_cli(main, prog="python -m rrtf.evaluate"))
