"""Optimizers and learning-rate schedules.

Every schedule here is a closed-form function of the number of optimizer steps taken, so resuming from a
checkpoint gives exactly the learning rate an uninterrupted run would have had (the classic BasicSR bug of a
schedule that is wrong after resume cannot happen: there is no accumulated state to get wrong). The one
exception, :class:`ReduceLROnPlateau`, reacts to validation results: its few counters are saved beside the
position.

Adan and the schedule-free AdamW come from the ``pytorch-optimizer`` package (the ``optim`` extra), imported
only when a run asks for them; the schedule-free Adan is traiNNer-redux's algorithm, written here (no package
has it). A schedule-free optimizer trains at a point ``y`` between its fast iterate ``z``
and its average ``x`` and evaluates at ``x``; :func:`schedule_free_average` computes ``x`` beside the training
weights instead of switching them in place, so validation and saving never perturb training.
"""
from __future__ import annotations

import bisect
import importlib
import math
from types import MappingProxyType
from typing import Any, Dict, Iterable, List, Literal, Optional, Sequence, Tuple

import torch
from torch.optim.lr_scheduler import LRScheduler

from .errors import UserError
from .option_rules import ComponentSpec
from .registry import OPTIMIZER_REGISTRY, SCHEDULER_REGISTRY
from .torch_private import foreach

for _optimizer in (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD):
    OPTIMIZER_REGISTRY.register(_optimizer)

# The package that provides Adan and the schedule-free AdamW (module name, pip name).
PYTORCH_OPTIMIZER = ("pytorch_optimizer", "pytorch-optimizer")


def _package_optimizer(name: str) -> Any:
    """A class of the optional ``pytorch-optimizer`` package (the option checks already made sure it is there)."""
    try:
        module = importlib.import_module(PYTORCH_OPTIMIZER[0])
    except ImportError as exc:
        raise UserError(f"this optimizer needs the {PYTORCH_OPTIMIZER[1]} package, which is not installed: pip "
                        f"install {PYTORCH_OPTIMIZER[1]}") from exc
    return getattr(module, name)


@OPTIMIZER_REGISTRY.register()
def Adan(params: Iterable[torch.Tensor], lr: float = 1e-3, betas: Tuple[float, float, float] = (0.98, 0.92, 0.99),
         weight_decay: float = 0.0, weight_decouple: bool = False, eps: float = 1e-8,
         max_grad_norm: float = 0.0) -> torch.optim.Optimizer:
    """Adan (adaptive Nesterov momentum; Xie et al. 2022), as in traiNNer-redux and neosr: three betas."""
    return _package_optimizer("Adan")(params, lr=lr, betas=betas, weight_decay=weight_decay,
                                      weight_decouple=weight_decouple, eps=eps, max_grad_norm=max_grad_norm)


@OPTIMIZER_REGISTRY.register()
def AdamWScheduleFree(params: Iterable[torch.Tensor], lr: float = 2.5e-3, betas: Tuple[float, float] = (0.9, 0.999),
                      weight_decay: float = 0.0, eps: float = 1e-8, warmup_steps: int = 0, r: float = 0.0,
                      weight_lr_power: float = 2.0) -> torch.optim.Optimizer:
    """Schedule-free AdamW (Defazio et al. 2024; the ``schedulefree`` package's and traiNNer-redux's name): no
    decaying schedule needed; validation and the ``.pth`` use its averaged weights."""
    return _package_optimizer("ScheduleFreeAdamW")(params, lr=lr, betas=betas, weight_decay=weight_decay, eps=eps,
                                                   warmup_steps=warmup_steps, r=r, weight_lr_power=weight_lr_power)


for _factory in (Adan, AdamWScheduleFree):
    _factory.required_package = PYTORCH_OPTIMIZER


@OPTIMIZER_REGISTRY.register()
class AdanScheduleFree(torch.optim.Optimizer):
    """Schedule-free Adan as traiNNer-redux defines it (its ``AdanScheduleFree``, the optimizer of its current
    templates), so that a template's ``lr`` / ``betas`` / ``warmup_steps`` mean what they mean there.

    Adan's three moments (Xie et al. 2022) are taken of the gradient at the training point ``y``: ``m`` of the
    gradient (``betas[0]``), ``v`` of the gradient's change since the previous step (``betas[1]``), ``n`` of the
    squared Nesterov-corrected gradient ``g + betas[1] * (g - g_prev)`` (``betas[2]``). With the bias-corrected
    direction ``d = (m / (1 - b1^t) + b2 * v / (1 - b2^t)) / (sqrt(n / (1 - b3^t)) + eps)``, a step is::

        z <- z * (1 - lr * weight_decay) - lr * d
        y <- lerp(y, z_old, c) * (1 - lr * weight_decay) - lr * (1 - c) * d

    where ``c`` is the schedule-free averaging weight (Defazio et al. 2024): the step's ``t^r * lr_max^p``
    over the sum so far (``r``, ``p = weight_lr_power``), ``lr_max`` the largest rate seen with a linear
    warm-up over ``warmup_steps``. The warm-up weights the average only; every step runs at ``lr``. The
    weights evaluated (validation, ``.pth``) are ``x = lerp(y, z, 1 - 1 / b1)``, which
    :func:`schedule_free_average` computes beside ``y``. ``max_grad_norm`` > 0 scales the gradients down to
    that global norm first.
    """

    def __init__(self, params: Iterable[torch.Tensor], lr: float = 1e-3,
                 betas: Tuple[float, float, float] = (0.98, 0.92, 0.99), eps: float = 1e-8,
                 weight_decay: float = 0.01, max_grad_norm: float = 0.0, warmup_steps: int = 1600,
                 r: float = 0.0, weight_lr_power: float = 2.0) -> None:
        if lr < 0 or eps < 0 or max_grad_norm < 0 or warmup_steps < 0:
            raise UserError(f"AdanScheduleFree: lr, eps, max_grad_norm and warmup_steps must not be negative, "
                            f"got {lr}, {eps}, {max_grad_norm}, {warmup_steps}")
        if len(betas) != 3 or not all(0.0 <= b < 1.0 for b in betas):
            raise UserError(f"AdanScheduleFree: betas must be three numbers in [0, 1), got {list(betas)}")
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay,
                                  "max_grad_norm": max_grad_norm, "warmup_steps": int(warmup_steps), "r": r,
                                  "weight_lr_power": weight_lr_power, "step": 0, "weight_sum": 0.0,
                                  "lr_max": -1.0, "train_mode": True})

    def _gradient_scale(self) -> float:
        """The factor that brings the global gradient norm down to ``max_grad_norm`` (1 when that is 0)."""
        max_norm = self.param_groups[0]["max_grad_norm"]
        if max_norm <= 0:
            return 1.0
        grads = [p.grad for group in self.param_groups for p in group["params"] if p.grad is not None]
        if not grads:
            return 1.0
        norm = torch.linalg.vector_norm(torch.stack([n.double() for n in foreach.norm(grads)]))
        return min(1.0, max_norm / (float(norm) + self.param_groups[-1]["eps"]))

    @staticmethod
    def _averaging_weight(group: Dict[str, Any]) -> float:
        """Advance the group's step count and return this step's weight in the average of the iterates."""
        group["step"] += 1
        step, warmup = group["step"], group["warmup_steps"]
        ramp = step / warmup if 0 < warmup and step < warmup else 1.0
        group["lr_max"] = max(group["lr"] * ramp, group["lr_max"])
        weight = step ** group["r"] * group["lr_max"] ** group["weight_lr_power"]
        group["weight_sum"] += weight
        return weight / group["weight_sum"] if group["weight_sum"] else 0.0

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        if not all(group["train_mode"] for group in self.param_groups):
            raise RuntimeError("AdanScheduleFree.step in eval mode: call train() first")
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        scale = self._gradient_scale()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            c = self._averaging_weight(group)
            self._update(group, params, [p.grad * scale for p in params], c)
        return loss

    def _update(self, group: Dict[str, Any], params: List[torch.Tensor], grads: List[torch.Tensor],
                c: float) -> None:
        b1, b2, b3 = group["betas"]
        step, lr = group["step"], group["lr"]
        states = [self.state[p] for p in params]
        for p, g, state in zip(params, grads, states, strict=True):
            if "z" not in state:
                state.update(exp_avg=torch.zeros_like(p), exp_avg_diff=torch.zeros_like(p),
                             exp_avg_sq=torch.zeros_like(p), z=p.detach().clone())
            if step == 1 or "prev_grad" not in state:  # no change of gradient at the first step
                state["prev_grad"] = g.clone()
        m, v, n, z, prev = ([s[k] for s in states] for k in ("exp_avg", "exp_avg_diff", "exp_avg_sq", "z",
                                                               "prev_grad"))
        diff = foreach.sub(grads, prev)
        foreach.lerp_(m, grads, 1 - b1)
        foreach.lerp_(v, diff, 1 - b2)
        nesterov = foreach.add(grads, diff, alpha=b2)
        foreach.mul_(n, b3)
        foreach.addcmul_(n, nesterov, nesterov, value=1 - b3)
        denom = foreach.sqrt(n)
        foreach.div_(denom, math.sqrt(1 - b3 ** step))
        foreach.add_(denom, group["eps"])
        direction = foreach.mul(m, 1 / (1 - b1 ** step))
        foreach.add_(direction, v, alpha=b2 / (1 - b2 ** step))
        foreach.div_(direction, denom)
        decay = 1 - lr * group["weight_decay"]
        foreach.lerp_(params, z, c)
        foreach.mul_(params, decay)
        foreach.add_(params, direction, alpha=-lr * (1 - c))
        foreach.mul_(z, decay)
        foreach.add_(z, direction, alpha=-lr)
        foreach.copy_(prev, grads)

    @torch.no_grad()
    def eval(self) -> None:
        """Switch the parameters to the average ``x`` in place (the trainer computes it beside them instead)."""
        self._switch(to_train=False)

    @torch.no_grad()
    def train(self) -> None:
        """Switch the parameters back from ``x`` to the training point ``y``."""
        self._switch(to_train=True)

    def _switch(self, to_train: bool) -> None:
        for group in self.param_groups:
            if group["train_mode"] == to_train:
                continue
            b1 = group["betas"][0]
            for p in group["params"]:
                if "z" in self.state[p]:
                    p.lerp_(self.state[p]["z"], 1 - b1 if to_train else 1 - 1 / b1)
            group["train_mode"] = to_train

# Param-group entries that are optimizer state, not settings: a resume keeps the saved ones (the settings
# come from the current options).
GROUP_STATE_KEYS = frozenset({"step", "k", "train_mode", "weight_sum", "lr_max"})


def group_settings(group: Dict[str, Any]) -> Dict[str, Any]:
    """The settings of a param group (lr, betas, weight decay, ...): what the current options decide."""
    return {k: v for k, v in group.items() if k != "params" and k not in GROUP_STATE_KEYS}


def is_schedule_free(optimizer: torch.optim.Optimizer) -> bool:
    """Whether ``optimizer`` evaluates at an average of its iterates (a schedule-free optimizer)."""
    return any("train_mode" in group for group in optimizer.param_groups)


def optimizer_steps(optimizer: torch.optim.Optimizer) -> int:
    """How many steps the optimizer has taken (its groups count them), e.g. to know when an average is stale."""
    return sum(int(group.get("step", group.get("k", 0))) for group in optimizer.param_groups)


@torch.no_grad()
def schedule_free_average(optimizer: torch.optim.Optimizer,
                          params: Sequence[torch.Tensor]) -> List[torch.Tensor]:
    """The weights a schedule-free ``optimizer`` evaluates at (``x``) for each of ``params``, computed beside the
    training weights ``y``: the same ``lerp`` that ``optimizer.eval()`` applies in place, so the values are
    bit for bit the ones ``eval()`` would give. Parameters the optimizer has no average of come back as they are."""
    beta1 = {id(p): group["betas"][0] for group in optimizer.param_groups if group.get("train_mode", True)
             for p in group["params"]}
    out = []
    for p in params:
        z = optimizer.state.get(p, {}).get("z") if id(p) in beta1 else None
        out.append(p.detach() if z is None else torch.lerp(p.detach(), z, 1.0 - 1.0 / beta1[id(p)]))
    return out


class IterationLR(LRScheduler):
    """Base of our schedules: ``lr_at(base_lr, steps_done)`` times a linear warm-up.

    The warm-up factor for the optimizer step number ``steps_done + 1`` is ``min(1, (steps_done + 1) / W)``,
    so step ``W`` runs at exactly the scheduled learning rate.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, warmup_iter: int = 0) -> None:
        self.warmup_iter = max(0, int(warmup_iter))
        super().__init__(optimizer)

    def lr_at(self, base_lr: float, steps_done: int) -> float:
        raise NotImplementedError

    def get_lr(self) -> List[float]:  # type: ignore[override]
        steps = self.last_epoch
        warm = min(1.0, (steps + 1) / self.warmup_iter) if self.warmup_iter > 0 else 1.0
        return [warm * self.lr_at(float(base), steps) for base in self.base_lrs]

    _get_closed_form_lr = get_lr

    def state_dict(self) -> Dict[str, Any]:
        """Only the position: the schedule and base rates come from the current options, so extending a run
        with new periods, milestones or lr takes effect on resume instead of being overwritten by old ones."""
        return {"last_epoch": self.last_epoch, "_step_count": self._step_count}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        self.last_epoch = int(state_dict["last_epoch"])
        self._step_count = int(state_dict.get("_step_count", self.last_epoch + 1))
        for group, lr in zip(self.optimizer.param_groups, self.get_lr(), strict=True):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]


@SCHEDULER_REGISTRY.register()
class ConstantLR(IterationLR):
    """The base learning rate throughout (after the warm-up, if any)."""

    def lr_at(self, base_lr: float, steps_done: int) -> float:
        return base_lr


@SCHEDULER_REGISTRY.register()
class MultiStepLR(IterationLR):
    """Multiply by ``gamma`` once each milestone (in iterations) has been passed."""

    def __init__(self, optimizer: torch.optim.Optimizer, milestones: Sequence[int], gamma: float = 0.5,
                 warmup_iter: int = 0) -> None:
        self.milestones = sorted(int(m) for m in milestones)
        self.gamma = gamma
        super().__init__(optimizer, warmup_iter)

    def lr_at(self, base_lr: float, steps_done: int) -> float:
        return base_lr * self.gamma ** bisect.bisect_right(self.milestones, steps_done)


@SCHEDULER_REGISTRY.register()
class CosineAnnealingRestartLR(IterationLR):
    """Cosine annealing from the base rate to ``eta_min`` over each period, restarting at ``restart_weights``
    times the base rate (SGDR, as in BasicSR). After the last period the rate stays at ``eta_min``."""

    def __init__(self, optimizer: torch.optim.Optimizer, periods: Sequence[int],
                 restart_weights: Sequence[float] = (1.0,), eta_min: float = 0.0, warmup_iter: int = 0) -> None:
        if len(periods) != len(restart_weights):
            raise UserError(f"CosineAnnealingRestartLR: periods ({len(periods)}) and restart_weights "
                            f"({len(restart_weights)}) must have the same length")
        if any(int(p) < 1 for p in periods):
            raise UserError(f"CosineAnnealingRestartLR: every period must be a positive number of iterations, "
                            f"got {list(periods)}")
        self.periods = [int(p) for p in periods]
        self.restart_weights = [float(w) for w in restart_weights]
        self.eta_min = eta_min
        self.cumulative = [sum(self.periods[:i + 1]) for i in range(len(self.periods))]
        super().__init__(optimizer, warmup_iter)

    def lr_at(self, base_lr: float, steps_done: int) -> float:
        cycle = bisect.bisect_left(self.cumulative, steps_done)  # BasicSR: eta_min at the period's end,
        if cycle >= len(self.periods):                             # the restart one step later
            return self.eta_min
        start = self.cumulative[cycle] - self.periods[cycle]
        progress = (steps_done - start) / self.periods[cycle]
        weight = self.restart_weights[cycle]
        return self.eta_min + weight * 0.5 * (base_lr - self.eta_min) * (1 + math.cos(math.pi * progress))


@SCHEDULER_REGISTRY.register()
class CosineAnnealingLR(IterationLR):
    """Cosine annealing from the base rate to ``eta_min`` over ``T_max`` iterations (PyTorch's closed form:
    past ``T_max`` the cosine continues, rising again; set ``T_max`` to ``total_iter`` for one decay)."""

    def __init__(self, optimizer: torch.optim.Optimizer, T_max: int, eta_min: float = 0.0,
                 warmup_iter: int = 0) -> None:
        if int(T_max) < 1:
            raise UserError(f"CosineAnnealingLR: T_max must be a positive number of iterations, got {T_max}")
        self.T_max = int(T_max)
        self.eta_min = eta_min
        super().__init__(optimizer, warmup_iter)

    def lr_at(self, base_lr: float, steps_done: int) -> float:
        return self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * steps_done / self.T_max)) / 2


@SCHEDULER_REGISTRY.register()
class OneCycleLR(IterationLR):
    """The 1cycle policy (PyTorch's OneCycleLR, per iteration): from ``max_lr / div_factor`` up to ``max_lr``
    over the first ``pct_start`` of ``total_steps``, then down to ``initial / final_div_factor`` (three
    phases with ``three_phase``); with ``cycle_momentum`` the momentum (SGD) or beta1 (Adam) moves the other way
    between ``max_momentum`` and ``base_momentum``. After ``total_steps`` the rate stays at its end value.
    ``max_lr`` defaults to the optimizer's ``lr``."""

    def __init__(self, optimizer: torch.optim.Optimizer, total_steps: int, max_lr: Optional[float] = None,
                 pct_start: float = 0.3, anneal_strategy: Literal["cos", "linear"] = "cos",
                 cycle_momentum: bool = True, base_momentum: float = 0.85, max_momentum: float = 0.95,
                 div_factor: float = 25.0, final_div_factor: float = 1e4, three_phase: bool = False,
                 warmup_iter: int = 0) -> None:
        if int(total_steps) < 2 or not 0 < pct_start < 1:
            raise UserError(f"OneCycleLR: total_steps must be at least 2 and pct_start between 0 and 1, got "
                            f"{total_steps} and {pct_start}")
        self.total_steps, self.max_lr, self.pct_start = int(total_steps), max_lr, float(pct_start)
        self.anneal = anneal_strategy
        self.cycle_momentum, self.base_momentum, self.max_momentum = cycle_momentum, base_momentum, max_momentum
        self.div_factor, self.final_div_factor = div_factor, final_div_factor
        up = self.pct_start * self.total_steps - 1
        # (end step, start and end of the rate as fractions of max_lr, start and end momentum)
        initial, final = 1 / div_factor, 1 / div_factor / final_div_factor
        if three_phase:
            self.phases = [(up, initial, 1.0, max_momentum, base_momentum),
                           (2 * self.pct_start * self.total_steps - 2, 1.0, initial, base_momentum, max_momentum),
                           (self.total_steps - 1, initial, final, max_momentum, max_momentum)]
        else:
            self.phases = [(up, initial, 1.0, max_momentum, base_momentum),
                           (self.total_steps - 1, 1.0, final, base_momentum, max_momentum)]
        if cycle_momentum and not any(k in optimizer.defaults for k in ("momentum", "betas")):
            raise UserError(f"OneCycleLR: cycle_momentum needs an optimizer with momentum or betas, "
                            f"{type(optimizer).__name__} has neither; set cycle_momentum: false")
        super().__init__(optimizer, warmup_iter)

    def _interpolate(self, start: float, end: float, pct: float) -> float:
        if self.anneal == "cos":
            return end + (start - end) / 2 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def _phase(self, steps_done: int, lr: bool) -> float:
        step = min(steps_done, self.total_steps - 1)
        start_step = 0.0
        for index, (end_step, lr_start, lr_end, m_start, m_end) in enumerate(self.phases):
            if step <= end_step or index == len(self.phases) - 1:
                pct = (step - start_step) / (end_step - start_step)
                return self._interpolate(lr_start, lr_end, pct) if lr else self._interpolate(m_start, m_end, pct)
            start_step = end_step
        raise AssertionError("unreachable")

    def lr_at(self, base_lr: float, steps_done: int) -> float:
        return (self.max_lr if self.max_lr is not None else base_lr) * self._phase(steps_done, lr=True)

    def get_lr(self) -> List[float]:  # type: ignore[override]
        if self.cycle_momentum:  # set beside the rate, from the same position
            momentum = self._phase(self.last_epoch, lr=False)
            for group in self.optimizer.param_groups:
                if "betas" in group:
                    group["betas"] = (momentum, *group["betas"][1:])
                else:
                    group["momentum"] = momentum
        return super().get_lr()

    _get_closed_form_lr = get_lr


@SCHEDULER_REGISTRY.register()
class ReduceLROnPlateau(IterationLR):
    """Multiply the rate by ``factor`` when the validation metric ``monitor`` (default: the first of
    ``val.metrics``) has not improved for more than ``patience`` validations (PyTorch's rule: improvement
    beyond ``threshold``, relative or absolute; ``cooldown`` validations of rest after a reduction; never
    below ``min_lr``). Whether higher is better comes from the metric. The counters are saved in the ``.pt``."""

    option_spec = ComponentSpec(refused=MappingProxyType({
        "mode": "ReduceLROnPlateau takes its mode from the metric it monitors (val.metrics.<name>.better, else the "
                "metric's own direction); remove mode"}))

    def __init__(self, optimizer: torch.optim.Optimizer, monitor: Optional[str] = None, factor: float = 0.1,
                 patience: int = 10, threshold: float = 1e-4, threshold_mode: Literal["rel", "abs"] = "rel",
                 cooldown: int = 0, min_lr: float = 0.0, warmup_iter: int = 0) -> None:
        if not 0 < factor < 1:
            raise UserError(f"ReduceLROnPlateau: factor must be between 0 and 1, got {factor}")
        self.monitor, self.factor, self.patience = monitor, factor, int(patience)
        self.threshold, self.threshold_mode = threshold, threshold_mode
        self.cooldown, self.min_lr = int(cooldown), min_lr
        self.best: Optional[float] = None
        self.num_bad = 0
        self.cooldown_counter = 0
        self.reductions = 0
        super().__init__(optimizer, warmup_iter)

    def lr_at(self, base_lr: float, steps_done: int) -> float:
        return base_lr if self.reductions == 0 else max(self.min_lr, base_lr * self.factor ** self.reductions)

    def _improves(self, value: float, higher_is_better: bool) -> bool:
        if self.best is None:
            return True
        sign = 1.0 if higher_is_better else -1.0
        margin = abs(self.best) * self.threshold if self.threshold_mode == "rel" else self.threshold
        return sign * (value - self.best) > margin

    def report(self, value: float, higher_is_better: bool) -> bool:
        """One validation's value of the monitored metric; True when the rate was reduced."""
        if self._improves(value, higher_is_better):
            self.best, self.num_bad = float(value), 0
        else:
            self.num_bad += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad = 0
        if self.num_bad <= self.patience:
            return False
        self.cooldown_counter, self.num_bad = self.cooldown, 0
        if all(base * self.factor ** self.reductions <= self.min_lr for base in self.base_lrs):
            return False
        self.reductions += 1
        self._apply()
        return True

    def _apply(self) -> None:
        for group, lr in zip(self.optimizer.param_groups, self.get_lr(), strict=True):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> Dict[str, Any]:
        return {**super().state_dict(), "best": self.best, "num_bad": self.num_bad,
                "cooldown_counter": self.cooldown_counter, "reductions": self.reductions}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        best = state_dict.get("best")
        self.best = None if best is None else float(best)
        self.num_bad = int(state_dict.get("num_bad", 0))
        self.cooldown_counter = int(state_dict.get("cooldown_counter", 0))
        self.reductions = int(state_dict.get("reductions", 0))
        super().load_state_dict(state_dict)
