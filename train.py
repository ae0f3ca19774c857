#!/usr/bin/env python
"""Train a network: ``python train.py -opt options/train/example.yml``."""
import sys
from typing import List

from framework.cli import options_from_args, run_main, train_parser


def main(argv: List[str]) -> int:
    args = train_parser().parse_args(argv)
    options = options_from_args(args, require_train=True)
    from framework.trainer import Trainer  # heavy imports only once the options are known to be good
    trainer = Trainer(options, show_progress=not args.no_progress)
    if args.dry_run:
        trainer.dry_run()
    else:
        trainer.run()
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
