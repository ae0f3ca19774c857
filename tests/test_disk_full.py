"""A disk that fills up while the ``.pth`` of a save is written, after its ``.pt`` was written whole.

The failure is real, not a Python exception put in place of a write: during that one file's save the process's
file-size limit (RLIMIT_FSIZE, with SIGXFSZ ignored) is lowered to 1 KiB, so the operating system refuses the
write half-way, as a full disk does. The save goes through the real ``framework.checkpoint.io._save_temp`` (which
writes one temp file); the test wraps it (the one internal it depends on) only to know which file is written.

Afterwards, every file under a real name must verify (``scripts/checkpoint.py verify``, best files included),
the files already on disk must be unchanged (a ``.pt`` and its ``.pth`` are replaced together or not at all, so
the best pair stays the previous best, as the archive has it), no temp file may remain, the run must exit 2 with
one line naming the file, and ``--auto-resume`` must finish the run.
"""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Dict, List

import pytest
import torch

from framework.checkpoint import io as ckpt_io
from framework.checkpoint.format import check_training_state
from framework.checkpoint.safe_load import safe_load

from .childproc import REPO, Child
from .tinyrun import train_in_process, write_options

resource = pytest.importorskip("resource")  # POSIX

TOTAL = 12


def _files(weights: Path) -> Dict[str, bytes]:
    """Checkpoint files under real names (not the lock, not temp files)."""
    return {p.name: p.read_bytes() for p in sorted(weights.iterdir()) if p.is_file() and not p.name.startswith(".")}


def _write_fails_halfway(save, obj, path: str) -> None:
    """``save(obj, path)`` while the OS accepts at most 1 KiB per file: the write stops part-way."""
    previous_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a killed process
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1024, hard))
    try:
        save(obj, path)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous_handler)


@pytest.mark.parametrize("target", ["interval", "best"])
def test_a_pth_write_that_fails_after_its_pt_leaves_every_checkpoint_valid(
        workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, target: str) -> None:
    """``interval``: the disk fills while ``full_iter_8.pth`` is written. ``best``: while the second best model's
    ``full_best.pth`` is written over the first one (whose files must survive)."""
    # Synchronous saves: the file-size limit is per process and SIGXFSZ can only be ignored from the main
    # thread, so the limit must hold while the training thread itself writes (a background write failing is
    # tested in test_async_save.py, with a folder made read-only).
    opt = write_options(workdir, "full", **{"train.total_iter": TOTAL, "val.val_freq": 2,
                                           "logger.save_checkpoint_freq": 4, "logger.async_save": False})
    weights = workdir / "weights"
    real_save = ckpt_io._save_temp
    best_pth_writes: List[str] = []
    failures: List[Dict] = []

    def save(obj, tmp: str) -> None:
        name = os.path.basename(tmp).lstrip(".").split(".tmp.")[0]  # .full_best.pth.tmp.<pid> -> full_best.pth
        if name == "full_best.pth":
            best_pth_writes.append(tmp)
        if target == "interval":
            fail = name == "full_iter_8.pth"
        else:
            fail = name == "full_best.pth" and len(best_pth_writes) > 1
        if not fail:
            return real_save(obj, tmp)
        pt_tmp = tmp.replace(".pth.tmp.", ".pt.tmp.")  # the .pt of the same save, written just before
        failures.append({"path": str(weights / name), "pt_written": os.path.isfile(pt_tmp) and
                         check_training_state(safe_load(pt_tmp), pt_tmp) is not None,
                         "before": _files(weights)})
        _write_fails_halfway(real_save, obj, tmp)
        raise AssertionError(f"{tmp}: the write did not fail under a 1 KiB file-size limit")

    monkeypatch.setattr(ckpt_io, "_save_temp", save)
    capsys.readouterr()
    rc = train_in_process(opt)
    err = capsys.readouterr().err
    monkeypatch.setattr(ckpt_io, "_save_temp", real_save)

    assert failures, f"the {target} .pth was never written: the fault was not injected"
    failed = Path(failures[0]["path"]).name
    assert all(f["pt_written"] for f in failures), "the .pt of that save should have been written whole first"
    assert rc == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and failed in lines[0], err
    assert "Traceback" not in err

    after = _files(weights)
    assert not [p.name for p in weights.iterdir() if ".tmp." in p.name]
    # What was on disk when the disk filled is still there, byte for byte, and nothing else was added: the
    # .pt of the failed save never replaced its real name (a pair is replaced together or not at all).
    before = failures[0]["before"]
    assert after == before
    assert len(failures) == 1, "after a failed write the trainer must not retry the same save"
    if target == "interval":
        assert failed not in after and failed[:-1] not in after
    else:
        # the previous best model stays whole, .pt and .pth, as the archive of the experiment has it
        assert after["full_best.pth"] == before["full_best.pth"] and after["full_best.pt"] == before["full_best.pt"]
        archived = workdir / "experiments" / "full" / "best_model" / "full_best.pth"
        assert archived.read_bytes() == after["full_best.pth"]
    assert {"full_best.pt", "full_best.pth"} <= set(after)

    # Every file under a real name verifies, the best ones included: the tool users run
    with Child([sys.executable, str(REPO / "scripts" / "checkpoint.py"), "verify",
                *[f"weights/{name}" for name in sorted(after)]], cwd=workdir) as child:
        vrc, out, verr = child.finish(timeout=120)
    assert vrc == 0, (out, verr)
    assert sorted(out.split()[1::2]) == sorted(f"weights/{name}" for name in after)
    assert out.split()[0::2] == ["ok"] * len(after)

    # and the run can go on (the disk has room again)
    assert train_in_process(opt, ["path.resume_path=auto"]) == 0
    final = torch.load(weights / f"full_iter_{TOTAL}.pt", map_location="cpu", weights_only=True)
    assert final["iteration"] == TOTAL
