"""The command-line entry points: ``train.py`` and ``test.py`` are thin files that call :func:`train_main`
and :func:`test_main` through :func:`run_main` (arguments, options, start-up checks, exit codes).

Exit codes: 0 success, 2 a user error (options, paths, files; one line per problem, no traceback; with
``--verbose`` the exception chain first), 1 an unexpected failure (with its traceback), 130 an aborted Ctrl-C.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import traceback
from typing import Callable, List, Optional, Sequence

from .checks import check_and_build, check_files
from .device import device_named
from .distributed import from_environment, note_clean_exit
from .errors import UserError
from .malloc import tune_malloc
from .options import TrainingOptions, load_options
from .tester import check_test_options, run_test
from .tools.args import add_verbose_argument
from .trainer import Trainer


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("-opt", "--opt", required=True, metavar="FILE", help="options file (YAML; or neosr's TOML)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                        help="override one option (the value is parsed as YAML); repeatable, e.g. "
                             "--set train.total_iter=1000")
    add_verbose_argument(parser)
    return parser


def train_parser() -> argparse.ArgumentParser:
    parser = base_parser("Train a network from a YAML options file.")
    parser.add_argument("--auto-resume", action="store_true",
                        help="resume from this experiment's newest valid checkpoint (path.resume_path: auto)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (log lines only)")
    parser.add_argument("--debug", action="store_true",
                        help="a few iterations (at most 8) of the real configuration (each as long as in the "
                             "real run), log every one, validate and save at 4 and 8, no TensorBoard or W&B, name "
                             "prefixed with debug_ (so real results are untouched)")
    parser.add_argument("--dry-run", action="store_true",
                        help="validate the options, build data, network and optimizer, run one batch through "
                             "the network, report, and write nothing")
    return parser


def run_main(main: Callable[[List[str]], int], argv: Optional[Sequence[str]] = None) -> int:
    """Run ``main`` and map what it raises to the exit codes above. The one place that shortens a user error
    to its line; ``--verbose`` prints the whole chain (``raise ... from``) first."""
    args = list(sys.argv[1:] if argv is None else argv)
    verbose = "--verbose" in args
    # under torchrun each process speaks for itself: name the rank that failed
    rank = f"[rank {os.environ.get('RANK')}] " if int(os.environ.get("WORLD_SIZE", "1") or 1) > 1 else ""
    try:
        return main(args)
    except UserError as exc:
        if verbose:
            traceback.print_exception(exc)
        for line in str(exc).splitlines():
            print(f"{rank}error: {line}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{rank}aborted", file=sys.stderr)
        return 130


def training_options_from_args(args: argparse.Namespace) -> TrainingOptions:
    """train.py's options: ``--auto-resume`` and ``--debug`` applied."""
    overrides = list(args.overrides)
    if args.auto_resume:
        overrides.append("path.resume_path=auto")
    options = load_options(args.opt, overrides, file_checks=check_files)
    return debug_options(options) if args.debug else options


def debug_options(options: TrainingOptions) -> TrainingOptions:
    """``--debug``: the same run in miniature, under another name, so nothing real is touched."""
    train = dataclasses.replace(options.train, total_iter=min(options.train.total_iter, 8))
    logger = dataclasses.replace(options.logger, print_freq=1, save_checkpoint_freq=4, use_tb_logger=False,
                                 wandb=None)
    val = dataclasses.replace(options.val, val_freq=4) if options.val is not None else None
    path = dataclasses.replace(options.path, resume_path="auto" if options.path.resume_path == "auto" else None)
    return dataclasses.replace(options, name=f"debug_{options.name}", train=train, logger=logger, val=val,
                               path=path)




def train_main(argv: List[str]) -> int:
    """``python train.py -opt x.yml``: load the options, check and build everything once, train."""
    args = train_parser().parse_args(argv)
    options = training_options_from_args(args)
    tune_malloc(options.malloc_tuning)  # before the network and the data are built; the trainer logs it
    # Under torchrun: join the process group first (the model wraps its networks in DDP). On an error this
    # process exits without leaving the group: torchrun then stops the others at once.
    dist = from_environment(device_named(options.device).type)
    trainer = Trainer(options, check_and_build(options), show_progress=not args.no_progress, dist=dist)
    if args.dry_run:
        trainer.dry_run(out=print if dist.is_main else lambda *_: None)
    else:
        trainer.run()
    dist.close()
    note_clean_exit(dist)
    return 0


def test_main(argv: List[str]) -> int:
    """``python test.py -opt x.yml``: the metrics of trained weights on every test set."""
    parser = base_parser("Evaluate trained weights on the test sets of a YAML options file.")
    parser.add_argument("--dry-run", action="store_true",
                        help="validate the options, load the weights and data, report, and write nothing")
    args = parser.parse_args(argv)
    options = load_options(args.opt, args.overrides, require_train=False, file_checks=check_files)
    check_test_options(options)
    run_test(options, check_and_build(options), dry_run=args.dry_run)
    return 0
