"""Adan, the schedule-free AdamW and the schedule-free Adan in real tiny runs: they train, stop and resume bit for
bit; schedule-free's averaged weights are what validation measures and the .pth holds (bit for bit what
``optimizer.eval()`` gives), and validating or saving never changes the training trajectory; the schedule-free
Adan's update against a step-by-step reference of its definition; ReduceLROnPlateau reacts to the validation
metric and resumes with its counters; asking for a missing package is an option error naming the install."""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Dict, List

import pytest
import torch

from framework.cli import run_main, train_main
from framework.optim import AdanScheduleFree, schedule_free_average
from framework.registry import ARCH_REGISTRY, OPTIMIZER_REGISTRY

from .test_model_contract import _equal, assert_same_final_state
from .tinyrun import load, stop_with_sigterm, train_in_process, write_options

needs_package = pytest.mark.skipif(importlib.util.find_spec("pytorch_optimizer") is None,
                                   reason="pytorch-optimizer (the optim extra) is not installed")

GROUPS = ("networks", "ema", "optimizers", "schedulers")
OPTIMIZERS = {
    "adan": {"type": "Adan", "lr": 1e-3, "weight_decay": 0.01},
    "schedule_free": {"type": "AdamWScheduleFree", "lr": 2e-3, "warmup_steps": 2, "weight_decay": 0.01},
    "adan_schedule_free": {"type": "AdanScheduleFree", "lr": 2e-3, "betas": [0.98, 0.92, 0.99], "warmup_steps": 2,
                           "weight_decay": 0.01},
}
# The optimizers that come from pytorch-optimizer (AdanScheduleFree is written here).
PACKAGED = ("adan", "schedule_free")
SCHEDULE_FREE = [pytest.param("schedule_free", marks=needs_package), "adan_schedule_free"]


@pytest.mark.parametrize("ema", [0.0, 0.9])
@pytest.mark.parametrize("name", [pytest.param(n, marks=needs_package) if n in PACKAGED else n for n in OPTIMIZERS])
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


@needs_package
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


@pytest.mark.parametrize("name", SCHEDULE_FREE)
def test_schedule_free_pth_holds_the_averaged_weights_validation_measured(workdir: Path, name: str,
                                                                         capsys: pytest.CaptureFixture) -> None:
    options = OPTIMIZERS[name]
    opt = write_options(workdir, "sf", **{"train.optim_g": options, "train.total_iter": 4,
                                          "logger.save_checkpoint_freq": 4, "val.val_freq": 4})
    assert train_in_process(opt) == 0
    state = load(workdir / "weights" / "sf_iter_4.pt")
    pth = load(workdir / "weights" / "sf_iter_4.pth")["params"]
    # Rebuild the training state and switch the optimizer to its average in place, as its eval() does.
    net = ARCH_REGISTRY.get("MSRResNet")(num_feat=8, num_block=1, upscale=2)
    net.load_state_dict(state["model"]["networks"]["net_g"])
    optimizer = OPTIMIZER_REGISTRY.get(options["type"])(net.parameters(),
                                                        **{k: v for k, v in options.items() if k != "type"})
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
    assert f"{options['type']}'s averaged weights (schedule-free; the .pth export holds them)" in \
        capsys.readouterr().out
    out = workdir / "sf.pth"
    assert run_main(checkpoint_tool.main, ["export", str(workdir / "weights" / "sf_iter_4.pt"), "-o", str(out)]) == 0
    assert _equal(load(out)["params"], evaluated)


@pytest.mark.parametrize("name", SCHEDULE_FREE)
def test_validation_and_saving_do_not_change_the_schedule_free_trajectory(workdir: Path, name: str) -> None:
    common = {"train.optim_g": OPTIMIZERS[name], "train.total_iter": 6}
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


@needs_package
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


@needs_package
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


# ------------------------------------------------------------------------ the schedule-free Adan's update

def _reference_adan_schedule_free(y0: List[float], grads: List[List[float]], lr: float, betas: List[float],
                                  eps: float, weight_decay: float, warmup_steps: int) -> Dict[str, List[float]]:
    """traiNNer-redux's AdanScheduleFree written out element by element in Python floats (r 0, power 2)."""
    b1, b2, b3 = betas
    y, z = list(y0), list(y0)
    m, v, n = [0.0] * len(y0), [0.0] * len(y0), [0.0] * len(y0)
    prev = grads[0]
    lr_max, weight_sum = -1.0, 0.0
    for t, g in enumerate(grads, start=1):
        lr_max = max(lr * (t / warmup_steps if t < warmup_steps else 1.0), lr_max)
        weight_sum += lr_max ** 2
        c = lr_max ** 2 / weight_sum
        for i, gi in enumerate(g):
            d = gi - prev[i]
            m[i] = b1 * m[i] + (1 - b1) * gi
            v[i] = b2 * v[i] + (1 - b2) * d
            n[i] = b3 * n[i] + (1 - b3) * (gi + b2 * d) ** 2
            direction = (m[i] / (1 - b1 ** t) + b2 * v[i] / (1 - b2 ** t)) / (math.sqrt(n[i] / (1 - b3 ** t)) + eps)
            y[i] = ((1 - c) * y[i] + c * z[i]) * (1 - lr * weight_decay) - lr * (1 - c) * direction
            z[i] = z[i] * (1 - lr * weight_decay) - lr * direction
        prev = g
    return {"y": y, "z": z, "x": [yi + (1 - 1 / b1) * (zi - yi) for yi, zi in zip(y, z, strict=True)]}


SETTINGS = {"lr": 0.1, "betas": [0.9, 0.8, 0.7], "eps": 1e-8, "weight_decay": 0.5, "warmup_steps": 3}
GRADS = [[0.5, -2.0, 0.0], [1.5, 1.0, -0.25], [-1.0, 0.5, 3.0], [0.25, -0.5, 1.0]]


def _stepped(y0: List[float], grads: List[List[float]], **settings: object) -> tuple:
    param = torch.nn.Parameter(torch.tensor(y0, dtype=torch.float64))
    optimizer = AdanScheduleFree([param], **settings)  # type: ignore[arg-type]
    for g in grads:
        param.grad = torch.tensor(g, dtype=torch.float64)
        optimizer.step()
    return param, optimizer


def test_adan_schedule_free_first_step_by_hand() -> None:
    """Step 1: the average's weight is 1 so y is only decayed; z moves by lr * g / (|g| + eps) (Adan's first
    direction is the sign of the gradient, the moments' bias corrections cancelling)."""
    y0, g = [1.0, -2.0, 0.5], [0.5, -2.0, 0.0]
    lr, wd, eps = 0.1, 0.5, 1e-8
    param, optimizer = _stepped(y0, [g], lr=lr, betas=[0.9, 0.8, 0.7], eps=eps, weight_decay=wd, warmup_steps=3)
    decayed = [y * (1 - lr * wd) for y in y0]
    assert param.tolist() == pytest.approx(decayed, abs=1e-15)
    z = [d - lr * gi / (abs(gi) + eps) for d, gi in zip(decayed, g, strict=True)]
    assert optimizer.state[param]["z"].tolist() == pytest.approx(z, abs=1e-15)
    group = optimizer.param_groups[0]
    assert group["step"] == 1 and group["lr_max"] == pytest.approx(lr / 3) and group["weight_sum"] == \
        pytest.approx((lr / 3) ** 2)


def test_adan_schedule_free_matches_its_definition_over_four_steps() -> None:
    """Warm-up (weights (1/3)^2, (2/3)^2, 1, 1 of lr^2), weight decay and the gradient-change moment all act."""
    y0 = [1.0, -2.0, 0.5]
    param, optimizer = _stepped(y0, GRADS, **SETTINGS)
    expected = _reference_adan_schedule_free(y0, GRADS, **SETTINGS)  # type: ignore[arg-type]
    assert param.tolist() == pytest.approx(expected["y"], rel=1e-12, abs=1e-14)
    assert optimizer.state[param]["z"].tolist() == pytest.approx(expected["z"], rel=1e-12, abs=1e-14)
    average = schedule_free_average(optimizer, [param])[0]
    assert average.tolist() == pytest.approx(expected["x"], rel=1e-12, abs=1e-14)
    optimizer.eval()  # the in-place switch gives the same average, and train() comes back
    assert torch.equal(param.detach(), average)
    optimizer.train()
    assert param.tolist() == pytest.approx(expected["y"], rel=1e-12, abs=1e-14)


def test_adan_schedule_free_max_grad_norm_scales_the_gradients() -> None:
    """With max_grad_norm the steps are those of the gradients scaled to that global norm."""
    norms = [math.sqrt(sum(x * x for x in g)) for g in GRADS]
    scaled = [[x * min(1.0, 1.0 / (norm + 1e-8)) for x in g] for g, norm in zip(GRADS, norms, strict=True)]
    clipped, _ = _stepped([1.0, -2.0, 0.5], GRADS, max_grad_norm=1.0, **SETTINGS)
    plain, _ = _stepped([1.0, -2.0, 0.5], scaled, **SETTINGS)
    assert clipped.tolist() == pytest.approx(plain.tolist(), rel=1e-12, abs=1e-14)
    assert not torch.equal(clipped, _stepped([1.0, -2.0, 0.5], GRADS, **SETTINGS)[0])
