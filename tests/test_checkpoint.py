"""The checkpoint contract: formats, names, exact resume, crash safety, verification, safe loading."""
from __future__ import annotations

import dataclasses
import errno
import json
import os
import pickle
import random
import re
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from framework.checkpoint import io as ckpt_io
from framework.checkpoint.errors import CheckpointError
from framework.checkpoint.io import atomic_save
from framework.checkpoint.manager import CheckpointManager
from framework.checkpoint.safe_load import verify
from framework.options import load_options
from framework.progress import BestRecord, TrainingProgress
from framework.models.sr_model import SRModel
from framework.validation import Evaluation

from .childproc import Child
from .tinyrun import load as _load, REPO, run_train, train_in_process, write_options


def _snapshot(folder: Path) -> dict:
    """{relative path: (size, mtime_ns)} of every file below folder."""
    out = {}
    if folder.exists():
        for p in folder.rglob("*"):
            if p.is_file():
                st = p.stat()
                out[str(p.relative_to(folder))] = (st.st_size, st.st_mtime_ns)
    return out


# --------------------------------------------------------------------------------------------- formats and names


def test_formats_names_best_archive_and_final(workdir: Path) -> None:
    opt = write_options(workdir, **{"train.total_iter": 10})
    assert train_in_process(opt) == 0
    weights = workdir / "weights"
    for tag in ("iter_4", "iter_8", "iter_10", "best"):  # 10: the final checkpoint, off the 4-cadence
        pth = _load(weights / f"tiny_{tag}.pth")
        assert list(pth) == ["params"]
        assert all(isinstance(v, torch.Tensor) for v in pth["params"].values())
        pt = _load(weights / f"tiny_{tag}.pt")
        assert pt["kind"] == "training_state" and pt["format_version"] == 2
        for key in ("iteration", "epoch", "data_position", "model", "best", "options", "rng",
                    "framework_version", "torch_version"):
            assert key in pt, key
        assert set(pt["model"]) == {"networks", "ema", "optimizers", "schedulers", "scalers"}
        assert set(pt["model"]["networks"]) == {"net_g"} and set(pt["model"]["optimizers"]) == {"optim_g"}
        assert pt["options"]["train"]["total_iter"] == 10
        assert set(pt["rng"]) >= {"python", "numpy", "torch"}
    assert _load(weights / "tiny_iter_10.pt")["iteration"] == 10
    best = _load(weights / "tiny_best.pt")["best"]["psnr"]
    assert set(best) == {"value", "iteration"}
    archived = workdir / "experiments" / "tiny" / "best_model"
    assert (archived / "tiny_best.pth").read_bytes() == (weights / "tiny_best.pth").read_bytes()
    import json
    record = json.loads((archived / "best_records.json").read_text())
    assert record["best"]["iteration"] == best["iteration"]
    assert record["best"]["metrics"]["psnr"] == pytest.approx(best["value"])


def test_full_state_is_about_three_times_the_weights_on_the_example_network(tmp_path: Path) -> None:
    options = load_options(str(REPO / "options/train/example.yml"))
    model = SRModel(options, torch.device("cpu"))
    lq = torch.rand(2, 3, 16, 16)
    model.train_step({"lq": lq, "gt": torch.rand(2, 3, 32, 32)}, 1)
    progress = TrainingProgress(batch_size=2)
    manager = CheckpointManager(str(tmp_path), "ratio", save_freq=1)
    manager.track(model=model, progress=progress, best=BestRecord(), options=options.to_dict())
    progress.step()
    (saved,) = manager.after_step(1)
    assert saved.interval is not None
    pt, pth = saved.interval
    ratio = os.path.getsize(pt) / os.path.getsize(pth)
    assert 2.8 <= ratio <= 3.2, ratio


# --------------------------------------------------------------------------------------------------- exact resume


@pytest.mark.parametrize("workers,ema,stop_at", [(0, 0.0, 4), (0, 0.9, 5), (2, 0.0, 5), (2, 0.9, 4)])
def test_exact_resume_is_bitwise(workdir: Path, workers: int, ema: float, stop_at: int) -> None:
    """Stopped at N (5 = mid-epoch: 2 batches an epoch) and resumed to 9 == an uninterrupted run to 9."""
    # Validation at every iteration: the stopped run validates at its last one (stop_at), so with fewer
    # validations the two best records would agree only if that iteration happened not to be the best.
    common = {"train.total_iter": 9, "train.ema_decay": ema, "datasets.train.num_worker_per_gpu": workers,
              "logger.save_checkpoint_freq": 100, "val.val_freq": 1}
    full = write_options(workdir, "full", **common)
    part = write_options(workdir, "part", **common)
    assert train_in_process(full) == 0
    assert train_in_process(part, [f"train.total_iter={stop_at}"]) == 0
    stopped = _load(workdir / "weights" / f"part_iter_{stop_at}.pt")
    assert stopped["iteration"] == stop_at
    assert train_in_process(part, ["path.resume_path=auto"]) == 0
    a = (workdir / "weights" / "full_iter_9.pth").read_bytes()
    b = (workdir / "weights" / "part_iter_9.pth").read_bytes()
    assert a == b
    sa, sb = _load(workdir / "weights" / "full_iter_9.pt"), _load(workdir / "weights" / "part_iter_9.pt")
    for group in ("networks", "ema"):
        assert set(sa["model"][group]) == set(sb["model"][group])
        for net, weights in sa["model"][group].items():
            assert all(torch.equal(weights[k], sb["model"][group][net][k]) for k in weights)
    assert sa["best"] == sb["best"]


def test_resume_skips_without_loading(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from framework.data import datasets

    opt = write_options(workdir, **{"train.total_iter": 5, "logger.save_checkpoint_freq": 100})
    assert train_in_process(opt) == 0  # stops mid-epoch 2 (2 batches of 2 per epoch)
    loaded = []
    original = datasets.PairedImageDataset.load_pair
    monkeypatch.setattr(datasets.PairedImageDataset, "load_pair",
                        lambda self, i: loaded.append(i) or original(self, i))
    assert train_in_process(opt, ["path.resume_path=auto", "train.total_iter=6", "val=null"]) == 0
    # Start-up checks read the first sample of the train and val sets; then one step of batch 2. A resume
    # that loaded and threw away the epoch's first batch would read 2 more.
    assert len(loaded) == 2 + 2, loaded


def test_raising_total_iter_extends_a_finished_run(workdir: Path) -> None:
    opt = write_options(workdir, **{"train.total_iter": 6})
    assert train_in_process(opt) == 0
    assert train_in_process(opt, ["train.total_iter=10", "path.resume_path=auto"]) == 0
    assert _load(workdir / "weights" / "tiny_iter_10.pt")["iteration"] == 10


def test_resume_with_another_network_is_refused(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    opt = write_options(workdir, **{"train.total_iter": 4})
    assert train_in_process(opt) == 0
    before = _snapshot(workdir / "weights")
    assert train_in_process(opt, ["path.resume_path=weights/tiny_iter_4.pt", "network_g.num_feat=16"]) == 2
    err = capsys.readouterr().err
    assert "network_g" in err and "pretrain_path" in err and "Traceback" not in err
    assert _snapshot(workdir / "weights") == before


# ------------------------------------------------------------------------------------------ bad files, exit code 2


def _malicious(path: Path, marker: Path) -> None:
    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    with open(path, "wb") as fh:
        pickle.dump({"params": Evil()}, fh)


def _corrupt_variants(good: Path, folder: Path, marker: Path) -> dict:
    data = good.read_bytes()
    variants = {}
    (folder / "truncated.pt").write_bytes(data[: len(data) // 2])
    variants["truncated"] = folder / "truncated.pt"
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF
    (folder / "flipped.pt").write_bytes(bytes(flipped))
    variants["flipped"] = folder / "flipped.pt"
    (folder / "empty.pt").write_bytes(b"")
    variants["empty"] = folder / "empty.pt"
    (folder / "text.pt").write_text("this is not a checkpoint\n")
    variants["text"] = folder / "text.pt"
    _malicious(folder / "evil.pt", marker)
    variants["malicious"] = folder / "evil.pt"
    torch_evil = folder / "evil_zip.pth"
    torch.save({"params": {"w": torch.zeros(1)}, "x": _EvilReduce(str(marker))}, torch_evil)
    variants["malicious_zip"] = torch_evil
    return variants


class _EvilReduce:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


# Every bad file for both keys, except a .pth for pretrain_path: that is the right kind of file there.
_BAD_CASES = [pytest.param(kind, key, id=f"{kind}-{key}")
              for key in ("resume_path", "pretrain_path")
              for kind in ("truncated", "flipped", "empty", "text", "malicious", "malicious_zip", "pth")
              if not (kind == "pth" and key == "pretrain_path")]


@pytest.mark.parametrize("kind,key", _BAD_CASES)
def test_bad_checkpoint_gives_one_line_and_exit_2(workdir: Path, capsys: pytest.CaptureFixture,
                                                  kind: str, key: str) -> None:
    opt = write_options(workdir, **{"train.total_iter": 4})
    assert train_in_process(opt) == 0
    capsys.readouterr()
    bad_dir = workdir / "bad"
    bad_dir.mkdir()
    marker = workdir / "PWNED"
    variants = _corrupt_variants(workdir / "weights" / "tiny_iter_4.pt", bad_dir, marker)
    variants["pth"] = workdir / "weights" / "tiny_iter_4.pth"
    before = {**_snapshot(workdir / "weights"), **_snapshot(workdir / "experiments")}
    code = train_in_process(opt, [f"path.{key}={variants[kind]}"])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    assert str(variants[kind]) in lines[0]
    if kind == "pth":
        assert "pretrain_path" in lines[0] and "weights only" in lines[0]
    assert not marker.exists(), "the malicious pickle ran code"
    after = {**_snapshot(workdir / "weights"), **_snapshot(workdir / "experiments")}
    assert after == before


def test_verify_detects_every_flipped_region(tmp_path: Path) -> None:
    path = tmp_path / "x_iter_1.pth"
    atomic_save({"params": {"w": torch.arange(4096, dtype=torch.float32)}}, str(path))
    verify(str(path))
    data = path.read_bytes()
    for position in range(0, len(data), max(1, len(data) // 97)):
        damaged = bytearray(data)
        damaged[position] ^= 0x5A
        path.write_bytes(bytes(damaged))
        try:
            obj = verify(str(path))
        except CheckpointError:
            continue
        # A flip the zip layer cannot see (e.g. in unused header padding) must leave the content intact.
        assert torch.equal(obj["params"]["w"], torch.arange(4096, dtype=torch.float32)), position


def test_auto_resume_falls_back_to_previous_valid_checkpoint(workdir: Path) -> None:
    opt = write_options(workdir, **{"train.total_iter": 8})
    assert train_in_process(opt) == 0
    newest = workdir / "weights" / "tiny_iter_8.pt"
    newest.write_bytes(newest.read_bytes()[:1000])
    assert train_in_process(opt, ["path.resume_path=auto", "train.total_iter=9"]) == 0
    log = "\n".join(p.read_text() for p in (workdir / "experiments" / "tiny").glob("train_*.log"))
    assert "Skipping" in log and "tiny_iter_8.pt" in log
    assert "Resumed from weights/tiny_iter_4.pt" in log


# -------------------------------------------------------------------------------------------- retention, orphans


def test_keep_last_prunes_after_writing_and_never_best(workdir: Path) -> None:
    opt = write_options(workdir, **{"train.total_iter": 12, "logger.save_checkpoint_freq": 2,
                                    "logger.keep_last": 2})
    assert train_in_process(opt) == 0
    names = sorted(p.name for p in (workdir / "weights").iterdir())
    assert names == ["tiny_best.pt", "tiny_best.pth", "tiny_iter_10.pt", "tiny_iter_10.pth",
                     "tiny_iter_12.pt", "tiny_iter_12.pth"]


def test_orphan_temp_files_are_removed_at_start(workdir: Path) -> None:
    weights = workdir / "weights"
    weights.mkdir()
    orphan = weights / ".tiny_iter_4.pt.tmp.12345"
    orphan.write_bytes(b"partial")
    foreign = weights / ".other_iter_4.pt.tmp.12345"
    foreign.write_bytes(b"someone else's")
    opt = write_options(workdir, **{"train.total_iter": 2})
    assert train_in_process(opt) == 0
    assert not orphan.exists() and foreign.exists()


# ------------------------------------------------------------------------------------------------------- disk full


# torch's zip writer reports a full disk as a RuntimeError from C++; Python's file layer as OSError(ENOSPC)
_DISK_FULL = {"oserror": (OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), "No space left on device"),
              "torch": (RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0"),
                        "unexpected pos")}


@pytest.mark.parametrize("kind", sorted(_DISK_FULL))
def test_enospc_keeps_earlier_checkpoints(workdir: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture, kind: str) -> None:
    opt = write_options(workdir, **{"train.total_iter": 8})
    real_save = torch.save
    error, reason = _DISK_FULL[kind]

    def failing_save(obj, f, *args, **kwargs):
        if isinstance(obj, dict) and obj.get("iteration") == 8:
            f.write(b"x" * 100)  # part of the file reached the disk, then the disk filled up
            raise error
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(ckpt_io.torch, "save", failing_save)
    assert train_in_process(opt) == 2
    err = capsys.readouterr().err
    assert reason in err and "MiB free" in err and "tiny_" in err and "Traceback" not in err
    monkeypatch.setattr(ckpt_io.torch, "save", real_save)
    for name in ("tiny_iter_4.pt", "tiny_iter_4.pth", "tiny_best.pth"):
        verify(str(workdir / "weights" / name))
    assert not [p for p in (workdir / "weights").iterdir() if ".tmp." in p.name]


# ------------------------------------------------------------------------------------------------------- fine-tune


def test_finetune_from_prefixed_pth_and_from_pt(workdir: Path) -> None:
    opt = write_options(workdir, "src", **{"train.total_iter": 4})
    assert train_in_process(opt) == 0
    params = _load(workdir / "weights" / "src_iter_4.pth")["params"]
    torch.save({"params": {f"module.{k}": v for k, v in params.items()}}, workdir / "prefixed.pth")
    for source in ("prefixed.pth", "weights/src_iter_4.pt"):
        name = "ft" + source.split(".")[-1]
        ft = write_options(workdir, name, **{"train.total_iter": 1, "path.pretrain_path": source,
                                            "val": None, "train.optim_g.lr": 0.0, "train.warmup_iter": 0})
        assert train_in_process(ft) == 0
        state = _load(workdir / "weights" / f"{name}_iter_1.pt")
        assert state["iteration"] == 1
        assert state["model"]["optimizers"]["optim_g"]["state"][0]["step"].item() == 1  # a fresh optimizer
        loaded = state["model"]["networks"]["net_g"]
        assert all(torch.equal(loaded[k], params[k]) for k in params)  # lr 0: still the pretrained weights


def test_non_strict_load_with_changed_upsampler_reports_skipped(workdir: Path) -> None:
    opt = write_options(workdir, "x2", **{"train.total_iter": 2})
    assert train_in_process(opt) == 0
    ft = write_options(workdir, "x3", **{"scale": 3, "network_g.upscale": 3, "train.total_iter": 1,
                                        "path.pretrain_path": "weights/x2_iter_2.pth",
                                        "path.strict_load": False, "val": None,
                                        "datasets.train.type": "BicubicSRDataset",
                                        "datasets.train.dataroot_lq": ..., "datasets.train.gt_size": 15,
                                        "datasets.val": ...})
    assert train_in_process(ft) == 0
    log = "\n".join(p.read_text() for p in (workdir / "experiments" / "x3").glob("train_*.log"))
    assert "shape-mismatched (skipped)" in log and "upconv1.weight" in log


def test_strict_load_mismatch_is_a_user_error(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    opt = write_options(workdir, "a", **{"train.total_iter": 2})
    assert train_in_process(opt) == 0
    capsys.readouterr()
    ft = write_options(workdir, "b", **{"network_g.num_feat": 16, "path.pretrain_path": "weights/a_iter_2.pth"})
    assert train_in_process(ft) == 2
    err = capsys.readouterr().err
    assert "strict_load: false" in err and "a_iter_2.pth" in err and "Traceback" not in err


# ------------------------------------------------------------------------------------------- signals and kill -9


def _wait_for(path: Path, text: str, child: Child, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.exists() and text in path.read_text():
            return
        if child.proc.poll() is not None:
            raise AssertionError(f"process ended early: {child.output('stderr')}")
        time.sleep(0.05)
    raise AssertionError(f"'{text}' did not appear in {path}")


def _popen(workdir: Path, opt: Path, *extra: str) -> Child:
    """train.py in a subprocess whose output is read with deadlines (tests/childproc.py)."""
    return Child.train(workdir, "-opt", str(opt), *extra)


def test_sigterm_saves_and_resume_is_exact(workdir: Path) -> None:
    common = {"train.total_iter": 400, "logger.save_checkpoint_freq": 1000, "logger.print_freq": 1,
              "val.val_freq": 1000}
    ref = write_options(workdir, "ref", **common)
    assert train_in_process(ref) == 0
    opt = write_options(workdir, "sig", **common)
    with _popen(workdir, opt) as child:
        deadline = time.time() + 60
        while time.time() < deadline and not list((workdir / "experiments" / "sig").glob("train_*.log")):
            time.sleep(0.05)
        log = next((workdir / "experiments" / "sig").glob("train_*.log"))
        _wait_for(log, "iter 20]", child)
        child.proc.send_signal(signal.SIGTERM)
        rc, out, err = child.finish(timeout=60)
    assert rc == 0, err
    assert "SIGTERM: stopped after iteration" in out
    saved = [p for p in (workdir / "weights").glob("sig_iter_*.pt")]
    assert len(saved) == 1
    stopped_at = _load(saved[0])["iteration"]
    assert 20 <= stopped_at < 400
    assert train_in_process(opt, ["path.resume_path=auto"]) == 0
    assert (workdir / "weights" / "sig_iter_400.pth").read_bytes() == \
        (workdir / "weights" / "ref_iter_400.pth").read_bytes()


def test_kill_9_at_random_moments_never_leaves_an_unloadable_checkpoint(workdir: Path) -> None:
    """20 kills of a run that saves every iteration: half at random moments, half the instant a save's temp
    file appears (so saves really are hit). After each, every file under a real name verifies and auto-resume
    finds a checkpoint; a last run completes and leaves no temp files."""
    opt = write_options(workdir, "kill", **{"train.total_iter": 120, "logger.save_checkpoint_freq": 1,
                                           "logger.keep_last": 3, "val": None,
                                           "network_g.num_feat": 64, "network_g.num_block": 4})
    rng = random.Random(1234)
    weights = workdir / "weights"
    killed_mid_save = 0
    for attempt in range(20):
        with _popen(workdir, opt, "--auto-resume") as child:
            child.wait_for("Training set")  # unbuffered: the loop starts right after this line
            if attempt % 2:
                time.sleep(rng.uniform(0.0, 0.5))
            else:
                deadline = time.time() + 20
                while time.time() < deadline and child.proc.poll() is None and not (
                        weights.exists() and any(".tmp." in n for n in os.listdir(weights))):
                    time.sleep(0.002)
            child.kill()
        names = os.listdir(weights)
        killed_mid_save += any(".tmp." in n for n in names)
        for name in names:
            if name.endswith((".pt", ".pth")) and ".tmp." not in name:
                verify(str(weights / name))  # every checkpoint under a real name is complete
        if any(n.endswith(".pt") for n in names):  # none yet if the very first save was hit
            manager = CheckpointManager(str(weights), "kill")
            assert manager.find_resumable() is not None
    assert killed_mid_save >= 5, killed_mid_save
    result = run_train(workdir, ["-opt", str(opt), "--auto-resume"])
    assert result.returncode == 0, result.stderr
    assert "Training finished at iteration 120" in result.stdout
    assert not [p for p in weights.iterdir() if ".tmp." in p.name]
    assert _load(weights / "kill_iter_120.pt")["iteration"] == 120


def test_tensorboard_continues_without_duplicated_points(workdir: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    opt = write_options(workdir, **{"train.total_iter": 6, "logger.use_tb_logger": True,
                                    "logger.save_checkpoint_freq": 2, "val.val_freq": 2})
    assert train_in_process(opt) == 0
    # resume from iteration 2: the first run's points at 4 and 6 are superseded, not duplicated
    assert train_in_process(opt, ["path.resume_path=weights/tiny_iter_2.pt", "train.total_iter=8"]) == 0
    acc = EventAccumulator(str(workdir / "experiments" / "tiny" / "tb_logger"))
    acc.Reload()
    for tag in ("losses/l_pix", "lr", "metrics/val/psnr"):
        steps = [event.step for event in acc.Scalars(tag)]
        assert steps == sorted(set(steps)), (tag, steps)
        assert steps[-1] == 8


def test_resume_wins_over_pretrain_and_the_log_says_so(workdir: Path) -> None:
    opt = write_options(workdir, **{"train.total_iter": 4})
    assert train_in_process(opt) == 0
    assert train_in_process(opt, ["path.resume_path=weights/tiny_iter_4.pt", "train.total_iter=6",
                                  "path.pretrain_path=weights/tiny_iter_4.pth"]) == 0
    log = "\n".join(p.read_text() for p in (workdir / "experiments" / "tiny").glob("train_*.log"))
    assert "Both resume_path and pretrain_path are set: resuming from weights/tiny_iter_4.pt" in log
    assert "Option changed since the checkpoint: train.total_iter: 4 -> 6" in log
    assert _load(workdir / "weights" / "tiny_iter_6.pt")["iteration"] == 6


def test_incomplete_training_state_is_rejected_and_auto_falls_back(workdir: Path) -> None:
    opt = write_options(workdir, **{"train.total_iter": 8})
    assert train_in_process(opt) == 0
    newest = workdir / "weights" / "tiny_iter_8.pt"
    state = _load(newest)
    del state["model"]
    torch.save(state, newest)
    with pytest.raises(CheckpointError, match="missing or invalid: model.networks"):
        verify(str(newest))
    assert train_in_process(opt, ["path.resume_path=auto", "train.total_iter=9"]) == 0
    log = "\n".join(p.read_text() for p in (workdir / "experiments" / "tiny").glob("train_*.log"))
    assert "Resumed from weights/tiny_iter_4.pt" in log


def test_changed_lr_takes_effect_on_resume_and_optimizer_type_change_is_refused(
        workdir: Path, capsys: pytest.CaptureFixture) -> None:
    opt = write_options(workdir, **{"train.total_iter": 4, "train.scheduler": None, "train.warmup_iter": 0})
    assert train_in_process(opt) == 0
    assert train_in_process(opt, ["path.resume_path=auto", "train.total_iter=6", "train.optim_g.lr=1e-5",
                                  "train.optim_g.weight_decay=0.25"]) == 0
    group = _load(workdir / "weights" / "tiny_iter_6.pt")["model"]["optimizers"]["optim_g"]["param_groups"][0]
    assert group["lr"] == pytest.approx(1e-5) and group["weight_decay"] == 0.25
    capsys.readouterr()
    before = _snapshot(workdir / "weights")
    assert train_in_process(opt, ["path.resume_path=auto", "train.total_iter=8", "train.optim_g.type=SGD"]) == 2
    err = capsys.readouterr().err
    assert "optimizer is Adam" in err and "SGD" in err and "Traceback" not in err
    assert _snapshot(workdir / "weights") == before


def test_auto_resume_with_only_corrupt_checkpoints_stops(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    opt = write_options(workdir, **{"train.total_iter": 8})
    assert train_in_process(opt) == 0
    for path in (workdir / "weights").glob("tiny_iter_*.pt"):
        path.write_bytes(path.read_bytes()[:500])
    capsys.readouterr()
    before = {**_snapshot(workdir / "weights"), **_snapshot(workdir / "experiments")}
    assert train_in_process(opt, ["path.resume_path=auto"]) == 2
    err = capsys.readouterr().err
    assert "none of the 2 checkpoint(s)" in err and "Traceback" not in err
    assert {**_snapshot(workdir / "weights"), **_snapshot(workdir / "experiments")} == before


def test_exact_resume_with_dropout_uses_the_global_rng_exactly(workdir: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A network that draws from torch's global RNG (dropout) resumes bitwise too."""
    from torch import nn

    from framework.archs import MSRResNet
    from framework.registry import ARCH_REGISTRY

    class DropoutNet(MSRResNet):
        def __init__(self, num_feat: int = 8, num_block: int = 1, upscale: int = 2) -> None:
            super().__init__(num_feat=num_feat, num_block=num_block, upscale=upscale)
            self.drop = nn.Dropout(0.3)

        def forward(self, x):
            return super().forward(self.drop(x))

    monkeypatch.setitem(ARCH_REGISTRY._items, "DropoutNet", DropoutNet)  # registered for this test only

    common = {"train.total_iter": 9, "network_g": {"type": "DropoutNet"}, "logger.save_checkpoint_freq": 100}
    full = write_options(workdir, "full", **common)
    part = write_options(workdir, "part", **common)
    assert train_in_process(full) == 0
    assert train_in_process(part, ["train.total_iter=5"]) == 0
    assert train_in_process(part, ["path.resume_path=auto"]) == 0
    assert (workdir / "weights" / "full_iter_9.pth").read_bytes() == \
        (workdir / "weights" / "part_iter_9.pth").read_bytes()


def test_a_second_run_of_the_same_name_is_refused_while_the_first_runs(workdir: Path) -> None:
    opt = write_options(workdir, "busy", **{"train.total_iter": 100000, "val": None,
                                           "logger.save_checkpoint_freq": 100000})
    with _popen(workdir, opt) as first:
        first.wait_for("Training set")
        try:
            second = run_train(workdir, ["-opt", str(opt)])
            assert second.returncode == 2, second.stderr
            assert "another run of 'busy'" in second.stderr and "Traceback" not in second.stderr
            assert not list((workdir / "experiments").glob("busy_archived_*"))  # the live run was not archived
        finally:
            first.proc.send_signal(signal.SIGTERM)
            rc, _out, err = first.finish(timeout=60)
    assert rc == 0, err


def test_resuming_from_an_older_checkpoint_moves_the_later_ones_aside(workdir: Path) -> None:
    opt = write_options(workdir, **{"train.total_iter": 12, "val": None})
    assert train_in_process(opt) == 0
    later = (workdir / "weights" / "tiny_iter_12.pt").read_bytes()
    assert train_in_process(opt, ["path.resume_path=weights/tiny_iter_4.pt", "train.total_iter=6"]) == 0
    names = sorted(p.name for p in (workdir / "weights").iterdir() if p.is_file())
    assert names == ["tiny_iter_4.pt", "tiny_iter_4.pth", "tiny_iter_6.pt", "tiny_iter_6.pth"]
    archived = list((workdir / "weights").glob("archived_tiny_*/tiny_iter_12.pt"))
    assert len(archived) == 1 and archived[0].read_bytes() == later


@pytest.mark.parametrize("verbose", [False, True], ids=["", "verbose"])
@pytest.mark.parametrize("workers", [0, 2])
def test_an_image_that_fails_mid_run_saves_progress_and_exits_2(workdir: Path, capsys: pytest.CaptureFixture,
                                                                  workers: int, verbose: bool) -> None:
    """The header checks pass (valid PNG header), the pixels do not decode: found only when the sample is
    drawn. The run keeps its progress and says which file, in one line, also from a loader worker; with
    --verbose the chain down to the decoder's own error comes first, with where each was raised."""
    bad = workdir / "data" / "train" / "HR" / "0003.png"
    data = bad.read_bytes()
    bad.write_bytes(data[:33] + b"\0" * (len(data) - 33))  # signature + IHDR intact, image data gone
    opt = write_options(workdir, **{"train.total_iter": 40, "logger.save_checkpoint_freq": 1000, "val": None,
                                    "datasets.train.num_worker_per_gpu": workers})
    assert train_in_process(opt, flags=["--verbose"] if verbose else []) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    if verbose:
        chain = err[:err.index(lines[-1])]
        assert "Traceback (most recent call last)" in chain, err
        assert chain.count("The above exception was the direct cause of the following exception") >= 2, err
        decoder_error = re.search(r"^\s*(RuntimeError|OSError|ValueError): ", chain, re.MULTILINE)
        assert decoder_error and 'image_io.py", line' in chain, err  # the decoder's own error, and where
        assert ("RemoteTraceback" in chain) == (workers > 0), err  # the worker's traceback, as it was there
        lines = lines[-1:]
    assert len(lines) == 1 and "0003.png" in lines[0] and "cannot read image" in lines[0], err
    assert ("Traceback" in err) == verbose and "progress saved in weights/tiny_iter_" in lines[0]
    saved = list((workdir / "weights").glob("tiny_iter_*.pt"))
    assert len(saved) == 1 and 0 < _load(saved[0])["iteration"] < 40


def test_a_new_best_on_an_interval_step_is_serialised_once(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    saves: list = []
    real_save = torch.save
    monkeypatch.setattr(torch, "save", lambda obj, f, *a, **k: saves.append(obj) or real_save(obj, f, *a, **k))
    opt = write_options(workdir, **{"train.total_iter": 4, "val.val_freq": 4, "logger.save_checkpoint_freq": 4})
    assert train_in_process(opt) == 0
    weights = workdir / "weights"
    assert len(saves) == 2  # iter_4.pt and iter_4.pth; the best files are the same bytes under a second name
    for ext in ("pt", "pth"):
        assert (weights / f"tiny_best.{ext}").read_bytes() == (weights / f"tiny_iter_4.{ext}").read_bytes()
        assert os.path.samefile(weights / f"tiny_best.{ext}", weights / f"tiny_iter_4.{ext}")  # a hard link
    assert _load(weights / "tiny_best.pt")["best"]["psnr"]["iteration"] == 4


@pytest.mark.parametrize("better", ["higher", "lower"])
def test_metric_direction_decides_the_best_model(workdir: Path, better: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The real validation runs; its PSNR is then replaced by a scripted series that goes up and down, so the
    # outcome does not hang on how this machine's CPU kernels make the tiny run's PSNR move.
    from framework import trainer

    scripted = [1.0, 3.0, 2.0, 0.0]
    real_evaluate = trainer.evaluate

    def evaluate(*args: Any, **kwargs: Any) -> Evaluation:
        result = real_evaluate(*args, **kwargs)
        psnr = scripted.pop(0) if len(scripted) > 1 else scripted[0]
        return dataclasses.replace(result, averages={**result.averages, "psnr": psnr})

    monkeypatch.setattr(trainer, "evaluate", evaluate)
    opt = write_options(workdir, **{"train.total_iter": 8, "val.val_freq": 2,
                                    "val.metrics": {"psnr": {"type": "calculate_psnr", "better": better}}})
    assert train_in_process(opt) == 0
    best = _load(workdir / "weights" / "tiny_best.pt")
    history = json.loads((workdir / "experiments" / "tiny" / "best_model" / "best_records.json").read_text())
    values = [entry["metrics"]["psnr"] for entry in history["history"]]
    assert values == ([1.0, 3.0] if better == "higher" else [1.0, 0.0])
    assert best["best"]["psnr"]["value"] == pytest.approx(values[-1])
    saved = yaml.safe_load((workdir / "experiments" / "tiny" / "options_tiny.yml").read_text())
    assert saved["val"]["metrics"]["psnr"]["better"] == better
