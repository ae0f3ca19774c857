"""Whether a training checkpoint can continue under the options of now: what changed since it was written, and
the changes whose saved state cannot carry over (another network, another optimizer type)."""
from __future__ import annotations

from typing import Any, List, Mapping

from .errors import UserError
from .options import format_change, option_changes

# Keys that name where a run starts from: changing them is how one resumes, not a change of the run.
_START_KEYS = ("path.resume_path", "path.pretrain_path", "path.pretrain_path_d")


def check_compatible(saved: Mapping[str, Any], current: Mapping[str, Any]) -> List[str]:
    """The options a checkpoint was written with (``saved``) against ``current`` (both as ``to_dict``): one
    line per changed option; raises :class:`UserError` where the saved state cannot carry over."""
    for key in sorted(k for k in {*saved, *current} if k.startswith("network_")):
        if saved.get(key) != current.get(key):
            raise UserError(f"path.resume_path: the checkpoint was trained with {key} {saved.get(key)}, the "
                            f"options now say {current.get(key)}; resume with the same network, or use "
                            "pretrain_path to start a new run from it")
    saved_train, current_train = saved.get("train") or {}, current.get("train") or {}
    for key in sorted(k for k in current_train if k.startswith("optim_")):
        old_type = (saved_train.get(key) or {}).get("type")
        new_type = (current_train.get(key) or {}).get("type")
        if old_type != new_type:
            raise UserError(f"path.resume_path: the checkpoint's optimizer is {old_type}, the options now "
                            f"say {new_type}; its state cannot carry over. Keep {old_type}, or start a new run "
                            "from the weights with pretrain_path")
    return [f"Option changed since the checkpoint: {format_change(key, old, new)}"
            for key, old, new in option_changes(dict(saved), dict(current)) if key not in _START_KEYS]
