#!/usr/bin/env python
"""Inspect, verify, export and compare checkpoints: ``python scripts/checkpoint.py --help``."""
import sys

from framework.cli import run_main
from framework.tools.checkpoint_tool import main

if __name__ == "__main__":
    sys.exit(run_main(main))
