#!/usr/bin/env python
"""Start-up and resume latency of train.py, fresh and resumed: ``python scripts/bench_startup.py --help``."""
import sys

from framework.cli import run_main
from framework.tools.bench_startup import main

if __name__ == "__main__":
    sys.exit(run_main(main))
