"""Several processes under real torchrun (scripts/dist_train.sh, gloo on the CPU, 2 processes): the checkpoint
contract, stopping together, resume on the same and on another number of processes, a failing rank, a killed
worker restarted by torchrun, and validation equal to single-process validation."""
from __future__ import annotations

import csv
import os
import signal
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import pytest
import torch

from framework.checkpoint.io import TEST_SLOW_SAVE_ENV
from framework.checkpoint.safe_load import verify
from framework.checks import check_and_build
from framework.data.build import build_val_loader
from framework.options import load_options
from framework.validation import evaluate

from .childproc import Child
from .test_gan import gan_options
from .tinyrun import REPO, load, train_in_process, write_options

pytestmark = pytest.mark.slow
DIST_TRAIN = str(REPO / "scripts" / "dist_train.sh")


def torchrun(workdir: Path, opt: Path, *args: str, max_restarts: int = 0,
             env: Optional[Dict[str, str]] = None) -> Child:
    """``scripts/dist_train.sh 2 OPT ARGS`` (torchrun, 2 CPU processes) with bounded reads of its output."""
    return Child(["bash", DIST_TRAIN, "2", str(opt), *args, "--no-progress"], cwd=workdir,
                 env={"PYTHON": sys.executable, "MAX_RESTARTS": str(max_restarts), "SHUTDOWN_TIMEOUT": "60",
                      **(env or {})}, own_group=True)


def finish(child: Child, timeout: float = 180) -> str:
    rc, out, err = child.finish(timeout=timeout)
    assert rc == 0, f"rc {rc}\n{out[-3000:]}\n{err[-3000:]}"
    return out


def _files(folder: Path) -> List[str]:
    return sorted(p.name for p in folder.iterdir())


def _layout(pth: Path) -> Dict[str, tuple]:
    return {k: (tuple(v.shape), v.stride(), v.dtype) for k, v in load(pth)["params"].items()}


def test_sigterm_stops_all_ranks_at_one_step_and_auto_resume_is_bitwise(workdir: Path) -> None:
    common = {"train.total_iter": 200, "logger.save_checkpoint_freq": 1000, "logger.print_freq": 1,
              "val.val_freq": 100}
    ref = write_options(workdir, "ref", **common, **{"logger.use_tb_logger": True, "val.show_crop": 16})
    sig = write_options(workdir, "sig", **common)
    with torchrun(workdir, ref) as child:
        out = finish(child)
    assert "World size 2; global batch per iteration 4 (2 per process x 2 process(es))" in out
    with torchrun(workdir, sig) as child:
        child.wait_for("iter 20]", timeout=120)
        os.killpg(child.proc.pid, signal.SIGTERM)  # as Slurm or Ctrl-C: the script's whole process group
        rc, out, err = child.finish(timeout=120)
    assert rc == 0, err[-3000:]  # torchrun reports 1 after a signal; every rank ended cleanly: the script says 0
    assert "all 2 processes of this node ended cleanly (stopped and saved): exit 0" in err
    assert "ChildFailedError" not in err, err[-3000:]  # the workers themselves exited 0
    assert out.count("SIGTERM: stopped after iteration") == 1, out[-3000:]  # rank 0 alone logs
    weights = workdir / "weights"
    saved = [n for n in _files(weights) if n.startswith("sig_iter_")]
    assert len(saved) == 2 and saved[0].endswith(".pt") and saved[1].endswith(".pth"), saved  # saved once
    stopped_at = load(weights / saved[0])["iteration"]
    assert 20 <= stopped_at < 200
    assert not [n for n in _files(weights) if ".tmp." in n or n.endswith(".lock")]
    assert len(list((workdir / "experiments" / "sig").glob("train_*.log"))) == 1  # one log: rank 0's
    with torchrun(workdir, sig, "--auto-resume") as child:
        out = finish(child)
    assert f"Resumed from weights/sig_iter_{stopped_at}.pt" in out
    assert (weights / "sig_iter_200.pth").read_bytes() == (weights / "ref_iter_200.pth").read_bytes()
    both = load(weights / "sig_iter_200.pt")
    assert len(both["rng"]["per_rank"]) == 2 and both["data_position"]["world_size"] == 2
    assert not any(k.startswith(("module.", "_orig_mod.")) for k in both["model"]["networks"]["net_g"])
    # validation under DDP (each rank half the images, gathered) == single-process validation, exactly
    options = load_options(str(ref))
    built = check_and_build(options)
    built.model.load_pretrained(load(weights / "ref_best.pth")["params"], strict=True)
    loader = build_val_loader(options, "val", built.datasets["val"], torch.device("cpu"))
    single = evaluate(built.model.inference, loader, options.val.metrics)
    best = load(weights / "ref_best.pt")["best"]["psnr"]
    assert single.averages["psnr"] == best["value"]
    # rank 0's per-image table holds both ranks' images, in set order, with the single-process values
    with open(workdir / "experiments" / "ref" / "per_image_val.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["iteration"], r["image"]) for r in rows] == [(i, n) for i in ("100", "200") for n in ("0000", "0001")]
    assert {r["image"]: float(r["psnr"]) for r in rows if r["iteration"] == str(best["iteration"])} == \
        {name: values["psnr"] for name, values in single.by_name().items()}
    # and the strips of both (image 0001 is made by rank 1 and gathered)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(workdir / "experiments" / "ref" / "tb_logger"), size_guidance={"images": 0})
    events.Reload()
    assert {tag: [(e.step, e.width) for e in events.Images(tag)] for tag in events.Tags()["images"]} == \
        {f"val/val/{n}": [(100, 48), (200, 48)] for n in ("0000", "0001")}


def test_two_processes_equal_one_with_twice_the_batch_and_resume_on_one(workdir: Path) -> None:
    """Gradient averaging: 2 x batch 1 == 1 x batch 2 on the same samples, and with accumulation 2 x 2 x 1 ==
    1 x 4. The 2-process checkpoint then resumes on 1 process from the same global sample position, and says
    the order differs."""
    common = {"train.total_iter": 4, "val": None, "datasets.val": ..., "logger.save_checkpoint_freq": 1,
              "train.optim_g": {"type": "SGD", "lr": 0.05, "momentum": 0.9}, "train.scheduler": None,
              "datasets.train.use_hflip": False, "datasets.train.use_rot": False}
    two = write_options(workdir, "two", **common, **{"datasets.train.batch_size_per_gpu": 1})
    one = write_options(workdir, "one", **common, **{"datasets.train.batch_size_per_gpu": 2})
    with torchrun(workdir, two) as child:
        finish(child)
    assert train_in_process(one) == 0
    weights = workdir / "weights"
    a, b = load(weights / "two_iter_4.pth")["params"], load(weights / "one_iter_4.pth")["params"]
    assert list(a) == list(b)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)
    assert _layout(weights / "two_iter_4.pth") == _layout(weights / "one_iter_4.pth")
    # accumulation under DDP (no_sync on the first micro-batch): 2 processes x 2 micro-batches of 1 == 1 x 4
    acc = write_options(workdir, "acc", **common, **{"datasets.train.batch_size_per_gpu": 1,
                                                     "train.accumulate_steps": 2})
    four = write_options(workdir, "four", **common, **{"datasets.train.batch_size_per_gpu": 4})
    with torchrun(workdir, acc) as child:
        out = finish(child)
    assert "global batch per iteration 4 (1 per process x 2 accumulated micro-batches x 2 process(es))" in out
    assert train_in_process(four) == 0
    a, b = load(weights / "acc_iter_4.pth")["params"], load(weights / "four_iter_4.pth")["params"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)
    # 2 -> 1 process from iteration 1 (2 samples into epoch 0)
    assert train_in_process(two, ["path.resume_path=weights/two_iter_1.pt"]) == 0
    log = max((workdir / "experiments" / "two").glob("train_*.log"), key=os.path.getmtime).read_text()
    assert "written by 2 process(es), this run has 1" in log and "2 samples into epoch 0" in log
    assert "data order from here on differs from an uninterrupted 2-process run" in log
    assert _layout(weights / "two_iter_4.pth") == _layout(weights / "one_iter_4.pth")
    assert load(weights / "two_iter_4.pt")["data_position"]["world_size"] == 1


def test_a_rank_that_raises_ends_the_job_promptly_with_its_message(workdir: Path) -> None:
    bad = workdir / "data" / "train" / "HR" / "0003.png"
    data = bad.read_bytes()
    bad.write_bytes(data[:33] + b"\0" * (len(data) - 33))  # the header checks pass, the pixels do not decode
    opt = write_options(workdir, **{"train.total_iter": 500, "val": None, "datasets.val": ...,
                                    "logger.save_checkpoint_freq": 1000})
    with torchrun(workdir, opt) as child:
        child.wait_for("0003.png", stream="stderr", timeout=120)  # the failing rank's message
        failed = time.monotonic()
        rc, out, err = child.finish(timeout=90)
    assert rc != 0 and time.monotonic() - failed < 60, (rc, err[-3000:])
    assert any(line.startswith("[rank ") and "error: " in line and "0003.png" in line
               for line in err.splitlines()), err[-3000:]
    weights = workdir / "weights"
    assert not weights.exists() or not [n for n in _files(weights) if ".tmp." in n]


def _children(pid: int) -> List[int]:
    children = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as fh:
            children += [int(p) for p in fh.read().split()]
    return children


def _worker_of_rank(launcher_pid: int, rank: int) -> int:
    """The pid of the torchrun worker (a descendant of the launch script) whose environment says RANK=rank."""
    seen, todo = [], _children(launcher_pid)
    while todo:
        pid = todo.pop()
        seen.append(pid)
        with open(f"/proc/{pid}/environ", "rb") as fh:
            if f"RANK={rank}".encode() in fh.read().split(b"\0"):
                return pid
        todo += _children(pid)
    raise AssertionError(f"no worker of rank {rank} among {seen}")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_stop_where_one_rank_failed_still_exits_non_zero(workdir: Path) -> None:
    """SIGTERM to the group just after rank 1 died (killed, as by the OOM killer): not a clean stop."""
    opt = write_options(workdir, "fail", **{"train.total_iter": 500, "val": None, "datasets.val": ...,
                                            "logger.save_checkpoint_freq": 1000, "logger.print_freq": 1})
    with torchrun(workdir, opt) as child:
        child.wait_for("iter 3]", timeout=120)
        os.kill(_worker_of_rank(child.proc.pid, 1), signal.SIGKILL)
        os.killpg(child.proc.pid, signal.SIGTERM)
        rc, out, err = child.finish(timeout=120)
    assert rc != 0, (out[-2000:], err[-3000:])
    assert "ended cleanly" not in err


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_killed_worker_is_restarted_by_torchrun_and_the_group_finishes(workdir: Path) -> None:
    opt = write_options(workdir, "rs", **{"train.total_iter": 200, "val": None, "datasets.val": ...,
                                          "logger.save_checkpoint_freq": 20, "logger.print_freq": 1})
    with torchrun(workdir, opt, max_restarts=1) as child:
        child.wait_for("Saved checkpoint weights/rs_iter_20.pt", timeout=120)
        os.kill(_worker_of_rank(child.proc.pid, 1), signal.SIGKILL)
        out = finish(child, timeout=240)
    assert "torchrun restarted the workers (restart 1 of at most 1): continuing from the newest valid " \
           "checkpoint" in out
    assert "Resumed from weights/rs_iter_" in out and "Training finished at iteration 200" in out
    assert load(workdir / "weights" / "rs_iter_200.pt")["iteration"] == 200
    assert not [n for n in _files(workdir / "weights") if ".tmp." in n]


def test_an_esrgan_trains_under_ddp_and_resumes_bitwise(workdir: Path) -> None:
    """Both networks under DDP (the discriminator's two backward passes per step, the generator's GAN loss
    through the frozen plain discriminator): stopped at 3 and resumed == uninterrupted, clean saved keys."""
    common = {"train.total_iter": 6, "logger.save_checkpoint_freq": 100, "val.val_freq": 3, "train.net_d_iters": 2}
    full, part = gan_options(workdir, "full", **common), gan_options(workdir, "part", **common)
    with torchrun(workdir, full) as child:
        finish(child)
    with torchrun(workdir, part, "--set", "train.total_iter=3") as child:
        finish(child)
    with torchrun(workdir, part, "--auto-resume") as child:
        finish(child)
    weights = workdir / "weights"
    assert (weights / "part_iter_6.pth").read_bytes() == (weights / "full_iter_6.pth").read_bytes()
    a, b = load(weights / "full_iter_6.pt"), load(weights / "part_iter_6.pt")
    for net in ("net_g", "net_d"):
        state = a["model"]["networks"][net]
        assert not any(k.startswith(("module.", "_orig_mod.")) for k in state)
        assert all(torch.equal(state[k], b["model"]["networks"][net][k]) for k in state)


def test_background_saves_under_torchrun_write_what_synchronous_saves_write(workdir: Path) -> None:
    """Rank 0's writer thread, slowed down so every save point waits for the previous write: the ranks keep in
    step (the barrier after each wait), the files verify, and training is what a synchronous run trains."""
    common = {"train.total_iter": 8, "logger.save_checkpoint_freq": 2, "val.val_freq": 4, "logger.keep_last": 2}
    sync = write_options(workdir, "sync", **common, **{"logger.async_save": False})
    bg = write_options(workdir, "bg", **common, **{"logger.async_save": True})
    with torchrun(workdir, sync) as child:
        assert "checkpoints: written in the loop" in finish(child)
    with torchrun(workdir, bg, env={TEST_SLOW_SAVE_ENV: "0.5"}) as child:
        out = finish(child)
    assert "checkpoints: written in the background (logger.async_save: true)" in out
    assert "for the previous checkpoint write to finish" in out
    assert "Saved checkpoint weights/bg_iter_8.pt" in out and "Training finished at iteration 8" in out
    weights = workdir / "weights"
    names = sorted(n for n in _files(weights) if n.startswith("bg_"))
    assert names == ["bg_best.pt", "bg_best.pth", "bg_iter_6.pt", "bg_iter_6.pth", "bg_iter_8.pt", "bg_iter_8.pth"]
    for name in names:
        verify(str(weights / name))
    assert (weights / "bg_iter_8.pth").read_bytes() == (weights / "sync_iter_8.pth").read_bytes()
    assert (workdir / "experiments" / "bg" / "best_model" / "bg_best.pth").read_bytes() == \
        (weights / "bg_best.pth").read_bytes()
