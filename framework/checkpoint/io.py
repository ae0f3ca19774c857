"""Writing files so that a crash never leaves a damaged one under a real name, and reading ``.safetensors``.

Every write goes to a temp file in the target's folder (flush + fsync), and only when every temp file of a
group exists is each renamed over its target (``os.replace``), then the folder is fsynced: a ``.pt`` and its
weights files are replaced together, and a kill or power loss at any instant leaves loadable files. A failed
write (a full disk) removes its temp files and raises :class:`CheckpointWriteError`.
"""
from __future__ import annotations

import functools
import os
import shutil
import time
from typing import Any, Callable, Dict, List, Mapping, Sequence, Tuple

import torch

from ..version import __version__
from ..errors import first_line
from .errors import CheckpointError, CheckpointWriteError
from .format import SAFETENSORS

TMP_MARK = ".tmp."
# Test-only: seconds a write sleeps between writing its temp files and renaming them, so a test can kill or
# signal a run while a save is in flight. Never set it for real runs.
TEST_SLOW_SAVE_ENV = "FRAMEWORK_TEST_SLOW_SAVE_S"


def atomic_save(obj: Any, path: str) -> None:
    """Write ``obj`` with torch.save so that ``path`` is either the old file or the complete new one."""
    atomic_save_all([(obj, path)])


def atomic_save_all(items: Sequence[Tuple[Any, str]]) -> None:
    """Write each ``(obj, path)`` so that every path is either its old file or its complete new one, and a
    failed write (a full disk) changes none of them: a ``.pt`` and its ``.pth`` are replaced together.

    Temp files in the same folder, flush + fsync, then ``os.replace`` of each, then fsync of the folder: a kill
    or power loss at any instant leaves loadable files; a failed write removes its temp files and raises.
    """
    replace_together([(path, functools.partial(_save_temp, obj)) for obj, path in items])


def atomic_copy_all(pairs: Sequence[Tuple[str, str]]) -> None:
    """Each ``(source, path)``: ``path`` becomes the finished file ``source`` (a hard link where the file
    system has them, else a copy), all or none, without serialising the state again."""
    replace_together([(path, functools.partial(_link_temp, source)) for source, path in pairs])


def write_checkpoint(paths: Sequence[str], state: Mapping[str, Any], params: Mapping[str, torch.Tensor],
                     metadata: Mapping[str, str]) -> None:
    """A ``.pt`` of ``state`` and its weights files of ``params`` (``paths``: the ``.pt`` first), replaced
    together (all or none)."""
    pt, *weights = paths
    replace_together([(pt, functools.partial(_save_temp, dict(state))),
                      *((path, weights_writer(path, params, metadata)) for path in weights)])


def _save_temp(obj: Any, tmp: str) -> None:
    with open(tmp, "wb") as fh:
        torch.save(obj, fh)
        fh.flush()
        os.fsync(fh.fileno())


def weights_writer(path: str, params: Mapping[str, torch.Tensor],
                   metadata: Mapping[str, str]) -> Callable[[str], None]:
    """The temp-file writer of a weights file, by its extension: ``{'params': ...}`` in a ``.pth``, or the
    flat tensors with ``metadata`` in a ``.safetensors``."""
    if path.endswith(SAFETENSORS):
        return functools.partial(_save_safetensors_temp, dict(params), dict(metadata))
    return functools.partial(_save_temp, {"params": dict(params)})


def atomic_save_weights(path: str, params: Mapping[str, torch.Tensor], metadata: Mapping[str, str]) -> None:
    """One weights file (``.pth`` or ``.safetensors`` by its extension), written atomically."""
    replace_together([(path, weights_writer(path, params, metadata))])


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
        raise CheckpointError(f"{where}: corrupt or truncated .safetensors file ({first_line(exc, 200)})") from exc
    if not tensors:
        raise CheckpointError(f"{where}: the .safetensors file holds no tensors")
    return tensors, metadata


def _link_temp(source: str, tmp: str) -> None:
    try:
        os.link(source, tmp)
    except OSError:
        _copy_temp(source, tmp)


def copy_writer(source: str) -> Callable[[str], None]:
    """The temp-file writer of an independent copy of ``source`` (for :func:`replace_together`)."""
    return functools.partial(_copy_temp, source)


def text_writer(text: str) -> Callable[[str], None]:
    """The temp-file writer of a UTF-8 text file (for :func:`replace_together`)."""
    return functools.partial(_text_temp, text)


def replace_together(targets: Sequence[Tuple[str, Callable[[str], None]]]) -> None:
    """``(path, write_temp)`` pairs: every ``write_temp(tmp)`` makes its temp file first; only when all exist is
    each renamed over its path (all or none, as the module says)."""
    temps: List[str] = []
    path = ""
    try:
        for path, make_temp in targets:
            folder = os.path.dirname(os.path.abspath(path))
            temps.append(os.path.join(folder, f".{os.path.basename(path)}{TMP_MARK}{os.getpid()}"))
            make_temp(temps[-1])
        _pause_for_tests()
        for (path, _make), tmp in zip(targets, temps, strict=True):
            os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:  # torch's zip writer reports a full disk as RuntimeError
        for tmp in temps:
            remove_quietly(tmp)
        folder = os.path.dirname(os.path.abspath(path))
        free = shutil.disk_usage(folder).free if os.path.isdir(folder) else 0
        errno_ = getattr(exc, "errno", None)
        reason = os.strerror(errno_) if errno_ else first_line(exc)
        raise CheckpointWriteError(f"{path}: checkpoint not written: {reason} ({free / 2**20:.1f} MiB free "
                                   f"in {folder}); earlier checkpoints are intact") from exc
    except BaseException:
        for tmp in temps:
            remove_quietly(tmp)
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


def remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def _copy_temp(source: str, tmp: str) -> None:
    shutil.copyfile(source, tmp)
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())


def _text_temp(text: str, tmp: str) -> None:
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def _pause_for_tests() -> None:
    """The test-only pause of :data:`TEST_SLOW_SAVE_ENV` (a no-op unless a test sets it)."""
    seconds = float(os.environ.get(TEST_SLOW_SAVE_ENV, 0) or 0)
    if seconds > 0:
        time.sleep(seconds)
