#!/usr/bin/env python
"""Write the synthetic example data set (datasets/example): ``python scripts/make_example_data.py --help``."""
import sys

from framework.cli import run_main
from framework.tools.make_example_data import main

if __name__ == "__main__":
    sys.exit(run_main(main))
