#!/usr/bin/env python
"""Convert a BasicSR or Real-ESRGAN option file: ``python scripts/convert_options.py in.yml -o out.yml``."""
import sys

from framework.cli import run_main
from framework.tools.convert_options import main

if __name__ == "__main__":
    sys.exit(run_main(main))
