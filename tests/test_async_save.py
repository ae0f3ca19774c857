"""Asynchronous checkpointing (``logger.async_save``): the same bytes as a synchronous save, a snapshot that no
longer moves with training, one save in flight, failures that stop the run like a synchronous one, kill -9 and
SIGTERM in the middle of a background write, and exact resume.

The child-process tests slow the background writer down with the test-only ``FRAMEWORK_TEST_SLOW_SAVE_S``
(a pause between writing the temp files and renaming them), so the signal or the kill lands while the write is
in flight, deterministically.
"""
from __future__ import annotations

import collections
import ctypes
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import pytest
import torch

from framework.checkpoint.io import TEST_SLOW_SAVE_ENV
from framework.checkpoint.manager import CheckpointManager, NewBest
from framework.checkpoint.safe_load import verify
from framework.checkpoint.writer import SnapshotBuffers, resolve_async_save, snapshot_state
from framework.checks import check_and_build
from framework.data.build import build_train_loader
from framework.options import load_options
from framework.trainer import Trainer

from .childproc import Child
from .test_gan import GAN
from .tinyrun import REPO, TRAIN_PY, load, train_in_process, write_options


def _saved_bytes(obj: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _tricky_state() -> Dict[str, Any]:
    """What makes torch.save's bytes depend on more than values: views and shared storages, one tensor object
    in two places, an OrderedDict with ``_metadata``, strides, offsets, empty tensors, dtypes, shared lists."""
    base = torch.arange(24, dtype=torch.float32)
    weights: "collections.OrderedDict[str, torch.Tensor]" = collections.OrderedDict()
    weights["conv.weight"] = base.view(2, 3, 4)
    weights["conv.bias"] = base[4:8]  # a view with an offset into the same storage
    weights["transposed"] = base.view(4, 6).t()  # strides
    weights["empty_a"] = torch.empty(0)
    weights["empty_b"] = torch.empty(0, dtype=torch.int64)
    weights._metadata = collections.OrderedDict({"": {"version": 1}})  # type: ignore[attr-defined]
    step = torch.tensor(7.0)
    shared_list = [1, 2, 3]
    return {"kind": "x", "model": {"net": weights, "again": weights["conv.weight"], "step": step,
                                   "step_again": step, "int": torch.arange(5, dtype=torch.int16)},
            "groups": [{"params": shared_list, "lr": 0.1, "betas": (0.9, 0.99)}, {"params": shared_list}],
            "half": torch.ones(3, dtype=torch.float16), "flag": torch.tensor([True, False])}


def test_a_snapshot_is_saved_byte_for_byte_like_the_live_state_and_no_longer_moves_with_it() -> None:
    state = _tricky_state()
    expected = _saved_bytes(state)
    buffers = SnapshotBuffers()
    snap = snapshot_state(state, buffers)
    assert _saved_bytes(snap) == expected
    assert snap["model"]["again"] is snap["model"]["net"]["conv.weight"]
    assert snap["model"]["net"]._metadata == state["model"]["net"]._metadata
    state["model"]["net"]["conv.weight"].add_(1)  # training goes on: the snapshot stays as it was
    state["groups"][0]["params"].append(4)
    assert _saved_bytes(snap) == expected
    # the next snapshot of the same state reuses the buffers: no new memory per save
    first = {id(buffer) for buffer, _pinned in buffers._buffers.values()}
    size = buffers.nbytes
    again = snapshot_state(state, buffers)
    assert {id(buffer) for buffer, _pinned in buffers._buffers.values()} == first and buffers.nbytes == size
    assert _saved_bytes(again) == _saved_bytes(state)


def test_a_synchronous_snapshot_of_a_cpu_state_is_the_live_state_itself() -> None:
    state = _tricky_state()
    assert snapshot_state(state) is state


def test_auto_is_on_except_on_a_one_core_cpu_run(monkeypatch: pytest.MonkeyPatch) -> None:
    import framework.checkpoint.writer as module

    monkeypatch.setattr(module, "usable_cores", lambda: 2)
    assert resolve_async_save("auto", torch.device("cpu")) is True
    monkeypatch.setattr(module, "usable_cores", lambda: 1)
    assert resolve_async_save("auto", torch.device("cpu")) is False
    assert resolve_async_save("auto", torch.device("cuda")) is True
    assert resolve_async_save(True, torch.device("cpu")) is True
    assert resolve_async_save(False, torch.device("cuda")) is False


def _trained_gan(workdir: Path) -> Trainer:
    """A tiny ESRGAN (G, EMA, D, two optimizers and schedulers) after two real steps."""
    opt = write_options(workdir, "g", **{**GAN, "train.total_iter": 4, "train.ema_decay": 0.9})
    options = load_options(str(opt))
    trainer = Trainer(options, check_and_build(options), show_progress=False)
    loader, _sampler = build_train_loader(options, trainer.train_set, trainer.device)
    batch = next(iter(loader))
    for iteration in (1, 2):
        trainer.model.train_step(batch, iteration)
        trainer.progress.step()
    trainer.batch = batch  # type: ignore[attr-defined]
    return trainer


def test_a_background_save_writes_the_bytes_a_synchronous_save_writes_while_training_goes_on(
        workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same files, bytes, best-model archive and returned record, only later."""
    trainer = _trained_gan(workdir)
    options = trainer.options.to_dict()
    managers = {mode: CheckpointManager(str(workdir / mode / "weights"), "g", save_freq=2,
                                        async_save=mode == "async", best_archive=str(workdir / mode / "best_model"))
                for mode in ("sync", "async")}
    for manager in managers.values():
        manager.track(model=trainer.model, progress=trainer.progress, best=trainer.best, options=options)
    state = managers["sync"].collect()  # one collection for both (it holds a time stamp)
    for manager in managers.values():
        manager.collect = lambda: state  # type: ignore[method-assign]
    best = NewBest("psnr", 30.5, {"psnr": 30.5, "ssim": 0.9})
    (sync_saved,) = managers["sync"].after_step(2, new_best=best)
    monkeypatch.setenv(TEST_SLOW_SAVE_ENV, "0.5")
    assert managers["async"].after_step(2, new_best=best) == []  # in flight: nothing to report yet
    assert managers["async"]._writer.busy
    trainer.model.train_step(trainer.batch, 3)  # type: ignore[attr-defined]  # the live state moves on
    (async_saved,) = managers["async"].finish()
    assert async_saved.interval == managers["async"].iter_paths(2) and async_saved.best is not None
    as_sync = [line.replace(str(workdir / "async"), str(workdir / "sync")) for line in async_saved.messages()]
    assert as_sync == sync_saved.messages() and len(as_sync) == 2 and "archived" in as_sync[0]
    names = ["g_iter_2.pt", "g_iter_2.pth", "g_best.pt", "g_best.pth"]
    for name in names:
        assert (workdir / "async" / "weights" / name).read_bytes() == \
            (workdir / "sync" / "weights" / name).read_bytes(), name
    assert sorted(os.listdir(workdir / "async" / "weights")) == sorted(names)
    for mode in ("sync", "async"):
        archive = workdir / mode / "best_model"
        assert (archive / "g_best.pth").read_bytes() == (workdir / mode / "weights" / "g_best.pth").read_bytes()
        record = json.loads((archive / "best_records.json").read_text())["best"]
        assert (record["iteration"], record["metric"], record["metrics"]) == (2, "psnr", {"psnr": 30.5, "ssim": 0.9})


def test_the_next_save_waits_for_the_one_in_flight_and_the_log_says_so(
        workdir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    trainer = _trained_gan(workdir)
    manager = CheckpointManager(str(workdir / "w"), "g", save_freq=1, keep_last=1, async_save=True)
    manager.track(model=trainer.model, progress=trainer.progress, best=trainer.best,
                  options=trainer.options.to_dict())
    monkeypatch.setenv(TEST_SLOW_SAVE_ENV, "0.3")
    manager.after_step(2)
    trainer.progress.step()
    with caplog.at_level("INFO", logger="framework"):
        manager.after_step(3)
    assert any("Waited" in r.getMessage() and "previous checkpoint write" in r.getMessage() for r in caplog.records)
    manager.finish()
    assert sorted(os.listdir(workdir / "w")) == ["g_iter_3.pt", "g_iter_3.pth"]  # pruned by the writer
    verify(str(workdir / "w" / "g_iter_3.pt"))


def test_exact_resume_with_background_saves(workdir: Path) -> None:
    """Stopped at 5 (mid-epoch) and resumed to 9 with async saving == an uninterrupted run, bit for bit."""
    common = {"train.total_iter": 9, "train.ema_decay": 0.9, "logger.save_checkpoint_freq": 2,
              "val.val_freq": 1, "logger.async_save": True}
    full = write_options(workdir, "full", **common)
    part = write_options(workdir, "part", **common)
    assert train_in_process(full) == 0
    assert train_in_process(part, ["train.total_iter=5"]) == 0
    assert load(workdir / "weights" / "part_iter_5.pt")["iteration"] == 5
    assert train_in_process(part, ["path.resume_path=auto"]) == 0
    weights = workdir / "weights"
    assert (weights / "part_iter_9.pth").read_bytes() == (weights / "full_iter_9.pth").read_bytes()
    a, b = load(weights / "part_iter_9.pt"), load(weights / "full_iter_9.pt")
    assert _saved_bytes(a["model"]) == _saved_bytes(b["model"]) and a["best"] == b["best"]
    archived = workdir / "experiments" / "part" / "best_model" / "part_best.pth"
    assert archived.read_bytes() == (weights / "part_best.pth").read_bytes()


# -------------------------------------------------------------------------------------- child processes


def _slow_child(workdir: Path, opt: Path, seconds: float, *extra: str,
                preexec_fn: Optional[Callable[[], None]] = None) -> Child:
    """train.py whose background writer pauses ``seconds`` before renaming its temp files."""
    return Child([sys.executable, TRAIN_PY, "-opt", str(opt), *extra, "--no-progress"], cwd=workdir,
                 env={TEST_SLOW_SAVE_ENV: str(seconds)}, preexec_fn=preexec_fn)


def _wait_for_temp(weights: Path, stem: str, child: Child, timeout: float = 60) -> None:
    """Until the temp file of ``stem`` (``name_iter_8.pt``) exists: its background write is in flight."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if weights.exists() and any(n.startswith(f".{stem}.tmp.") for n in os.listdir(weights)):
            return
        if child.proc.poll() is not None:
            raise AssertionError(f"the run ended first: {child.output('stderr')[-2000:]}")
        time.sleep(0.005)
    raise AssertionError(f"no temp file of {stem} appeared in {weights}")


def _real_files(weights: Path) -> List[str]:
    return sorted(n for n in os.listdir(weights) if not n.startswith("."))


def test_kill_9_during_a_background_write_leaves_the_previous_checkpoint_and_auto_resumes(workdir: Path) -> None:
    opt = write_options(workdir, "k", **{"train.total_iter": 12, "logger.save_checkpoint_freq": 4,
                                        "logger.async_save": True, "val": None})
    weights = workdir / "weights"
    with _slow_child(workdir, opt, 1.0) as child:
        child.wait_for("Saved checkpoint weights/k_iter_4.pt")
        _wait_for_temp(weights, "k_iter_8.pt", child)
        child.kill()  # SIGKILL, mid-write
    assert _real_files(weights) == ["k_iter_4.pt", "k_iter_4.pth"]
    for name in _real_files(weights):
        verify(str(weights / name))
    rc = subprocess.run([sys.executable, TRAIN_PY, "-opt", str(opt), "--auto-resume", "--no-progress"],
                        cwd=workdir, capture_output=True, text=True, timeout=120,
                        env={**os.environ, "PYTHONPATH": str(REPO)})
    assert rc.returncode == 0, rc.stderr
    assert "Resumed from weights/k_iter_4.pt" in rc.stdout
    assert "temp file(s) of an interrupted save" in rc.stdout
    assert not [n for n in os.listdir(weights) if ".tmp." in n]
    assert load(weights / "k_iter_12.pt")["iteration"] == 12


def test_sigterm_during_a_background_write_waits_for_it_and_exits_0(workdir: Path) -> None:
    opt = write_options(workdir, "s", **{"train.total_iter": 400, "logger.save_checkpoint_freq": 4,
                                        "logger.async_save": True, "val": None})
    weights = workdir / "weights"
    with _slow_child(workdir, opt, 1.5) as child:
        _wait_for_temp(weights, "s_iter_4.pt", child)
        child.proc.send_signal(signal.SIGTERM)
        rc, out, err = child.finish(timeout=60)
    assert rc == 0, err
    assert "Saved checkpoint weights/s_iter_4.pt and weights/s_iter_4.pth" in out
    stopped = [n for n in _real_files(weights) if n.endswith(".pt")]
    assert stopped[0] == "s_iter_4.pt"
    for name in _real_files(weights):
        verify(str(weights / name))  # the write in flight and the stop save: both complete
    assert len(stopped) in (1, 2) and all(f"{n}h" in _real_files(weights) for n in stopped)
    assert "SIGTERM: stopped after iteration" in out
    assert not [n for n in os.listdir(weights) if ".tmp." in n]


def _without_dac_override() -> None:
    """In the child, before it starts: drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the capability
    bounding set, so root's new program obeys file permissions like any user."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


@pytest.mark.parametrize("verbose", [False, True], ids=["", "verbose"])
def test_a_weights_folder_made_read_only_during_a_background_write_stops_the_run_with_one_line(
        workdir: Path, verbose: bool) -> None:
    """One ``error:`` line; with --verbose the exception chain first, from the OS's refusal on the writer
    thread to the error the loop stopped with."""
    opt = write_options(workdir, "ro", **{"train.total_iter": 400, "logger.save_checkpoint_freq": 4,
                                         "logger.async_save": True, "val": None})
    weights = workdir / "weights"
    flags = ["--verbose"] if verbose else []
    # root writes into read-only folders: a root test run drops that capability for the child (Linux)
    with _slow_child(workdir, opt, 1.0, *flags,
                     preexec_fn=_without_dac_override if os.geteuid() == 0 else None) as child:
        _wait_for_temp(weights, "ro_iter_4.pt", child)
        weights.chmod(0o555)
        try:
            rc, out, err = child.finish(timeout=60)
        finally:
            weights.chmod(0o755)
    lines = err.strip().splitlines()
    assert rc == 2, err
    if verbose:
        chain = err[:err.rindex(lines[-1])]
        assert chain.startswith("Traceback (most recent call last)"), err
        assert "PermissionError: [Errno 13]" in chain, err  # the original cause, with its traceback
        assert chain.count("The above exception was the direct cause of the following exception") == 2, err
        assert "CheckpointWriteError: " in chain and 'trainer.py", line' in chain, err
        lines = lines[-1:]
    assert len(lines) == 1 and lines[0].startswith("error: ") and ("Traceback" in err) == verbose, err
    assert "ro_iter_4.pt" in lines[0] and "checkpoint not written" in lines[0] and "--auto-resume" in lines[0]
    assert not [n for n in _real_files(weights) if "iter_4" in n]  # nothing half-written under a real name


WRITER_EXIT_SCRIPT = """
import sys, time
from framework.checkpoint.writer import BackgroundWriter
writer = BackgroundWriter()
writer.start(lambda: None)
writer.wait()
def slow_write():
    time.sleep(1.0)
    open(sys.argv[1], "w").write("written")
writer.start(slow_write)
# the main thread ends here without wait() or stop()
"""


def test_the_writer_thread_finishes_a_write_in_flight_at_exit_and_then_lets_the_process_end(tmp_path: Path) -> None:
    """The long-lived writer thread is not a daemon (a write in flight is completed when the main thread ends
    without waiting for it), and it ends by itself once the main thread is gone, so the process exits."""
    target = tmp_path / "written.txt"
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", WRITER_EXIT_SCRIPT, str(target)], cwd=REPO, timeout=60,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert target.read_text() == "written"
    assert time.perf_counter() - start < 30
