#!/usr/bin/env python
"""What comparison strips and per-image tables add to a validation: ``python scripts/bench_validation.py --help``."""
import sys

from framework.cli import run_main
from framework.tools.bench_validation import main

if __name__ == "__main__":
    sys.exit(run_main(main))
