import sys

from data_evol.cli import entry

sys.exit(entry())
