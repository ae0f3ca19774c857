"""Adan and the schedule-free AdamW in real tiny runs: they train, stop and resume bit for bit; schedule-free's
averaged weights are what validation measures and the .pth holds (bit for bit what ``optimizer.eval()`` gives),
and validating or saving never changes the training trajectory; ReduceLROnPlateau reacts to the validation
metric and resumes with its counters; asking for a missing package is an option error naming the install."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from framework.cli import run_main, train_main
from framework.registry import ARCH_REGISTRY

from .test_model_contract import _equal, assert_same_final_state
from .tinyrun import load, stop_with_sigterm, train_in_process, write_options

pytest.importorskip("pytorch_optimizer")

GROUPS = ("networks", "ema", "optimizers", "schedulers")
OPTIMIZERS = {
    "adan": {"type": "Adan", "lr": 1e-3, "weight_decay": 0.01},
    "schedule_free": {"type": "AdamWScheduleFree", "lr": 2e-3, "warmup_steps": 2, "weight_decay": 0.01},
}


@pytest.mark.parametrize("ema", [0.0, 0.9])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_optimizer_trains_stops_and_resumes_bitwise(workdir: Path, name: str, ema: float) -> None:
    """Stopped at 3 (mid-epoch, after a validation at 2) and resumed to 6 == uninterrupted, every group of the .pt
    and the .pth bytes."""
    common = {"train.optim_g": OPTIMIZERS[name], "train.total_iter": 6, "train.ema_decay": ema,
              "logger.save_checkpoint_freq": 3, "val.val_freq": 2}
    full, part = write_options(workdir, "full", **common), write_options(workdir, "part", **common)
    assert train_in_process(full) == 0
    assert train_in_process(part, ["train.total_iter=3"]) == 0
    assert train_in_process(part, ["path.resume_path=auto"]) == 0
    assert_same_final_state(workdir / "weights", "full", "part", 6, GROUPS)
    state = load(workdir / "weights" / "full_iter_6.pt")
    start = load(workdir / "weights" / "full_iter_3.pt")
    assert not _equal(state["model"]["networks"], start["model"]["networks"])  # it trained
    assert state["model"]["optimizers"]["optim_g"]["param_groups"][0]["step"] == 6


def test_schedule_free_sigterm_and_resume_is_bitwise(workdir: Path) -> None:
    """A stop at an iteration where nothing was validated or saved: the saved .pt holds the training weights, so
    the resumed run continues exactly (an in-place eval()/train() switch would round them there)."""
    common = {"train.optim_g": OPTIMIZERS["schedule_free"], "train.total_iter": 30, "logger.print_freq": 1,
              "logger.save_checkpoint_freq": 1000, "val.val_freq": 7}
    assert train_in_process(write_options(workdir, "ref", **common)) == 0
    opt = write_options(workdir, "sig", **common)
    assert 5 <= stop_with_sigterm(workdir, opt, "iter 5]")["iteration"] < 30
    assert train_in_process(opt, ["path.resume_path=auto"]) == 0
    assert_same_final_state(workdir / "weights", "ref", "sig", 30, GROUPS)


def test_schedule_free_pth_holds_the_averaged_weights_validation_measured(workdir: Path,
                                                                         capsys: pytest.CaptureFixture) -> None:
    opt = write_options(workdir, "sf", **{"train.optim_g": OPTIMIZERS["schedule_free"], "train.total_iter": 4,
                                          "logger.save_checkpoint_freq": 4, "val.val_freq": 4})
    assert train_in_process(opt) == 0
    state = load(workdir / "weights" / "sf_iter_4.pt")
    pth = load(workdir / "weights" / "sf_iter_4.pth")["params"]
    # Rebuild the training state and switch the optimizer to its average in place, as its eval() does.
    net = ARCH_REGISTRY.get("MSRResNet")(num_feat=8, num_block=1, upscale=2)
    net.load_state_dict(state["model"]["networks"]["net_g"])
    from framework.optim import AdamWScheduleFree

    optimizer = AdamWScheduleFree(net.parameters(), **{k: v for k, v in OPTIMIZERS["schedule_free"].items()
                                                       if k != "type"})
    optimizer.load_state_dict(state["model"]["optimizers"]["optim_g"])
    assert optimizer.param_groups[0]["train_mode"] is True  # saved in training mode
    optimizer.eval()
    evaluated = net.state_dict()
    assert _equal(pth, evaluated)  # bit for bit what eval() gives
    assert _equal(state["model"]["ema"]["net_g"], evaluated)  # and what checkpoint.py export takes
    assert not _equal(pth, state["model"]["networks"]["net_g"])  # not the training weights
    assert state["best"]["psnr"]["value"] == load(workdir / "weights" / "sf_best.pt")["best"]["psnr"]["value"]
    from framework.tools import checkpoint_tool

    assert run_main(checkpoint_tool.main, ["inspect", str(workdir / "weights" / "sf_iter_4.pt")]) == 0
    assert "AdamWScheduleFree's averaged weights (schedule-free; the .pth export holds them)" in \
        capsys.readouterr().out
    out = workdir / "sf.pth"
    assert run_main(checkpoint_tool.main, ["export", str(workdir / "weights" / "sf_iter_4.pt"), "-o", str(out)]) == 0
    assert _equal(load(out)["params"], evaluated)


def test_validation_and_saving_do_not_change_the_schedule_free_trajectory(workdir: Path) -> None:
    common = {"train.optim_g": OPTIMIZERS["schedule_free"], "train.total_iter": 6}
    busy = write_options(workdir, "busy", **common, **{"val.val_freq": 1, "logger.save_checkpoint_freq": 1})
    quiet = write_options(workdir, "quiet", **common, **{"val.val_freq": 100, "logger.save_checkpoint_freq": 100})
    assert train_in_process(busy) == 0 and train_in_process(quiet) == 0
    assert_same_final_state(workdir / "weights", "busy", "quiet", 6, GROUPS)


def _learning_rates(workdir: Path, name: str) -> list:
    log = next((workdir / "experiments" / name).glob("train_*.log")).read_text()
    return [line for line in log.splitlines() if "ReduceLROnPlateau (optim_g)" in line]


def test_reduce_on_plateau_reacts_to_the_metric_and_resumes_with_its_state(workdir: Path) -> None:
    """threshold 1 (rel): only a doubled PSNR counts as better, so every validation after the first is a stall;
    with patience 1 the rate halves at the 3rd and the 5th validation."""
    common = {"train.total_iter": 6, "train.warmup_iter": 0, "val.val_freq": 1, "logger.save_checkpoint_freq": 3,
              "logger.print_freq": 1,
              "train.scheduler": {"type": "ReduceLROnPlateau", "monitor": "psnr", "factor": 0.5, "patience": 1,
                                  "threshold": 1.0}}
    full, part = write_options(workdir, "full", **common), write_options(workdir, "part", **common)
    assert train_in_process(full) == 0
    state = load(workdir / "weights" / "full_iter_6.pt")
    sched = state["model"]["schedulers"]["optim_g"]
    assert sched["reductions"] == 2 and sched["num_bad"] == 1
    assert state["model"]["optimizers"]["optim_g"]["param_groups"][0]["lr"] == pytest.approx(1e-3 / 4)
    lines = _learning_rates(workdir, "full")
    assert len(lines) == 2 and "psnr has not improved for 2 validation(s); learning rate now 5.000e-04" in lines[0]
    assert train_in_process(part, ["train.total_iter=3"]) == 0
    assert load(workdir / "weights" / "part_iter_3.pt")["model"]["schedulers"]["optim_g"]["reductions"] == 1
    assert train_in_process(part, ["path.resume_path=auto"]) == 0
    assert_same_final_state(workdir / "weights", "full", "part", 6, GROUPS)


def test_a_missing_optimizer_package_is_an_option_error(workdir: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture) -> None:
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "pytorch_optimizer" else find_spec(name, *a))
    opt = write_options(workdir, "missing", **{"train.optim_g": {"type": "Adan", "lr": 1e-3}})
    assert run_main(train_main, ["-opt", str(opt), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "train.optim_g.type: Adan needs the pytorch-optimizer package, which is not installed: pip install " \
           "pytorch-optimizer" in err and "missing.yml:" in err
    assert not (workdir / "weights").exists()


def test_group_settings_come_from_the_options_and_counters_from_the_checkpoint(workdir: Path) -> None:
    """A changed lr takes effect on resume; the schedule-free group counters (step, weight_sum, lr_max) do not
    restart."""
    opt = write_options(workdir, "chg", **{"train.optim_g": OPTIMIZERS["schedule_free"], "train.total_iter": 2,
                                           "train.scheduler": None, "train.warmup_iter": 0})
    assert train_in_process(opt) == 0
    assert train_in_process(opt, ["train.total_iter=3", "path.resume_path=auto", "train.optim_g.lr=1.0e-3"]) == 0
    before = load(workdir / "weights" / "chg_iter_2.pt")["model"]["optimizers"]["optim_g"]["param_groups"][0]
    after = load(workdir / "weights" / "chg_iter_3.pt")["model"]["optimizers"]["optim_g"]["param_groups"][0]
    assert after["lr"] == 1e-3 and after["step"] == 3
    # the step's weight is lr_max ** 2 with the saved lr_max (2e-3), not the new lr
    assert after["lr_max"] == 2e-3 and after["weight_sum"] == pytest.approx(before["weight_sum"] + 2e-3 ** 2)
