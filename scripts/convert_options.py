#!/usr/bin/env python
"""Convert a BasicSR, Real-ESRGAN, traiNNer-redux or neosr option file:
``python scripts/convert_options.py in.yml -o out.yml``."""
import sys

from framework.cli import run_main
from framework.tools.convert_options import main

if __name__ == "__main__":
    sys.exit(run_main(main))
