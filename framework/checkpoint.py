"""The checkpoint manager: file names, formats, atomic writes, retention, verification and safe loading.

It knows files and state dicts, not the loop: :class:`CheckpointManager` collects the state from the stateful
parts it tracks (model, loop position, best record, RNG, options), decides at each step what is written
(interval, final, new best, stop request), and how it lands on disk; this module also says what a valid
checkpoint must hold, and reads checkpoints and pretrained weights safely.

Formats:
- ``<name>_iter_<N>.pth`` / ``<name>_best.pth``: exactly ``{'params': state_dict}``, for deployment.
- ``<name>_iter_<N>.safetensors`` / ``<name>_best.safetensors`` (``logger.save_checkpoint_format``): the same
  tensors as the ``.pth``, flat (the layout spandrel and chaiNNer read), with the architecture, scale, the
  ``network_g`` options and the framework version as metadata.
- ``<name>_iter_<N>.pt`` / ``<name>_best.pt``: the full training state, a plain dict marked
  ``kind: 'training_state'`` with a format version.
``.pt`` and ``.pth`` load with ``torch.load(..., weights_only=True)``, ``.safetensors`` with safetensors (no
pickle at all); :func:`read_weights_file` reads any of them.
"""
from __future__ import annotations

import functools
import json
import logging
import os
import pickle
import pickletools
import re
import shutil
import time
import warnings
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from typing import (Any, Callable, Dict, Iterator, List, Mapping, Optional, Protocol, Sequence, Tuple, TypeVar,
                    Union)

import torch

from .checkpoint_async import BackgroundWriter, SnapshotBuffers, snapshot_state, test_pause
from .distributed import DistContext
from .errors import UserError
from .rng import capture_rng
from .version import __version__

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; one run per name is then the user's care
    fcntl = None  # type: ignore[assignment]

# 2: the model state grouped by kind (networks, ema, optimizers, schedulers, scalers); 1 is read and upgraded.
FORMAT_VERSION = 2
TRAINING_STATE = "training_state"
_TMP_MARK = ".tmp."
_SAFE_TORCH = (2, 10)  # the restricted unpickler had RCE flaws before (CVE-2025-32434, CVE-2026-24747)


class CheckpointError(UserError):
    """A checkpoint that cannot be used (missing, corrupt, wrong kind, unsafe); one line, exit code 2."""


class CheckpointWriteError(UserError):
    """A save that failed (disk full, permissions); earlier checkpoints are untouched."""


# ------------------------------------------------------------------------------------------------ format


def training_state(*, iteration: int, epoch: int, data_position: Dict[str, int], model: Dict[str, Any],
                   best: Dict[str, Any], options: Dict[str, Any], rng: Dict[str, Any]) -> Dict[str, Any]:
    """The full-state ``.pt`` content: the collected parts, plus kind, format and versions.

    Everything is plain Python and tensors, so ``torch.load(weights_only=True)`` reads it.
    """
    return {"kind": TRAINING_STATE, "format_version": FORMAT_VERSION, "framework_version": __version__,
            "torch_version": str(torch.__version__), "iteration": iteration, "epoch": epoch,
            "data_position": data_position, "model": model, "best": best, "options": options, "rng": rng,
            "saved_at": time.strftime("%Y-%m-%d %H:%M:%S")}


# ------------------------------------------------------------------------------------------------ writing


def atomic_save(obj: Any, path: str) -> None:
    """Write ``obj`` with torch.save so that ``path`` is either the old file or the complete new one."""
    atomic_save_all([(obj, path)])


def atomic_save_all(items: Sequence[Tuple[Any, str]]) -> None:
    """Write each ``(obj, path)`` so that every path is either its old file or its complete new one, and a
    failed write (a full disk) changes none of them: a ``.pt`` and its ``.pth`` are replaced together.

    Temp files in the same folder, flush + fsync, then ``os.replace`` of each, then fsync of the folder: a kill
    or power loss at any instant leaves loadable files; a failed write removes its temp files and raises.
    """
    _replace_all([(path, functools.partial(_save_temp, obj)) for obj, path in items])


def atomic_copy_all(pairs: Sequence[Tuple[str, str]]) -> None:
    """Each ``(source, path)``: ``path`` becomes the finished file ``source`` (a hard link where the file
    system has them, else a copy), all or none, without serialising the state again."""
    _replace_all([(path, functools.partial(_link_temp, source)) for source, path in pairs])


def _save_temp(obj: Any, tmp: str) -> None:
    with open(tmp, "wb") as fh:
        torch.save(obj, fh)
        fh.flush()
        os.fsync(fh.fileno())


SAFETENSORS = ".safetensors"
WEIGHT_FORMATS = {"pth": (".pth",), "safetensors": (SAFETENSORS,), "both": (".pth", SAFETENSORS)}


def weights_writer(path: str, params: Mapping[str, torch.Tensor],
                   metadata: Mapping[str, str]) -> Callable[[str], None]:
    """The temp-file writer of a weights file, by its extension: ``{'params': ...}`` in a ``.pth``, or the
    flat tensors with ``metadata`` in a ``.safetensors``."""
    if path.endswith(SAFETENSORS):
        return functools.partial(_save_safetensors_temp, dict(params), dict(metadata))
    return functools.partial(_save_temp, {"params": dict(params)})


def atomic_save_weights(path: str, params: Mapping[str, torch.Tensor], metadata: Mapping[str, str]) -> None:
    """One weights file (``.pth`` or ``.safetensors`` by its extension), written atomically."""
    _replace_all([(path, weights_writer(path, params, metadata))])


def _save_safetensors_temp(params: Dict[str, torch.Tensor], metadata: Dict[str, str], tmp: str) -> None:
    from safetensors.torch import save

    tensors, seen = {}, set()
    for key, value in params.items():  # safetensors refuses tensors that share memory (tied weights): copies
        value = value.detach().contiguous()
        pointer = (value.untyped_storage().data_ptr(), value.storage_offset())
        tensors[key] = value.clone() if pointer in seen and value.numel() else value
        seen.add(pointer)
    data = save(tensors, metadata={"format": "pt", "framework_version": __version__, **metadata})
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def weights_metadata(options: Mapping[str, Any]) -> Dict[str, str]:
    """What a ``.safetensors`` says about its network (strings only): the architecture, scale and the whole
    ``network_g`` (so inference can build it without the option file)."""
    network = options.get("network_g") or {}
    return {"architecture": str(network.get("type", "")), "scale": str(options.get("scale", "")),
            "network_g": json.dumps(network, sort_keys=True)}


def read_safetensors(path: str, key: str = "") -> Tuple[Dict[str, torch.Tensor], Dict[str, str]]:
    """The tensors and metadata of a ``.safetensors``; a missing, truncated or damaged file is one line."""
    where = f"{key}: {path}" if key else path
    if not os.path.isfile(path):
        raise CheckpointError(f"{where}: file not found" if not os.path.exists(path) else
                              f"{where}: is a folder, expected a .safetensors file")
    from safetensors import safe_open

    try:
        with safe_open(path, framework="pt", device="cpu") as fh:
            metadata = dict(fh.metadata() or {})
            tensors = {name: fh.get_tensor(name) for name in fh.keys()}
    except Exception as exc:  # noqa: BLE001 - safetensors' errors are Rust ones; every reason is the user's
        raise CheckpointError(f"{where}: corrupt or truncated .safetensors file ({_first_line(exc)})") from exc
    if not tensors:
        raise CheckpointError(f"{where}: the .safetensors file holds no tensors")
    return tensors, metadata


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


def _link_temp(source: str, tmp: str) -> None:
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copyfile(source, tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())


def _replace_all(targets: Sequence[Tuple[str, Callable[[str], None]]]) -> None:
    """Make every temp file first; only when all exist, rename each over its path."""
    temps: List[str] = []
    path = ""
    try:
        for path, make_temp in targets:
            folder = os.path.dirname(os.path.abspath(path))
            temps.append(os.path.join(folder, f".{os.path.basename(path)}{_TMP_MARK}{os.getpid()}"))
            make_temp(temps[-1])
        test_pause()
        for (path, _make), tmp in zip(targets, temps, strict=True):
            os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:  # torch's zip writer reports a full disk as RuntimeError
        for tmp in temps:
            _remove_quietly(tmp)
        folder = os.path.dirname(os.path.abspath(path))
        free = shutil.disk_usage(folder).free if os.path.isdir(folder) else 0
        errno_ = getattr(exc, "errno", None)
        reason = os.strerror(errno_) if errno_ else str(exc).strip().splitlines()[0]
        raise CheckpointWriteError(f"{path}: checkpoint not written: {reason} ({free / 2**20:.1f} MiB free "
                                   f"in {folder}); earlier checkpoints are intact") from exc
    except BaseException:
        for tmp in temps:
            _remove_quietly(tmp)
        raise
    for folder in {os.path.dirname(os.path.abspath(path)) for path, _make in targets}:
        fsync_dir(folder)


def fsync_dir(folder: str) -> None:
    """Make a rename durable (a no-op where directories cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


# ------------------------------------------------------------------------------------------------ reading


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
        raise CheckpointError(f"{where}: not a readable PyTorch file ({_first_line(exc)})") from exc
    except Exception as exc:  # noqa: BLE001 - every reason a file cannot be read is the user's to see
        raise CheckpointError(f"{where}: not a readable PyTorch file ({_first_line(exc)})") from exc


def _first_line(exc: BaseException) -> str:
    message = str(exc).strip()
    return message.splitlines()[0][:200] if message else type(exc).__name__


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
        return read_weights_file(path)
    if os.path.isfile(path) and os.path.getsize(path) > 0 and not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path}: corrupt or not a PyTorch checkpoint (no zip archive; truncated?)")
    obj = safe_load(path)
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a dict, got {type(obj).__name__}")
    if path.endswith(".pt"):
        obj = check_training_state(obj, path)
    elif "params" not in obj:
        raise CheckpointError(f"{path}: weights file without a 'params' entry (keys: {_keys(obj)})")
    elif not is_state_dict(obj["params"]):
        raise CheckpointError(f"{path}: 'params' is not a state dict of tensors")
    return obj


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
                              f"(keys: {_keys(obj)})")
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


def _keys(obj: Any) -> str:
    if not isinstance(obj, dict):
        return type(obj).__name__
    keys = list(obj)[:6]
    return ", ".join(map(str, keys)) + (", ..." if len(obj) > 6 else "")


# ------------------------------------------------------------------------------------------ pretrained weights

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
                                  f"{_keys(model['networks'])})")
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
            logger.info(f"Weights: '{chosen}' of {path} (entries: {_keys(nested)})")
        elif len(nested) == 1:
            chosen = next(iter(nested))
            logger.info(f"Weights: {path} has no '{keys[0]}', using its only entry '{chosen}'")
        else:
            raise CheckpointError(f"{where}: no '{keys[0]}' entry (entries: {_keys(nested)}); set "
                                  f"{key_option} to one of them")
        state, entry = nested[chosen], chosen
    else:
        raise CheckpointError(f"{where}: expected a dict of weights, got {type(obj).__name__}")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{where}: the selected entry is not a state dict of tensors")
    return strip_prefixes(state), entry


# ------------------------------------------------------------------------------------------------ manager


class Stateful(Protocol):
    def state_dict(self) -> Dict[str, Any]: ...


class DeployableModel(Stateful, Protocol):
    def deploy_state_dict(self) -> Dict[str, torch.Tensor]: ...


@dataclass(frozen=True)
class Saved:
    """What one :meth:`CheckpointManager.after_step` call wrote: ``(pt, weights files...)``, or None."""

    interval: Optional[Tuple[str, ...]] = None  # the .pt, then its weights files
    best: Optional[Tuple[str, ...]] = None


class CheckpointManager:
    """Names, writes, finds, prunes and loads the checkpoints of one experiment in ``weights_root``, and
    decides when to write them: every ``save_freq`` iterations, at the end, on a new best, on a stop request.

    Under torchrun every rank calls the save policy at the same steps (it collects each rank's RNG state);
    rank 0 alone writes, and the others wait until the files are in place.

    With ``async_save`` a save point only snapshots the state (:mod:`framework.checkpoint_async`) and a
    background thread writes it with the same :meth:`_write_step` a synchronous save runs. One save at a time:
    the next save point (and :meth:`finish`) waits for the one in flight, then every rank passes a barrier, so
    "the previous save is on disk" holds on all ranks from there on, as after a synchronous save. A failed
    background write is raised on the training thread at the next step (:meth:`check`)."""

    def __init__(self, weights_root: str, name: str, keep_last: Optional[int] = None,
                 save_freq: Optional[int] = None, dist: Optional[DistContext] = None,
                 async_save: bool = False, weights_format: str = "pth",
                 metadata: Optional[Mapping[str, str]] = None) -> None:
        self.root = weights_root
        self.weight_exts = WEIGHT_FORMATS[weights_format]
        self.metadata = dict(metadata or {})
        self.name = name
        self.keep_last = keep_last
        self.save_freq = save_freq
        self.dist = dist or DistContext()
        self.async_save = async_save
        self.last_saved = 0
        self._parts: Optional[Dict[str, Any]] = None
        self._writer = BackgroundWriter()
        self._buffers = SnapshotBuffers()

    # names
    def path(self, tag: str, ext: str) -> str:
        return os.path.join(self.root, f"{self.name}_{tag}.{ext}")

    def iter_paths(self, iteration: int) -> Tuple[str, ...]:
        """The ``.pt`` and the weights files (``logger.save_checkpoint_format``) of ``iteration``."""
        return self._paths(f"iter_{iteration}")

    def best_paths(self) -> Tuple[str, ...]:
        return self._paths("best")

    def _paths(self, tag: str) -> Tuple[str, ...]:
        return (self.path(tag, "pt"), *(self.path(tag, ext[1:]) for ext in self.weight_exts))

    @staticmethod
    def companions(pt: str) -> List[str]:
        """The files of one checkpoint: its ``.pt`` and the weights files of every format (a run may have
        changed the format)."""
        stem = pt[:-len(".pt")]
        return [pt, stem + ".pth", stem + SAFETENSORS]

    def existing(self) -> List[str]:
        """This experiment's files (for archiving them before a fresh run reuses the name)."""
        if not os.path.isdir(self.root):
            return []
        pattern = re.compile(rf"^{re.escape(self.name)}_(iter_\d+|best)\.(pt|pth|safetensors)$")
        return sorted(os.path.join(self.root, f) for f in os.listdir(self.root) if pattern.match(f))

    def interval_checkpoints(self) -> List[Tuple[int, str]]:
        """``[(iteration, path)]`` of full interval checkpoints, newest first."""
        if not os.path.isdir(self.root):
            return []
        pattern = re.compile(rf"^{re.escape(self.name)}_iter_(\d+)\.pt$")
        found = [(int(m.group(1)), os.path.join(self.root, f))
                 for f in os.listdir(self.root) if (m := pattern.match(f))]
        return sorted(found, reverse=True)

    # housekeeping
    def clean_orphans(self) -> List[str]:
        """Delete temp files of interrupted saves of this experiment (never anything else)."""
        if not os.path.isdir(self.root):
            return []
        kinds = "(pt|pth|safetensors)"
        pattern = re.compile(rf"^\.{re.escape(self.name)}_(iter_\d+|best)\.{kinds}{re.escape(_TMP_MARK)}\d+$")
        removed = []
        for fname in os.listdir(self.root):
            if pattern.match(fname):
                _remove_quietly(os.path.join(self.root, fname))
                removed.append(fname)
        if removed:
            logger.info(f"Removed {len(removed)} temp file(s) of an interrupted save: {', '.join(removed)}")
        return removed

    @contextmanager
    def lock(self) -> Iterator[None]:
        """One run per experiment: a second launch of the same name would archive the live run's files and
        delete its in-flight temp files. The OS drops the lock when the process dies, even by kill -9."""
        os.makedirs(self.root, exist_ok=True)
        path = os.path.join(self.root, f".{self.name}.lock")
        with open(path, "a+") as fh:
            if fcntl is not None:
                try:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as exc:
                    fh.seek(0)
                    holder = fh.read().strip() or "another process"
                    raise UserError(f"another run of '{self.name}' is using {self.root} (pid {holder}); wait for "
                                    "it, stop it, or choose another name") from exc
            fh.seek(0)
            fh.truncate()
            fh.write(str(os.getpid()))
            fh.flush()
            try:
                yield
            finally:
                _remove_quietly(path)  # tidy weights/; a file left by kill -9 holds no lock and is reused

    def newer_than(self, iteration: int) -> List[str]:
        """Interval files (.pt and weights) after ``iteration``: an abandoned branch when resuming from older."""
        return [p for it, pt in self.interval_checkpoints() if it > iteration
                for p in self.companions(pt) if os.path.exists(p)]

    # the save policy
    def track(self, *, model: DeployableModel, progress: Stateful, best: Stateful,
              options: Dict[str, Any]) -> None:
        """The stateful parts a checkpoint is collected from; ``progress`` says the iteration."""
        self._parts = {"model": model, "progress": progress, "best": best, "options": options}
        self.last_saved = int(progress.state_dict()["iteration"])

    def collect(self) -> Dict[str, Any]:
        """The full training state now (references to live tensors: write it before the next step)."""
        if self._parts is None:
            raise RuntimeError("CheckpointManager.track() was not called")
        parts = self._parts
        return training_state(**parts["progress"].state_dict(), model=parts["model"].state_dict(),
                              best=parts["best"].state_dict(), options=parts["options"], rng=self._rng())

    def _rng(self) -> Dict[str, Any]:
        """This process's RNG state; with several processes rank 0's, and every rank's under ``per_rank``
        (a collective: all ranks call it at the same step)."""
        own = capture_rng()
        if not self.dist.enabled:
            return own
        return {**own, "per_rank": self.dist.gather(own)}

    def after_step(self, iteration: int, *, new_best: bool = False, final: bool = False,
                   on_saved: Optional[Callable[[Saved], None]] = None) -> Saved:
        """Write what this step calls for: the interval files (every ``save_freq`` and at the end) and the
        best files; when both fall on one step the state is serialised once and the best names link to it.

        ``on_saved`` runs on rank 0 once the files are in place (the best-model archive, the log line); with
        ``async_save`` that is on the writer thread, and the returned :class:`Saved` is empty."""
        self.check()
        interval = final or bool(self.save_freq and iteration % self.save_freq == 0)
        if not (interval or new_best):
            return Saved()
        if self.async_save:
            self._wait_for_writer()
            live = self.collect()  # every rank: it gathers the ranks' RNG states
            if self.dist.is_main:
                state, params = snapshot_state((live, self._params()), self._buffers)
                self._writer.start(lambda: self._write_step(iteration, state, params, interval=interval,
                                                            new_best=new_best, on_saved=on_saved))
            if interval:
                self.last_saved = iteration  # in flight: a failure stops the run at the next step
            return Saved()
        state = snapshot_state(self.collect())
        saved = self._on_rank0(lambda: self._write_step(iteration, state, snapshot_state(self._params()),
                                                        interval=interval, new_best=new_best, on_saved=on_saved))
        if interval:
            self.last_saved = iteration  # every rank: rank 0 has written this step
        return saved or Saved()

    def check(self) -> None:
        """Raise the failure of a background save that has finished (a no-op for synchronous saves)."""
        self._writer.raise_failure()

    def finish(self) -> None:
        """The end of the loop: wait for the save in flight; raise if it failed."""
        if self.async_save:
            self._wait_for_writer()

    def close(self) -> None:
        """The run is ending (after an error too): wait for the save in flight (its files must not be cut off),
        end the writer thread, and log a failure rather than hide the error that may be ending the run."""
        self._writer.stop()
        failure = self._writer.take_failure()
        if failure is not None:
            logger.warning(f"the background checkpoint write failed too: {failure}")

    def _wait_for_writer(self) -> None:
        """Rank 0 waits for the save in flight (the log says how long); then every rank passes a barrier."""
        if self._writer.in_flight:
            busy = self._writer.busy
            waited = self._writer.wait()
            if busy:
                logger.info(f"Waited {waited:.2f} s for the previous checkpoint write to finish")
        self.check()
        self.dist.barrier()

    def _on_rank0(self, write: Callable[[], _T]) -> Optional[_T]:
        """``write`` on rank 0 alone; every rank returns once the files are in place. A failed write raises on
        rank 0 instead of reaching the barrier: its process exits and torchrun stops the others."""
        result = write() if self.dist.is_main else None
        self.dist.barrier()
        return result

    def _write_step(self, iteration: int, state: Dict[str, Any], params: Dict[str, torch.Tensor], *,
                    interval: bool, new_best: bool, on_saved: Optional[Callable[[Saved], None]] = None) -> Saved:
        saved_interval = self._write(self.iter_paths(iteration), state, params) if interval else None
        saved_best = None
        if new_best:
            saved_best = self.best_paths()
            if saved_interval is not None:
                atomic_copy_all(list(zip(saved_interval, saved_best, strict=True)))
            else:
                self._write(saved_best, state, params)
        if saved_interval is not None:
            self.last_saved = iteration
            self.prune()
        saved = Saved(interval=saved_interval, best=saved_best)
        if on_saved is not None:
            on_saved(saved)
        return saved

    def save_progress(self, iteration: int) -> Optional[str]:
        """A stop request or an error mid-run: the last completed step, unless it is saved already (a
        background save of it in flight is waited for)."""
        if self.async_save:
            self._wait_for_writer()
        if iteration <= self.last_saved:
            return None
        state = snapshot_state(self.collect())

        def write() -> str:
            pt = self._write(self.iter_paths(iteration), state, snapshot_state(self._params()))[0]
            self.last_saved = iteration
            self.prune()
            return pt

        pt = self._on_rank0(write)
        self.last_saved = iteration
        return pt

    def _params(self) -> Dict[str, torch.Tensor]:
        assert self._parts is not None
        return dict(self._parts["model"].deploy_state_dict())

    def _write(self, paths: Tuple[str, ...], state: Mapping[str, Any],
               params: Mapping[str, torch.Tensor]) -> Tuple[str, ...]:
        """The ``.pt`` and its weights files, replaced together (all or none)."""
        os.makedirs(self.root, exist_ok=True)
        pt, *weights = paths
        _replace_all([(pt, functools.partial(_save_temp, dict(state))),
                      *((path, weights_writer(path, params, self.metadata)) for path in weights)])
        return paths

    def prune(self) -> List[str]:
        """Delete interval checkpoints beyond the newest ``keep_last`` (only after a new one is written)."""
        if not self.keep_last:
            return []
        removed = []
        for _iteration, pt in self.interval_checkpoints()[self.keep_last:]:
            for path in self.companions(pt):
                if os.path.exists(path):
                    os.remove(path)
                    removed.append(path)
        return removed

    # loading
    def find_resumable(self) -> Optional[Tuple[str, Dict[str, Any]]]:
        """The newest interval checkpoint that verifies (the ones skipped are logged with the reason), or
        None when there is none at all. Checkpoints that all fail is an error, not a fresh start."""
        candidates = self.interval_checkpoints()
        for _iteration, path in candidates:
            try:
                return path, verify(path)
            except CheckpointError as exc:
                logger.warning(f"Skipping {exc}")
        if candidates:
            raise CheckpointError(f"path.resume_path: auto: none of the {len(candidates)} checkpoint(s) of "
                                  f"'{self.name}' in {self.root} is valid (see above); move them aside to start "
                                  f"over, or set resume_path to a checkpoint you trust")
        return None

    def load_resume(self, path: str) -> Dict[str, Any]:
        """The full state at ``path``, verified; a `.pth` or anything else gets a clear error."""
        return check_training_state(safe_load(path, key="path.resume_path"), path, key="path.resume_path")
