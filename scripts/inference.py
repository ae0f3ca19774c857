#!/usr/bin/env python
"""Upscale an image or a folder of images with trained or published weights: ``python scripts/inference.py --help``."""
import sys

from framework.cli import run_main
from framework.tools.inference import main

if __name__ == "__main__":
    sys.exit(run_main(main))
