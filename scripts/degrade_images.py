#!/usr/bin/env python
"""A fixed degraded validation set, each HR image through the Real-ESRGAN pipeline of a training options file:
``python scripts/degrade_images.py --help``."""
import sys

from framework.cli import run_main
from framework.tools.degrade_images import main

if __name__ == "__main__":
    sys.exit(run_main(main))
