#!/usr/bin/env python
"""Train a network: ``python train.py -opt options/train/example.yml`` (see ``--help``)."""
import sys

from framework.cli import run_main, train_main

if __name__ == "__main__":
    sys.exit(run_main(train_main))
