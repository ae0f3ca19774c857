#!/usr/bin/env python
"""Pack image folders into LMDB (BasicSR layout): ``python scripts/create_lmdb.py --help``."""
import sys

from framework.cli import run_main
from framework.tools.create_lmdb import main

if __name__ == "__main__":
    sys.exit(run_main(main))
