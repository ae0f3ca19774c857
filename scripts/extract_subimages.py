#!/usr/bin/env python
"""Crop large images into overlapping sub-images: ``python scripts/extract_subimages.py --help``."""
import sys

from framework.cli import run_main
from framework.tools.extract_subimages import main

if __name__ == "__main__":
    sys.exit(run_main(main))
