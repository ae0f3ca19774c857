"""Reading a PyTorch file without running its code: ``torch.load(weights_only=True)``, zip checksums checked
first, a refused file's unsafe globals named (a scanner that reads pickle opcodes, executing nothing), and
:func:`verify`, the check of a file written here."""
from __future__ import annotations

import os
import pickle
import pickletools
import re
import warnings
import zipfile
from typing import Any, Dict, List

import torch

from ..errors import first_line
from .errors import CheckpointError
from .format import SAFETENSORS, check_training_state, describe_keys, is_state_dict
from .io import read_safetensors

_SAFE_TORCH = (2, 10)  # the restricted unpickler had RCE flaws before (CVE-2025-32434, CVE-2026-24747)


def _torch_is_safe() -> bool:
    parts = re.findall(r"\d+", torch.__version__)[:2]
    return tuple(int(p) for p in parts) >= _SAFE_TORCH


def safe_load(path: str, *, key: str = "") -> Any:
    """``torch.load(weights_only=True)`` with every failure turned into a one-line error naming the file.

    Never falls back to full unpickling: a file that needs it is refused, and its code never runs.
    """
    where = f"{key}: {path}" if key else path
    if not os.path.exists(path):
        raise CheckpointError(f"{where}: file not found")
    if os.path.isdir(path):
        raise CheckpointError(f"{where}: is a folder, expected a checkpoint file")
    if os.path.getsize(path) == 0:
        raise CheckpointError(f"{where}: file is empty (0 bytes), probably from an interrupted save")
    if zipfile.is_zipfile(path):
        _check_zip(path, where)
    if not _torch_is_safe():
        warnings.warn(f"torch {torch.__version__} < 2.10: its weights_only loader has known code-execution "
                      f"flaws; load {path} only if you trust its source", stacklevel=2)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "Detected pickle protocol 4": the outcome is what counts
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:  # the weights-only unpickler refused something
        unsafe = unsafe_globals(path)
        if unsafe:
            raise CheckpointError(f"{where}: refused: the file holds Python objects other than tensors and "
                                  f"plain data ({', '.join(unsafe[:3])}); it may be malicious and was not "
                                  "unpickled") from exc
        raise CheckpointError(f"{where}: not a readable PyTorch file ({first_line(exc, 200)})") from exc
    except Exception as exc:  # noqa: BLE001 - every reason a file cannot be read is the user's to see
        raise CheckpointError(f"{where}: not a readable PyTorch file ({first_line(exc, 200)})") from exc


def unsafe_globals(path: str) -> List[str]:
    """The globals (``module.name``) a file would make the unpickler import, which a weights-only load refuses.

    torch answers for its zip format; a legacy raw pickle is read opcode by opcode (nothing is executed).
    """
    if zipfile.is_zipfile(path):
        try:
            return list(torch.serialization.get_unsafe_globals_in_checkpoint(path))
        except Exception:  # noqa: BLE001 - a damaged archive: no answer, the caller reports it unreadable
            return []
    found: List[str] = []
    strings: List[str] = []
    try:
        with open(path, "rb") as fh:
            for opcode, arg, _pos in pickletools.genops(fh):
                if opcode.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "STRING", "BINSTRING"):
                    strings.append(str(arg))
                elif opcode.name == "GLOBAL":
                    found.append(str(arg).replace(" ", "."))
                elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                    found.append(f"{strings[-2]}.{strings[-1]}")
    except Exception:  # noqa: BLE001 - not a pickle at all
        return found
    return found


def _check_zip(path: str, where: str) -> None:
    """Torch files are zip archives with a CRC per record: this catches truncation and flipped bytes."""
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        raise CheckpointError(f"{where}: corrupt file ({exc})") from exc
    except Exception as exc:  # zlib/struct errors inside a damaged archive
        raise CheckpointError(f"{where}: corrupt file ({type(exc).__name__}: {exc})") from exc
    if bad is not None:
        raise CheckpointError(f"{where}: corrupt file (checksum mismatch in record '{bad}')")


def verify(path: str) -> Dict[str, Any]:
    """Load and check a file written by us; returns its content or raises :class:`CheckpointError`."""
    if path.endswith(SAFETENSORS):
        return {"params": read_safetensors(path)[0]}  # what read_weights_file returns
    if os.path.isfile(path) and os.path.getsize(path) > 0 and not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path}: corrupt or not a PyTorch checkpoint (no zip archive; truncated?)")
    obj = safe_load(path)
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a dict, got {type(obj).__name__}")
    if path.endswith(".pt"):
        obj = check_training_state(obj, path)
    elif "params" not in obj:
        raise CheckpointError(f"{path}: weights file without a 'params' entry (keys: {describe_keys(obj)})")
    elif not is_state_dict(obj["params"]):
        raise CheckpointError(f"{path}: 'params' is not a state dict of tensors")
    return obj


