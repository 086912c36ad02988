import sys

from quantize.cli import main
from rrtf.cli import run_cli

sys.exit(run_cli(main, prog="python -m quantize"))
