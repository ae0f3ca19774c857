"""Running one job per image over a pool of processes, with a progress bar: the data preparation tools."""
from __future__ import annotations

import contextlib
import multiprocessing
import os
from typing import Callable, Iterator, List, Optional, Sequence, TypeVar

import torch
from tqdm import tqdm

Item = TypeVar("Item")
Result = TypeVar("Result")

TEMP_SUFFIX = ".tmp"  # framework.data.image_io.write_bytes_atomic: ".<name>.<random>.tmp" beside the file


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def _one_thread() -> None:
    """Each process decodes and resizes one image at a time: the pool is the parallelism, not torch threads."""
    torch.set_num_threads(1)


def run_jobs(job: Callable[[Item], Result], items: Sequence[Item], workers: int, desc: str,
             unit: str = "img", ordered: bool = False) -> Iterator[Result]:
    """``job(item)`` for every item, in ``workers`` processes (in this one for ``workers <= 1``), with a tqdm
    bar; results are yielded as they come (in order with ``ordered``). ``job`` must be a module-level
    function (or a ``functools.partial`` of one) so that it can be sent to the workers."""
    bar = tqdm(total=len(items), desc=desc, unit=unit, dynamic_ncols=True)
    try:
        if workers <= 1 or len(items) <= 1:
            for item in items:
                yield job(item)
                bar.update()
            return
        with multiprocessing.get_context("fork" if os.name == "posix" else "spawn").Pool(
                min(workers, len(items)), initializer=_one_thread) as pool:
            mapped = pool.imap(job, items) if ordered else pool.imap_unordered(job, items)
            for result in mapped:
                yield result
                bar.update()
    finally:
        bar.close()


def remove_stale_temp_files(folder: str) -> List[str]:
    """Temporary files an interrupted earlier run left in ``folder`` (only ours: ``.<name>.<random>.tmp``)."""
    removed = []
    for root, _dirs, files in os.walk(folder):
        for fname in files:
            if fname.startswith(".") and fname.endswith(TEMP_SUFFIX):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(root, fname))
                    removed.append(os.path.join(root, fname))
    return removed


def check_output_folder(input_folder: str, output_folder: str, what: str = "--output") -> Optional[str]:
    """A problem with writing into ``output_folder`` (the input itself, or inside it), or None."""
    inp, out = os.path.realpath(input_folder), os.path.realpath(output_folder)
    if out == inp or out.startswith(inp + os.sep):
        return f"{what} '{output_folder}' is inside the input folder '{input_folder}'; choose another folder"
    return None
