"""Network weights from any file a user may point at: a ``.pth`` (``params``, ``params_ema``, a bare state
dict), a ``.safetensors`` or a full ``.pt``; which entry is taken, and the wrapper prefixes removed."""
from __future__ import annotations

import json
import logging
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

import torch

from .errors import CheckpointError
from .format import SAFETENSORS, TRAINING_STATE, check_training_state, describe_keys
from .io import read_safetensors
from .safe_load import safe_load

logger = logging.getLogger(__name__)

_PREFIXES = ("module.", "_orig_mod.")


def strip_prefixes(state: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Remove DataParallel/DDP ``module.`` and torch.compile ``_orig_mod.`` prefixes, however nested."""
    out = {}
    for key, value in state.items():
        changed = True
        while changed:
            changed = False
            for prefix in _PREFIXES:
                if key.startswith(prefix):
                    key, changed = key[len(prefix):], True
        out[key] = value
    return out


def read_weights(path: str, param_key: Union[str, Sequence[str]] = "params", network: str = "net_g",
                 *, option: str = "path.pretrain_path") -> Dict[str, torch.Tensor]:
    """Network weights from a `.pth` (``params``, ``params_ema``, bare state dict), a `.safetensors` or a full
    `.pt`."""
    return select_weights(read_weights_file(path, key=option), path, param_key, network, option=option)[0]


def select_weights(obj: Any, path: str, param_key: Union[str, Sequence[str]] = "params", network: str = "net_g",
                   *, option: str = "path.pretrain_path",
                   key_option: str = "path.param_key") -> Tuple[Dict[str, torch.Tensor], str]:
    """The weights of one network in ``obj`` (what :func:`safe_load` read from ``path``), and which they are:
    the `.pth` entry (``params_ema``, ``params``, ...), ``state dict`` (a bare one), or ``ema`` / ``network``
    (of a `.pt`).

    ``param_key`` is the entry of a `.pth` to use, or entries in order of preference (inference prefers
    ``params_ema``); for a `.pt`, ``params_ema`` first means its EMA weights when it has them. A `.pth` without
    the key but with one entry falls back to that entry. ``option`` and ``key_option`` name the file's and the
    key's option in messages; the log says which weights were taken.
    """
    keys = [param_key] if isinstance(param_key, str) else list(param_key)
    where = f"{option}: {path}"
    if isinstance(obj, dict) and obj.get("kind") == TRAINING_STATE:
        obj = check_training_state(obj, path, key=option)
        model = obj["model"]
        use_ema = keys[0] == "params_ema" and network in model["ema"]
        state = model["ema"][network] if use_ema else model["networks"].get(network)
        entry = "ema" if use_ema else "network"
        if state is None:
            raise CheckpointError(f"{where}: the checkpoint has no network '{network}' (it has: "
                                  f"{describe_keys(model['networks'])})")
        also = ", EMA weights present too" if network in model["ema"] and not use_ema else ""
        logger.info(f"Weights: the {'EMA' if use_ema else 'network'} weights of the full checkpoint {path} "
                    f"(iteration {obj.get('iteration')}{also})")
    elif isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        state, entry = obj, "state dict"
        logger.info(f"Weights: {path} is a bare state dict")
    elif isinstance(obj, dict):
        nested = {k: v for k, v in obj.items() if isinstance(v, dict)}
        chosen = next((k for k in keys if k in nested), None)
        if chosen is not None:
            logger.info(f"Weights: '{chosen}' of {path} (entries: {describe_keys(nested)})")
        elif len(nested) == 1:
            chosen = next(iter(nested))
            logger.info(f"Weights: {path} has no '{keys[0]}', using its only entry '{chosen}'")
        else:
            raise CheckpointError(f"{where}: no '{keys[0]}' entry (entries: {describe_keys(nested)}); set "
                                  f"{key_option} to one of them")
        state, entry = nested[chosen], chosen
    else:
        raise CheckpointError(f"{where}: expected a dict of weights, got {type(obj).__name__}")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{where}: the selected entry is not a state dict of tensors")
    return strip_prefixes(state), entry


def saved_network(path: str, key: str = "") -> Optional[Tuple[Dict[str, Any], Optional[int]]]:
    """The ``network_g`` and scale a ``.safetensors`` written here records (:func:`weights_metadata`), or None
    (another file, or one from elsewhere)."""
    if not path.endswith(SAFETENSORS):
        return None
    metadata = read_safetensors(path, key)[1]
    try:
        network = json.loads(metadata.get("network_g", ""))
    except ValueError:
        return None
    scale = metadata.get("scale", "")
    return (network, int(scale) if scale.isdigit() else None) if isinstance(network, dict) and network else None


def read_weights_file(path: str, key: str = "") -> Any:
    """A weights file by its extension: a ``.safetensors`` as ``{'params': tensors}`` (the layout of our
    ``.pth``), anything else through :func:`safe_load`."""
    if path.endswith(SAFETENSORS):
        return {"params": read_safetensors(path, key)[0]}
    return safe_load(path, key=key)

