#!/usr/bin/env python
"""Decoder speed and loader throughput, folders against LMDB: ``python scripts/bench_data.py --help``."""
import sys

from framework.cli import run_main
from framework.tools.bench_data import main

if __name__ == "__main__":
    sys.exit(run_main(main))
