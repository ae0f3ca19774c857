#!/usr/bin/env python
"""LR images by MATLAB bicubic imresize: ``python scripts/generate_lr.py --help``."""
import sys

from framework.cli import run_main
from framework.tools.generate_lr import main

if __name__ == "__main__":
    sys.exit(run_main(main))
