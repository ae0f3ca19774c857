"""Never overwrite a previous run: a fresh run whose name already has results moves them aside first."""
from __future__ import annotations

import logging
import os
import time
from typing import Sequence

logger = logging.getLogger(__name__)


def _free_name(path: str) -> str:
    candidate, n = path, 1
    while os.path.exists(candidate):
        candidate, n = f"{path}_{n}", n + 1
    return candidate


def archive_previous_run(exp_dir: str, weight_files: Sequence[str] = ()) -> None:
    """Rename ``experiments/<name>`` to ``<name>_archived_<time>`` and move ``weights/<name>_*`` files into
    ``weights/archived_<name>_<time>/``; the log says what moved where; nothing is deleted."""
    stamp = time.strftime("%Y%m%d_%H%M%S")
    if os.path.exists(exp_dir):
        target = _free_name(f"{exp_dir.rstrip(os.sep)}_archived_{stamp}")
        os.rename(exp_dir, target)
        logger.info(f"Experiment folder {exp_dir} already existed: moved to {target}")
    if weight_files:
        name = os.path.basename(exp_dir.rstrip(os.sep))
        folder = move_into_archive(weight_files, name, stamp)
        logger.info(f"{len(weight_files)} earlier checkpoint file(s) of '{name}' moved to {folder}")


def move_into_archive(files: Sequence[str], name: str, stamp: str = "") -> str:
    """Move ``files`` (all in one folder) into a new ``archived_<name>_<time>/`` beside them; returns it."""
    root = os.path.dirname(files[0])
    folder = _free_name(os.path.join(root, f"archived_{name}_{stamp or time.strftime('%Y%m%d_%H%M%S')}"))
    os.makedirs(folder)
    for path in files:
        os.rename(path, os.path.join(folder, os.path.basename(path)))
    return folder
