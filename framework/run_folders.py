"""Never overwrite a previous run: a fresh run whose name already has results moves them aside first."""
from __future__ import annotations

import os
import time
from typing import List, Sequence


def _free_name(path: str) -> str:
    candidate, n = path, 1
    while os.path.exists(candidate):
        candidate, n = f"{path}_{n}", n + 1
    return candidate


def archive_previous_run(exp_dir: str, weight_files: Sequence[str]) -> List[str]:
    """Rename ``experiments/<name>`` to ``<name>_archived_<time>`` and move ``weights/<name>_*`` files into
    ``weights/archived_<name>_<time>/``. Returns log lines saying what moved where; deletes nothing."""
    stamp = time.strftime("%Y%m%d_%H%M%S")
    messages = []
    if os.path.exists(exp_dir):
        target = _free_name(f"{exp_dir.rstrip(os.sep)}_archived_{stamp}")
        os.rename(exp_dir, target)
        messages.append(f"Experiment folder {exp_dir} already existed: moved to {target}")
    if weight_files:
        root = os.path.dirname(weight_files[0])
        name = os.path.basename(exp_dir.rstrip(os.sep))
        folder = _free_name(os.path.join(root, f"archived_{name}_{stamp}"))
        os.makedirs(folder)
        for path in weight_files:
            os.rename(path, os.path.join(folder, os.path.basename(path)))
        messages.append(f"{len(weight_files)} earlier checkpoint file(s) of '{name}' moved to {folder}")
    return messages
