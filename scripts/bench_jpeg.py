#!/usr/bin/env python
"""JPEG degradation speed, the batched torch codec against Pillow: ``python scripts/bench_jpeg.py --help``."""
import sys

from framework.cli import run_main
from framework.tools.bench_jpeg import main

if __name__ == "__main__":
    sys.exit(run_main(main))
