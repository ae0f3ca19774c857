"""Saving a checkpoint without holding up training: a snapshot of the state, and one writer thread.

At a save point the training thread copies the state's tensors into CPU buffers (:func:`snapshot_state`) and
goes on; :class:`BackgroundWriter` then runs the save job the manager would run at the save point, so the
files, their bytes and their guarantees (atomic replace, fsync, ``.pt`` + weights files together, pruning
after a complete write) are the same. What torch.save writes depends on more than tensor values: which tensors
share a storage (views), storage offsets and strides, dict order, container types (a state dict is an
``OrderedDict`` with ``_metadata``) and which objects are the same object (pickle memoises them). The snapshot
therefore copies storages, not tensors, rebuilds every view on its copy, and deep-copies the containers with
the tensors' copies pre-seeded, so the pickled structure is the live state's.
"""
from __future__ import annotations

import copy
import ctypes
import queue
import threading
import time
from typing import Any, Callable, Dict, Hashable, Iterator, Literal, Optional, Tuple, Union

import torch

from ..device import usable_cores

WRITER_THREAD = "checkpoint-writer"
# CPU storages up to this size are copied with one plain memmove: torch's own copy splits a copy over its
# intra-op threads, and on a busy machine waiting for a descheduled one costs more than a small copy itself.
PLAIN_COPY_BYTES = 16 << 20
# A finished job: its return value, or the exception it raised.
Outcome = Tuple[Any, Optional[BaseException]]


def resolve_async_save(value: Union[bool, Literal["auto"]], device: torch.device) -> bool:
    """``logger.async_save``: ``auto`` is on, except for a CPU run on one core, where the writer thread would
    take the only core from training and the pause would just move into the steps."""
    if value != "auto":
        return bool(value)
    return device.type != "cpu" or usable_cores() > 1


class SnapshotBuffers:
    """CPU copies of the state's storages, kept from one save to the next.

    Each buffer is keyed by where its storage is first met in the state (``model/networks/net_g/conv.weight``),
    so the same state reuses the same buffers: after the first save a snapshot costs one copy and no new memory.
    Buffers for GPU storages are pinned, which makes the copy a fast DMA.
    """

    def __init__(self) -> None:
        # key -> (buffer, pinned); the flag is kept because asking a storage is_pinned() is a slow call
        self._buffers: Dict[str, Tuple[torch.UntypedStorage, bool]] = {}
        self._used: Dict[str, Tuple[torch.UntypedStorage, bool]] = {}

    @property
    def nbytes(self) -> int:
        return sum(buffer.nbytes() for buffer, _pinned in self._buffers.values())

    def copy_of(self, key: str, storage: torch.UntypedStorage) -> torch.UntypedStorage:
        pinned = storage.device.type == "cuda"
        found = self._buffers.get(key)
        if found is not None and found[1] == pinned and found[0].nbytes() == storage.nbytes():
            buffer = found[0]
        else:
            buffer = torch.empty(storage.nbytes(), dtype=torch.uint8, pin_memory=pinned).untyped_storage()
        _copy_storage(buffer, storage, non_blocking=pinned)
        self._used[key] = (buffer, pinned)
        return buffer

    def settle(self) -> None:
        """End of a snapshot: keep the buffers it used, free the others (a state that changed shape)."""
        self._buffers, self._used = self._used, {}


def _copy_storage(dst: torch.UntypedStorage, src: torch.UntypedStorage, *, non_blocking: bool) -> None:
    nbytes = src.nbytes()
    if src.device.type == "cpu" and 0 < nbytes <= PLAIN_COPY_BYTES:
        ctypes.memmove(dst.data_ptr(), src.data_ptr(), nbytes)  # single-threaded; the GIL is released
    else:
        dst.copy_(src, non_blocking=non_blocking)


def _tensors(obj: Any, path: str = "") -> Iterator[Tuple[str, torch.Tensor]]:
    """Every tensor in nested dicts, lists and tuples, with its path (the order torch.save meets them)."""
    if isinstance(obj, torch.Tensor):
        yield path, obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield from _tensors(value, f"{path}/{key}")
    elif isinstance(obj, (list, tuple)):
        for index, value in enumerate(obj):
            yield from _tensors(value, f"{path}/{index}")


def _view_on(tensor: torch.Tensor, storage: torch.UntypedStorage) -> torch.Tensor:
    """``tensor``'s view (dtype, offset, size, stride, requires_grad) on another storage."""
    view = torch.empty((0,), dtype=tensor.dtype).set_(storage, tensor.storage_offset(), tensor.size(),
                                                       tensor.stride())
    if type(tensor) is torch.nn.Parameter:
        return torch.nn.Parameter(view, requires_grad=tensor.requires_grad)
    return view.requires_grad_(tensor.requires_grad) if tensor.requires_grad else view


def _storage_key(tensor: torch.Tensor, storage: torch.UntypedStorage) -> Hashable:
    """Which storage ``tensor`` lives in, from public calls: its device and the address of its first byte (two
    live storages of a state dict start at one address only when they are one storage). An empty storage has
    no address (0 for all of them), so each empty tensor keeps a storage of its own, as torch.save writes it."""
    if storage.nbytes() == 0:
        return ("empty", id(tensor))
    return (storage.device, storage.data_ptr())


def snapshot_state(obj: Any, buffers: Optional[SnapshotBuffers] = None) -> Any:
    """A copy of ``obj`` whose tensors live on the CPU and no longer change with the live state.

    With ``buffers`` every storage is copied into them (an asynchronous save). Without, CPU storages are
    shared with the live state and only those on another device are copied (a synchronous save of a GPU
    state: the files then hold CPU tensors whichever way they were written).
    """
    found = [(path, tensor) for path, tensor in _tensors(obj)
             if type(tensor) in (torch.Tensor, torch.nn.Parameter)]  # a tensor subclass is left to deepcopy
    if buffers is None and all(tensor.device.type == "cpu" for _path, tensor in found):
        return obj  # nothing to copy: the live state is what a synchronous save of a CPU state writes
    copies: Dict[Hashable, torch.UntypedStorage] = {}
    memo: Dict[int, Any] = {}
    on_gpu = False
    for path, tensor in found:
        if id(tensor) in memo:
            continue  # one object in two places stays one object (pickle writes it once)
        storage = tensor.untyped_storage()
        key = _storage_key(tensor, storage)
        if key not in copies:
            on_gpu = on_gpu or storage.device.type == "cuda"
            if buffers is not None:
                copies[key] = buffers.copy_of(path, storage)
            else:
                copies[key] = storage if storage.device.type == "cpu" else storage.cpu()
        memo[id(tensor)] = _view_on(tensor, copies[key])
    if buffers is not None:
        buffers.settle()
    if on_gpu:
        torch.cuda.synchronize()  # the non-blocking copies into pinned buffers are complete
    return copy.deepcopy(obj, memo)  # ``found`` keeps the tensors, so their ids stay unique meanwhile


class BackgroundWriter:
    """Runs one save at a time on a long-lived thread of its own and keeps its outcome for the training thread.

    The thread is started once and fed through a queue, so a save point does not wait for a new thread to
    start and take the GIL. It is not a daemon, so even if the training thread dies unexpectedly the
    interpreter waits for a write in flight to finish; when idle it checks every :data:`IDLE_POLL_S` whether
    the main thread has ended and then ends too, so a run that never calls :meth:`stop` still exits.
    """

    IDLE_POLL_S = 0.5

    def __init__(self) -> None:
        self._thread: Optional[threading.Thread] = None
        self._jobs: "queue.SimpleQueue[Optional[Callable[[], Any]]]" = queue.SimpleQueue()
        self._done = threading.Event()
        self._done.set()
        self._in_flight = False
        self._outcome: Optional[Outcome] = None

    @property
    def busy(self) -> bool:
        """A write is running now."""
        return not self._done.is_set()

    @property
    def in_flight(self) -> bool:
        """A save was started and not yet waited for (it may have finished meanwhile)."""
        return self._in_flight

    def start(self, job: Callable[[], Any]) -> None:
        if self._in_flight:
            raise RuntimeError("a checkpoint write is still in flight; wait() for it first")
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._serve, name=WRITER_THREAD, daemon=False)
            self._thread.start()
        self._in_flight = True
        self._done.clear()
        self._jobs.put(job)

    def _serve(self) -> None:
        while True:
            try:
                job = self._jobs.get(timeout=self.IDLE_POLL_S)
            except queue.Empty:
                if not threading.main_thread().is_alive():
                    return
                continue
            if job is None:
                return
            try:
                self._outcome = (job(), None)
            except BaseException as exc:  # noqa: BLE001 - handed to the training thread, never lost
                self._outcome = (None, exc)
            finally:
                self._done.set()

    def wait(self) -> float:
        """Seconds spent waiting for the write in flight (0 when there is none)."""
        if not self._in_flight:
            return 0.0
        start = time.perf_counter()
        self._done.wait()
        self._in_flight = False
        return time.perf_counter() - start

    def stop(self) -> None:
        """Wait for the write in flight, then end the thread (a later :meth:`start` starts a new one)."""
        self.wait()
        if self._thread is not None and self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join()
        self._thread = None

    def take(self) -> Optional[Outcome]:
        """The outcome of the job that finished last, once (None when there is none): call after :meth:`wait`."""
        outcome, self._outcome = self._outcome, None
        return outcome
