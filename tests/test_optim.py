"""Learning-rate schedules: warm-up, MultiStepLR, cosine restarts, and exact continuation after a restore."""
from __future__ import annotations

import math
from typing import Callable, List

import pytest
import torch

from framework.optim import (ConstantLR, CosineAnnealingLR, CosineAnnealingRestartLR, MultiStepLR, OneCycleLR,
                             ReduceLROnPlateau)

BASE_LR = 0.1


def _setup(make_sched: Callable, lr: float = BASE_LR, seed: int = 0):
    torch.manual_seed(seed)
    param = torch.nn.Parameter(torch.randn(3))
    opt = torch.optim.SGD([param], lr=lr, momentum=0.9)
    return param, opt, make_sched(opt)


def _step(param, opt, sched) -> float:
    """One training step; returns the lr the optimizer step used."""
    lr = opt.param_groups[0]["lr"]
    opt.zero_grad()
    (param ** 2).sum().backward()
    opt.step()
    sched.step()
    return lr


def _run(make_sched: Callable, n: int, lr: float = BASE_LR) -> List[float]:
    param, opt, sched = _setup(make_sched, lr)
    return [_step(param, opt, sched) for _ in range(n)]


def _momenta(make_sched: Callable, n: int) -> List[float]:
    param, opt, sched = _setup(make_sched)
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["momentum"])
        _step(param, opt, sched)
    return out


# --------------------------------------------------------------------------------------------- warm-up


@pytest.mark.parametrize("warmup", [1, 3, 5])
def test_warmup_linear_and_reaches_base_lr_exactly_at_step_w(warmup) -> None:
    lrs = _run(lambda o: ConstantLR(o, warmup_iter=warmup), warmup + 4)
    for k, lr in enumerate(lrs, start=1):  # k = optimizer step number
        assert lr == pytest.approx(BASE_LR * min(1.0, k / warmup), rel=1e-12, abs=0)
    assert lrs[warmup - 1] == BASE_LR  # exactly, not approximately
    assert all(lr == BASE_LR for lr in lrs[warmup - 1:])
    assert all(a < b for a, b in zip(lrs[:warmup - 1], lrs[1:warmup], strict=False))


@pytest.mark.parametrize("warmup", [0, -1])
def test_no_warmup(warmup) -> None:
    assert _run(lambda o: ConstantLR(o, warmup_iter=warmup), 3) == [BASE_LR] * 3


def test_warmup_multiplies_the_schedule() -> None:
    w = 4
    lrs = _run(lambda o: MultiStepLR(o, milestones=[2], gamma=0.5, warmup_iter=w), 6)
    expected = [BASE_LR * min(1.0, k / w) * (0.5 if k - 1 >= 2 else 1.0) for k in range(1, 7)]
    assert lrs == pytest.approx(expected, rel=1e-12)


# ------------------------------------------------------------------------------------------ MultiStepLR


def test_multistep_milestones_and_gamma() -> None:
    lrs = _run(lambda o: MultiStepLR(o, milestones=[5, 3], gamma=0.1), 8)
    # step k runs with steps_done = k - 1; the rate drops once a milestone has been passed
    assert lrs == pytest.approx([0.1, 0.1, 0.1, 0.01, 0.01, 0.001, 0.001, 0.001], rel=1e-12)


def test_multistep_matches_torch() -> None:
    ours = _run(lambda o: MultiStepLR(o, milestones=[2, 4, 4, 7], gamma=0.3), 10)
    ref = _run(lambda o: torch.optim.lr_scheduler.MultiStepLR(o, milestones=[2, 4, 4, 7], gamma=0.3), 10)
    # torch counts a repeated milestone twice; bisect over the sorted list does the same
    assert ours == pytest.approx(ref, rel=1e-12)


# ------------------------------------------------------------------------------------------- cosine


def _cosine(base, eta_min, weight, progress):
    return eta_min + weight * 0.5 * (base - eta_min) * (1 + math.cos(math.pi * progress))


def test_cosine_restart_values() -> None:
    """BasicSR's convention: a period of P steps ends at eta_min (steps_done == P), the restart follows."""
    periods, weights, eta_min = [4, 6], [1.0, 0.5], 0.01
    lrs = _run(lambda o: CosineAnnealingRestartLR(o, periods, weights, eta_min), 13)
    expected = []
    for steps_done in range(13):
        if steps_done <= 4:
            expected.append(_cosine(BASE_LR, eta_min, 1.0, steps_done / 4))
        elif steps_done <= 10:
            expected.append(_cosine(BASE_LR, eta_min, 0.5, (steps_done - 4) / 6))
        else:
            expected.append(eta_min)
    assert lrs == pytest.approx(expected, rel=1e-12)
    # period boundaries: each period starts at weight * base, the mid-point is halfway, the end is eta_min
    assert lrs[0] == pytest.approx(BASE_LR)
    assert lrs[2] == pytest.approx((BASE_LR + eta_min) / 2)
    assert lrs[4] == pytest.approx(eta_min)
    assert lrs[7] == pytest.approx(eta_min + 0.25 * (BASE_LR - eta_min))
    assert lrs[10:] == pytest.approx([eta_min] * 3)
    assert min(lrs) >= eta_min


def test_cosine_single_period_like_example_yml() -> None:
    lrs = _run(lambda o: CosineAnnealingRestartLR(o, [8], [1], eta_min=1e-4, warmup_iter=2), 10, lr=1e-3)
    assert lrs[0] == pytest.approx(1e-3 * 0.5)  # warm-up, step 1 of 2
    assert lrs[1] == pytest.approx(_cosine(1e-3, 1e-4, 1.0, 1 / 8))  # step W: the scheduled rate exactly
    assert lrs[8:] == [1e-4, 1e-4]
    assert all(a >= b for a, b in zip(lrs[1:], lrs[2:], strict=False))


def test_cosine_rejects_mismatched_lists() -> None:
    from framework.errors import UserError
    param = torch.nn.Parameter(torch.zeros(1))
    with pytest.raises(UserError):
        CosineAnnealingRestartLR(torch.optim.SGD([param], lr=0.1), [3], [1.0, 1.0])
    with pytest.raises(UserError):
        CosineAnnealingRestartLR(torch.optim.SGD([param], lr=0.1), [0], [1.0])


def test_cosine_annealing_matches_torch_also_past_t_max() -> None:
    ours = _run(lambda o: CosineAnnealingLR(o, T_max=7, eta_min=0.01), 20)
    ref = _run(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=7, eta_min=0.01), 20)
    assert ours == pytest.approx(ref, rel=1e-9)
    assert ours[7] == pytest.approx(0.01)


@pytest.mark.parametrize("kwargs", [{}, {"three_phase": True, "anneal_strategy": "linear", "pct_start": 0.25}])
def test_one_cycle_matches_torch_rates_and_momentum(kwargs) -> None:
    ours = lambda o: OneCycleLR(o, total_steps=12, **kwargs)  # noqa: E731
    ref = lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=BASE_LR, total_steps=12, **kwargs)  # noqa: E731
    assert _run(ours, 12) == pytest.approx(_run(ref, 12), rel=1e-9)
    assert _momenta(ours, 12) == pytest.approx(_momenta(ref, 12), rel=1e-9)
    assert _run(ours, 15)[12:] == pytest.approx([_run(ours, 12)[-1]] * 3)  # after total_steps: the end value


def test_reduce_on_plateau_follows_torch_on_a_metric_sequence() -> None:
    """Higher is better (PSNR): the same reductions as torch's ReduceLROnPlateau(mode='max') stepped with the
    same values, counting validations."""
    values = [20.0, 21.0, 21.0, 20.5, 21.0, 20.9, 22.0, 22.0, 22.0, 22.0, 22.0]
    param, opt, ours = _setup(lambda o: ReduceLROnPlateau(o, factor=0.5, patience=1, cooldown=1, min_lr=0.02))
    torch_opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=BASE_LR)
    ref = torch.optim.lr_scheduler.ReduceLROnPlateau(torch_opt, mode="max", factor=0.5, patience=1, cooldown=1,
                                                     min_lr=0.02)
    for value in values:
        _step(param, opt, ours)
        ours.report(value, higher_is_better=True)
        ref.step(value)
        assert opt.param_groups[0]["lr"] == pytest.approx(torch_opt.param_groups[0]["lr"], rel=1e-12), value
    assert opt.param_groups[0]["lr"] == pytest.approx(0.025)  # reduced twice, the third time clipped at min_lr


def test_reduce_on_plateau_lower_is_better_and_state_round_trip() -> None:
    param, opt, sched = _setup(lambda o: ReduceLROnPlateau(o, factor=0.1, patience=0, warmup_iter=2))
    for value in (0.5, 0.4, 0.45):  # LPIPS-like: lower is better; the third one is worse
        _step(param, opt, sched)
        sched.report(value, higher_is_better=False)
    assert opt.param_groups[0]["lr"] == pytest.approx(BASE_LR * 0.1)
    state = sched.state_dict()
    assert state["reductions"] == 1 and state["best"] == 0.4
    param2, opt2, sched2 = _setup(lambda o: ReduceLROnPlateau(o, factor=0.1, patience=0, warmup_iter=2))
    sched2.load_state_dict(state)
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    assert sched2.report(0.39, higher_is_better=False) is False and sched2.best == 0.39


# ---------------------------------------------------------------------------------------------- resume

SCHEDULES = {
    "constant_warmup": lambda o: ConstantLR(o, warmup_iter=5),
    "multistep": lambda o: MultiStepLR(o, milestones=[3, 8], gamma=0.5, warmup_iter=2),
    "cosine": lambda o: CosineAnnealingRestartLR(o, [4, 6], [1.0, 0.5], eta_min=0.001, warmup_iter=3),
    "cosine_annealing": lambda o: CosineAnnealingLR(o, T_max=9, eta_min=0.001, warmup_iter=2),
    "one_cycle": lambda o: OneCycleLR(o, total_steps=12),
}


@pytest.mark.parametrize("name", list(SCHEDULES))
@pytest.mark.parametrize("cut", [1, 4, 7])
def test_restored_scheduler_continues_identically(name, cut) -> None:
    make = SCHEDULES[name]
    total = 14
    uninterrupted = _run(make, total)

    param, opt, sched = _setup(make)
    first = [_step(param, opt, sched) for _ in range(cut)]
    saved_opt, saved_sched = opt.state_dict(), sched.state_dict()
    saved_param = param.detach().clone()

    # a fresh process: new parameter, optimizer and scheduler built from the options, then the state loaded
    param2, opt2, sched2 = _setup(make, seed=1)
    with torch.no_grad():
        param2.copy_(saved_param)
    opt2.load_state_dict(saved_opt)
    sched2.load_state_dict(saved_sched)
    rest = [_step(param2, opt2, sched2) for _ in range(total - cut)]
    assert first + rest == uninterrupted  # bit-identical learning rates


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_restored_scheduler_alone_is_closed_form(name) -> None:
    """Only the scheduler's state (e.g. optimizer state lost): from the next step on, the closed form holds."""
    make = SCHEDULES[name]
    uninterrupted = _run(make, 12)
    param, opt, sched = _setup(make)
    for _ in range(5):
        _step(param, opt, sched)
    state = sched.state_dict()
    param2, opt2, sched2 = _setup(make)
    sched2.load_state_dict(state)
    assert sched2.last_epoch == 5
    assert sched2.get_lr() == pytest.approx([uninterrupted[5]], rel=1e-12)
    _step(param2, opt2, sched2)  # this step's lr came from the fresh optimizer; the next ones are right
    rest = [_step(param2, opt2, sched2) for _ in range(6)]
    assert rest == pytest.approx(uninterrupted[6:12], rel=1e-12)


def test_restored_scheduler_uses_current_schedule_parameters() -> None:
    """docs/checkpoints.md: 'Raising train.total_iter and resuming extends a finished run' and the trainer logs changed
    options; the closed-form schedule should be the one the options now describe, evaluated at the restored
    iteration (only the iteration count is state)."""
    param, opt, sched = _setup(lambda o: CosineAnnealingRestartLR(o, [6], [1.0], eta_min=0.0))
    for _ in range(6):
        _step(param, opt, sched)
    state_opt, state_sched = opt.state_dict(), sched.state_dict()
    # the extended run: periods [12] instead of [6]
    param2, opt2, sched2 = _setup(lambda o: CosineAnnealingRestartLR(o, [12], [1.0], eta_min=0.0))
    opt2.load_state_dict(state_opt)
    sched2.load_state_dict(state_sched)
    lr = _step(param2, opt2, sched2)  # step 7 uses the lr computed after step 6 by the restored scheduler
    lr = _step(param2, opt2, sched2)  # step 8: steps_done = 7 under the new periods
    assert sched2.periods == [12]
    assert lr == pytest.approx(_cosine(BASE_LR, 0.0, 1.0, 7 / 12))
