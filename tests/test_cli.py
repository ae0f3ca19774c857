"""The command line as the README promises it, through real ``python train.py`` processes: Ctrl-C (the first
one saves and exits 0, a second one aborts with 130 without saving).

Every read of a child's output has a deadline (tests/childproc.py).
"""
from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest
import torch

from .childproc import Child
from .tinyrun import make_data, train_in_process, write_options


@pytest.fixture()
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    make_data(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _load(path: Path):
    return torch.load(path, map_location="cpu", weights_only=True)


def _tree(folder: Path) -> dict:
    """{relative path: bytes} of every file below ``folder``."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _log(workdir: Path, name: str) -> str:
    logs = sorted((workdir / "experiments" / name).glob(f"train_{name}_*.log"))
    assert logs, f"no log in experiments/{name}"
    return "\n".join(p.read_text(encoding="utf-8") for p in logs)


# ------------------------------------------------------------------------------------------------------ Ctrl-C
#
# The trainer installs its SIGINT/SIGTERM handler before the first step, so a loop log line (print_freq 1:
# "[epoch 0 iter 1] ...") proves it is in place. Sending SIGINT earlier would meet Python's default handling,
# which also ends in exit code 130 ("aborted") and would let the second test pass without testing anything.


def test_first_ctrl_c_finishes_the_step_saves_and_exits_0(workdir: Path) -> None:
    opt = write_options(workdir, "ctrl", **{"train.total_iter": 100000, "logger.print_freq": 1, "val": None,
                                           "logger.save_checkpoint_freq": 100000})
    with Child.train(workdir, "-opt", str(opt)) as child:
        child.wait_for("iter 1]")
        child.proc.send_signal(signal.SIGINT)
        rc, out, err = child.finish(timeout=60)
    assert rc == 0, err
    assert "SIGINT: finishing the current step and saving a checkpoint" in err
    assert "Traceback" not in err and "aborted" not in err
    match = re.search(r"SIGINT: stopped after iteration (\d+); saved (\S+\.pt)\.", out)
    assert match, out[-2000:]
    stopped_at, pt = int(match.group(1)), match.group(2)
    assert pt == f"weights/ctrl_iter_{stopped_at}.pt"
    assert sorted(p.name for p in (workdir / "weights").iterdir()) == [f"ctrl_iter_{stopped_at}.pt",
                                                                      f"ctrl_iter_{stopped_at}.pth"]
    state = _load(workdir / pt)
    assert state["kind"] == "training_state" and state["iteration"] == stopped_at
    # the saved step is the last one the log reported, and training picks up from it
    assert int(re.findall(r"\[epoch \d+ iter (\d+)\]", out)[-1]) == stopped_at
    assert train_in_process(opt, ["path.resume_path=auto", f"train.total_iter={stopped_at + 2}"]) == 0
    assert f"Resumed from {pt}: iteration {stopped_at}" in _log(workdir, "ctrl")
    assert _load(workdir / "weights" / f"ctrl_iter_{stopped_at + 2}.pt")["iteration"] == stopped_at + 2


def test_second_ctrl_c_aborts_at_once_without_saving(workdir: Path) -> None:
    # A slow step (about 0.1-0.3 s on 2 cores), so the second SIGINT comes while the first one's step runs.
    opt = write_options(workdir, "abort", **{"train.total_iter": 100000, "logger.print_freq": 1, "val": None,
                                            "logger.save_checkpoint_freq": 100000,
                                            "network_g.num_feat": 64, "network_g.num_block": 16,
                                            "datasets.train.gt_size": 32})
    with Child.train(workdir, "-opt", str(opt)) as child:
        child.wait_for("iter 1]")  # the handler is installed
        child.proc.send_signal(signal.SIGINT)
        # The handler's own line: the first SIGINT was taken by the trainer, not by default handling.
        child.wait_for("finishing the current step", stream="stderr")
        child.proc.send_signal(signal.SIGINT)
        rc, out, err = child.finish(timeout=60)
    assert rc == 130, (out[-2000:], err)
    assert "aborted" in err and "Traceback" not in err
    assert "stopped after iteration" not in out
    weights = workdir / "weights"
    assert not weights.exists() or not list(weights.iterdir())  # no checkpoint, no temp file
