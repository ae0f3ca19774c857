"""The checkpoint manager: file names, formats, atomic writes, retention, verification and safe loading.

It knows files and state dicts, not training: the trainer collects a plain dict of state (``Trainer._state``)
and hands it over; this module decides where and how it lands on disk, and what a valid one must hold.

Formats (design.md 4):
- ``<name>_iter_<N>.pth`` / ``<name>_best.pth``: exactly ``{'params': state_dict}``, for deployment.
- ``<name>_iter_<N>.pt`` / ``<name>_best.pt``: the full training state, a plain dict marked
  ``kind: 'training_state'`` with a format version.
Both load with ``torch.load(..., weights_only=True)``.
"""
from __future__ import annotations

import os
import re
from contextlib import contextmanager
import shutil
import time
import warnings
import zipfile
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple

import torch

from .errors import UserError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; one run per name is then the user's care
    fcntl = None

FORMAT_VERSION = 1
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
    """The full-state ``.pt`` content: what the trainer collected, plus kind, format and versions.

    Everything is plain Python and tensors, so ``torch.load(weights_only=True)`` reads it.
    """
    from . import __version__

    return {"kind": TRAINING_STATE, "format_version": FORMAT_VERSION, "framework_version": __version__,
            "torch_version": str(torch.__version__), "iteration": iteration, "epoch": epoch,
            "data_position": data_position, "model": model, "best": best, "options": options, "rng": rng,
            "saved_at": time.strftime("%Y-%m-%d %H:%M:%S")}


# ------------------------------------------------------------------------------------------------ writing


def atomic_save(obj: Any, path: str) -> None:
    """Write ``obj`` with torch.save so that ``path`` is either the old file or the complete new one.

    Temp file in the same folder, flush + fsync, ``os.replace``, fsync of the folder: a kill or power loss at
    any instant leaves a loadable file; a failed write (ENOSPC) removes its temp file and raises.
    """
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".{os.path.basename(path)}{_TMP_MARK}{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:  # torch's zip writer reports a full disk as RuntimeError
        _remove_quietly(tmp)
        free = shutil.disk_usage(folder).free if os.path.isdir(folder) else 0
        errno_ = getattr(exc, "errno", None)
        reason = os.strerror(errno_) if errno_ else str(exc).strip().splitlines()[0]
        raise CheckpointWriteError(f"{path}: checkpoint not written: {reason} ({free / 2**20:.1f} MiB free "
                                   f"in {folder}); earlier checkpoints are intact") from None
    except BaseException:
        _remove_quietly(tmp)
        raise
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
    except Exception as exc:  # noqa: BLE001 - every reason a file cannot be read is the user's to see
        message = str(exc)
        detail = re.search(r"Unsupported (global|operand)[^\n.]*", message)
        if detail is not None or "GLOBAL" in message:
            raise CheckpointError(f"{where}: refused: the file holds Python objects other than tensors and "
                                  f"plain data ({detail.group(0) if detail else 'not weights-only'}); it may be "
                                  f"malicious and was not unpickled") from None
        first = message.strip().splitlines()[0] if message.strip() else type(exc).__name__
        raise CheckpointError(f"{where}: not a readable PyTorch file ({first[:200]})") from None


def _check_zip(path: str, where: str) -> None:
    """Torch files are zip archives with a CRC per record: this catches truncation and flipped bytes."""
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        raise CheckpointError(f"{where}: corrupt file ({exc})") from None
    except Exception as exc:  # zlib/struct errors inside a damaged archive
        raise CheckpointError(f"{where}: corrupt file ({type(exc).__name__}: {exc})") from None
    if bad is not None:
        raise CheckpointError(f"{where}: corrupt file (checksum mismatch in record '{bad}')")


def verify(path: str) -> Dict[str, Any]:
    """Load and check a file written by us; returns its content or raises :class:`CheckpointError`."""
    if os.path.isfile(path) and os.path.getsize(path) > 0 and not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path}: corrupt or not a PyTorch checkpoint (no zip archive; truncated?)")
    obj = safe_load(path)
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a dict, got {type(obj).__name__}")
    if path.endswith(".pt"):
        check_training_state(obj, path)
    elif "params" not in obj:
        raise CheckpointError(f"{path}: weights file without a 'params' entry (keys: {_keys(obj)})")
    elif not is_state_dict(obj["params"]):
        raise CheckpointError(f"{path}: 'params' is not a state dict of tensors")
    return obj


def check_training_state(obj: Any, path: str, key: str = "") -> None:
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
    missing = [name for name, ok in _TRAINING_STATE_SHAPE.items() if not ok(obj)]
    if missing:
        raise CheckpointError(f"{where}: incomplete training checkpoint (missing or invalid: {', '.join(missing)})")


def is_state_dict(value: Any) -> bool:
    """A non-empty dict of name -> tensor."""
    return isinstance(value, dict) and bool(value) and all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                           for k, v in value.items())


# What resuming reads, so a checkpoint that would fail half-way through a resume is rejected up front.
_TRAINING_STATE_SHAPE = {
    "iteration": lambda o: isinstance(o.get("iteration"), int),
    "epoch": lambda o: isinstance(o.get("epoch"), int),
    "data_position": lambda o: isinstance(o.get("data_position"), dict)
    and all(isinstance(o["data_position"].get(k), int) for k in ("epoch", "batches_done")),
    "model.net_g": lambda o: isinstance(o.get("model"), dict) and is_state_dict(o["model"].get("net_g")),
    "model.net_g_ema": lambda o: isinstance(o.get("model"), dict)
    and (o["model"].get("net_g_ema") is None or is_state_dict(o["model"].get("net_g_ema"))),
    "model.optimizer": lambda o: isinstance(o.get("model"), dict) and isinstance(o["model"].get("optimizer"), dict),
    "model.scheduler": lambda o: isinstance(o.get("model"), dict) and isinstance(o["model"].get("scheduler"), dict),
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


def read_weights(path: str, param_key: str = "params",
                 log: Callable[[str], None] = print) -> Dict[str, torch.Tensor]:
    """Network weights from a `.pth` (``params``, ``params_ema``, bare state dict) or a full `.pt`."""
    obj = safe_load(path, key="path.pretrain_path")
    where = f"path.pretrain_path: {path}"
    if isinstance(obj, dict) and obj.get("kind") == TRAINING_STATE:
        model = obj.get("model", {})
        use_ema = param_key == "params_ema" and model.get("net_g_ema") is not None
        state = model.get("net_g_ema") if use_ema else model.get("net_g")
        log(f"Pretrained weights: {'EMA' if use_ema else 'network'} weights of the full checkpoint {path} "
            f"(iteration {obj.get('iteration')})")
    elif isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        state = obj
        log(f"Pretrained weights: {path} is a bare state dict")
    elif isinstance(obj, dict):
        nested = {k: v for k, v in obj.items() if isinstance(v, dict)}
        if param_key in nested:
            state = nested[param_key]
        elif len(nested) == 1:
            only = next(iter(nested))
            log(f"Pretrained weights: {path} has no '{param_key}', using its only entry '{only}'")
            state = nested[only]
        else:
            raise CheckpointError(f"{where}: no '{param_key}' entry (entries: {_keys(nested)}); set "
                                  "path.param_key to one of them")
    else:
        raise CheckpointError(f"{where}: expected a dict of weights, got {type(obj).__name__}")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{where}: the selected entry is not a state dict of tensors")
    return strip_prefixes(state)


# ------------------------------------------------------------------------------------------------ manager


class CheckpointManager:
    """Names, writes, finds, prunes and loads the checkpoints of one experiment in ``weights_root``."""

    def __init__(self, weights_root: str, name: str, keep_last: Optional[int] = None,
                 log: Callable[[str], None] = print) -> None:
        self.root = weights_root
        self.name = name
        self.keep_last = keep_last
        self.log = log

    # names
    def path(self, tag: str, ext: str) -> str:
        return os.path.join(self.root, f"{self.name}_{tag}.{ext}")

    def iter_paths(self, iteration: int) -> Tuple[str, str]:
        return self.path(f"iter_{iteration}", "pt"), self.path(f"iter_{iteration}", "pth")

    def best_paths(self) -> Tuple[str, str]:
        return self.path("best", "pt"), self.path("best", "pth")

    def existing(self) -> List[str]:
        """This experiment's files (for archiving them before a fresh run reuses the name)."""
        if not os.path.isdir(self.root):
            return []
        pattern = re.compile(rf"^{re.escape(self.name)}_(iter_\d+|best)\.(pt|pth)$")
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
        pattern = re.compile(rf"^\.{re.escape(self.name)}_(iter_\d+|best)\.(pt|pth){re.escape(_TMP_MARK)}\d+$")
        removed = []
        for fname in os.listdir(self.root):
            if pattern.match(fname):
                _remove_quietly(os.path.join(self.root, fname))
                removed.append(fname)
        if removed:
            self.log(f"Removed {len(removed)} temp file(s) of an interrupted save: {', '.join(removed)}")
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
                except OSError:
                    fh.seek(0)
                    holder = fh.read().strip() or "another process"
                    raise UserError(f"another run of '{self.name}' is using {self.root} (pid {holder}); wait for "
                                    "it, stop it, or choose another name") from None
            fh.seek(0)
            fh.truncate()
            fh.write(str(os.getpid()))
            fh.flush()
            try:
                yield
            finally:
                _remove_quietly(path)  # tidy weights/; a file left by kill -9 holds no lock and is reused

    def newer_than(self, iteration: int) -> List[str]:
        """Interval files (.pt and .pth) after ``iteration``: an abandoned branch when resuming from older."""
        return [p for it, pt in self.interval_checkpoints() if it > iteration
                for p in (pt, pt + "h") if os.path.exists(p)]

    # saving
    def save_interval(self, state: Mapping[str, Any], params: Mapping[str, torch.Tensor],
                      iteration: int) -> Tuple[str, str]:
        """Full state and weights at ``iteration``; then, only then, prune the oldest beyond ``keep_last``."""
        os.makedirs(self.root, exist_ok=True)
        pt, pth = self.iter_paths(iteration)
        atomic_save(dict(state), pt)
        atomic_save({"params": dict(params)}, pth)
        self.prune()
        return pt, pth

    def save_best(self, state: Mapping[str, Any], params: Mapping[str, torch.Tensor]) -> Tuple[str, str]:
        os.makedirs(self.root, exist_ok=True)
        pt, pth = self.best_paths()
        atomic_save(dict(state), pt)
        atomic_save({"params": dict(params)}, pth)
        return pt, pth

    def prune(self) -> List[str]:
        if not self.keep_last:
            return []
        removed = []
        for _iteration, pt in self.interval_checkpoints()[self.keep_last:]:
            for path in (pt, pt + "h"):
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
                self.log(f"Skipping {exc}")
        if candidates:
            raise CheckpointError(f"path.resume_path: auto: none of the {len(candidates)} checkpoint(s) of "
                                  f"'{self.name}' in {self.root} is valid (see above); move them aside to start "
                                  f"over, or set resume_path to a checkpoint you trust")
        return None

    def load_resume(self, path: str) -> Dict[str, Any]:
        """The full state at ``path``, verified; a `.pth` or anything else gets a clear error."""
        obj = safe_load(path, key="path.resume_path")
        check_training_state(obj, path, key="path.resume_path")
        return obj
