#!/usr/bin/env python
"""A PNG grid of GT crops, the LR inputs the Real-ESRGAN pipeline made from them and their kernels:
``python scripts/show_degradations.py --help``."""
import sys

from framework.cli import run_main
from framework.tools.show_degradations import main

if __name__ == "__main__":
    sys.exit(run_main(main))
