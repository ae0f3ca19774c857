"""What the files hold: the full training state of a ``.pt`` (kind, format version, the collected parts), the
check that a loaded one can be resumed from (format 1 upgraded), and the metadata of a ``.safetensors``."""
from __future__ import annotations

import json
import time
from typing import Any, Callable, Dict, Mapping

import torch

from ..version import __version__
from .errors import CheckpointError

# 2: the model state grouped by kind (networks, ema, optimizers, schedulers, scalers); 1 is read and upgraded.
FORMAT_VERSION = 2
TRAINING_STATE = "training_state"
SAFETENSORS = ".safetensors"
# logger.save_checkpoint_format -> the weights files written beside each .pt
WEIGHT_FORMATS = {"pth": (".pth",), "safetensors": (SAFETENSORS,), "both": (".pth", SAFETENSORS)}


def training_state(*, iteration: int, epoch: int, data_position: Dict[str, int], model: Dict[str, Any],
                   best: Dict[str, Any], options: Dict[str, Any], rng: Dict[str, Any]) -> Dict[str, Any]:
    """The full-state ``.pt`` content: the collected parts, plus kind, format and versions.

    Everything is plain Python and tensors, so ``torch.load(weights_only=True)`` reads it.
    """
    return {"kind": TRAINING_STATE, "format_version": FORMAT_VERSION, "framework_version": __version__,
            "torch_version": str(torch.__version__), "iteration": iteration, "epoch": epoch,
            "data_position": data_position, "model": model, "best": best, "options": options, "rng": rng,
            "saved_at": time.strftime("%Y-%m-%d %H:%M:%S")}


def weights_metadata(options: Mapping[str, Any]) -> Dict[str, str]:
    """What a ``.safetensors`` says about its network (strings only): the architecture, scale and the whole
    ``network_g`` (so inference can build it without the option file)."""
    network = options.get("network_g") or {}
    return {"architecture": str(network.get("type", "")), "scale": str(options.get("scale", "")),
            "network_g": json.dumps(network, sort_keys=True)}


def check_training_state(obj: Any, path: str, key: str = "") -> Dict[str, Any]:
    """``obj`` if it is a full training state this trainer can resume from (a format-1 one is upgraded in
    place), else a :class:`CheckpointError` that says what it is instead."""
    where = f"{key}: {path}" if key else path
    if not isinstance(obj, dict) or obj.get("kind") != TRAINING_STATE:
        if isinstance(obj, dict) and ("params" in obj or "params_ema" in obj or is_state_dict(obj)):
            raise CheckpointError(f"{where}: holds weights only (no optimizer, scheduler or iteration), so "
                                  "training cannot resume from it; to start from these weights set "
                                  "path.pretrain_path instead (and leave resume_path empty)")
        raise CheckpointError(f"{where}: not a full training checkpoint written by this trainer "
                              f"(keys: {describe_keys(obj)})")
    version = obj.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise CheckpointError(f"{where}: missing or invalid format_version ({version!r}); not a checkpoint "
                              "written by this trainer")
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{where}: checkpoint format {version} is newer than this trainer reads "
                              f"({FORMAT_VERSION}); update the framework")
    if version == 1 and isinstance(obj.get("model"), dict):
        obj["model"] = upgrade_model_state(obj["model"])
    missing = [name for name, ok in _TRAINING_STATE_SHAPE.items() if not ok(obj)]
    if missing:
        raise CheckpointError(f"{where}: incomplete training checkpoint (missing or invalid: {', '.join(missing)})")
    return obj


def upgrade_model_state(model: Dict[str, Any]) -> Dict[str, Any]:
    """Format 1 (one network: ``net_g``, ``net_g_ema``, ``optimizer``, ``scheduler``) -> the grouped layout."""
    ema = model.get("net_g_ema")
    return {"networks": {"net_g": model.get("net_g")}, "ema": {"net_g": ema} if ema is not None else {},
            "optimizers": {"optim_g": model.get("optimizer")}, "schedulers": {"optim_g": model.get("scheduler")},
            "scalers": {}}


def is_state_dict(value: Any) -> bool:
    """A non-empty dict of name -> tensor."""
    return isinstance(value, dict) and bool(value) and all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                           for k, v in value.items())


def _group(obj: Dict[str, Any], name: str, item_ok: Callable[[Any], bool], non_empty: bool = False) -> bool:
    model = obj.get("model")
    group = model.get(name) if isinstance(model, dict) else None
    return isinstance(group, dict) and (bool(group) or not non_empty) and all(
        isinstance(k, str) and item_ok(v) for k, v in group.items())


# What resuming reads, so a checkpoint that would fail half-way through a resume is rejected up front.
_TRAINING_STATE_SHAPE: Dict[str, Callable[[Dict[str, Any]], bool]] = {
    "iteration": lambda o: isinstance(o.get("iteration"), int),
    "epoch": lambda o: isinstance(o.get("epoch"), int),
    "data_position": lambda o: isinstance(o.get("data_position"), dict)
    and all(isinstance(o["data_position"].get(k), int) for k in ("epoch", "batches_done")),
    "model.networks": lambda o: _group(o, "networks", is_state_dict, non_empty=True),
    "model.ema": lambda o: _group(o, "ema", is_state_dict),
    "model.optimizers": lambda o: _group(o, "optimizers", lambda v: isinstance(v, dict), non_empty=True),
    "model.schedulers": lambda o: _group(o, "schedulers", lambda v: isinstance(v, dict)),
    "model.scalers": lambda o: _group(o, "scalers", lambda v: isinstance(v, dict)),
    "best": lambda o: isinstance(o.get("best"), dict),
    "options": lambda o: isinstance(o.get("options"), dict),
    "rng": lambda o: isinstance(o.get("rng"), dict),
}


def describe_keys(obj: Any, limit: int = 6) -> str:
    """The first ``limit`` keys of a dict for a message (its type name for anything else)."""
    if not isinstance(obj, dict):
        return type(obj).__name__
    return ", ".join(map(str, list(obj)[:limit])) + (", ..." if len(obj) > limit else "")

