"""CPU-side settings the framework applies itself: glibc's malloc thresholds (``malloc_tuning``) and the torch
thread count beside the data-loader workers (``num_threads``)."""
from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict

import pytest
import torch


from framework import device as device_module
from framework.device import configure_threads
from framework.options import load_options

from .tinyrun import REPO, run_train, write_options

glibc = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                           reason="mallopt and mallinfo2 are glibc's")

# In a fresh interpreter: the bytes glibc serves from mmap for one 8 MiB malloc, after tune_malloc(<argv[1]>)
# ("none": not called). Above the mmap threshold a block is mmapped (and unmapped again on free, the cost the
# tuning avoids); below it, it comes from the heap, which the tuned trim threshold then keeps.
_PROBE = r"""
import ctypes, sys
from framework.malloc import tune_malloc
if sys.argv[1] != "none":
    print(tune_malloc(sys.argv[1] == "on"), file=sys.stderr)
class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                     "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype = ctypes.c_void_p
before = libc.mallinfo2().hblkhd
block = libc.malloc(8 << 20)
print(libc.mallinfo2().hblkhd - before)
"""


def _mmapped(mode: str, env: Dict[str, str]) -> tuple:
    proc = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO), **env}, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    return int(proc.stdout.split()[-1]), proc.stderr.strip()


@glibc
def test_malloc_tuning_keeps_large_blocks_on_the_heap_as_the_environment_variable_does() -> None:
    plain = {"GLIBC_TUNABLES": ""}
    default, _ = _mmapped("none", plain)
    assert default >= 8 << 20  # glibc's default: an 8 MiB block is mmapped
    tuned, line = _mmapped("on", plain)
    assert tuned == 0 and "mallopt: mmap threshold 32 MiB" in line
    off, line = _mmapped("off", plain)
    assert off >= 8 << 20 and "glibc defaults (malloc_tuning: false)" in line
    from framework.malloc import ENV_EQUIVALENT

    by_env, line = _mmapped("on", {"GLIBC_TUNABLES": ENV_EQUIVALENT})
    assert by_env == 0 and "set by GLIBC_TUNABLES; left as they are" in line


@glibc
def test_train_py_logs_its_malloc_start_up_and_checkpoint_settings(workdir: Path) -> None:
    opt = write_options(workdir, "m", **{"train.total_iter": 1, "val": None})
    result = run_train(workdir, ["-opt", str(opt)], env={"GLIBC_TUNABLES": ""})
    assert result.returncode == 0, result.stderr
    assert "malloc: freed memory kept for reuse (mallopt: mmap threshold 32 MiB" in result.stdout
    assert "Start-up: first batch in hand" in result.stdout and "(fresh start)" in result.stdout
    expected = "in the background" if len(os.sched_getaffinity(0)) > 1 else "in the loop"
    assert f"checkpoints: written {expected} (logger.async_save: auto)" in result.stdout


@pytest.mark.parametrize("setting,workers,local_world,expected", [
    ("auto", 2, 1, 4),  # 4 cores, 2 workers: every core a thread (idle workers cost little, measured)
    ("auto", 0, 1, 4),
    ("auto", 1, 2, 2),  # two torchrun processes share the 4 cores: 2 each
    ("auto", 0, 8, 1),  # never below 1
    (None, 2, 1, 4),  # none means auto
    (3, 2, 1, 3),  # an explicit count is kept
])
def test_auto_threads_use_the_process_share_of_the_cores(workdir: Path, monkeypatch: pytest.MonkeyPatch,
                                                         setting: Any, workers: int, local_world: int,
                                                         expected: int) -> None:
    monkeypatch.setattr(device_module, "usable_cores", lambda: 4)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", str(local_world))
    opt = write_options(workdir, "t", **{"num_threads": setting, "datasets.train.num_worker_per_gpu": workers})
    configure_threads(load_options(str(opt)), torch.device("cpu"))
    assert torch.get_num_threads() == expected  # the workdir fixture restores the count afterwards
