"""Pixel losses: values against the formula, loss_weight, reduction."""
from __future__ import annotations

import pytest
import torch

from framework.errors import UserError
from framework.losses import CharbonnierLoss, L1Loss, MSELoss


def _pair():
    g = torch.Generator().manual_seed(0)
    return torch.rand(2, 3, 5, 4, generator=g), torch.rand(2, 3, 5, 4, generator=g)


FORMULAS = {
    "L1Loss": (L1Loss, lambda p, t: (p - t).abs()),
    "MSELoss": (MSELoss, lambda p, t: (p - t) ** 2),
    "CharbonnierLoss": (CharbonnierLoss, lambda p, t: torch.sqrt((p - t) ** 2 + 1e-12)),
}


@pytest.mark.parametrize("name", list(FORMULAS))
@pytest.mark.parametrize("weight", [1.0, 0.5, 3.0])
def test_values_weight_and_reduction(name, weight) -> None:
    cls, formula = FORMULAS[name]
    pred, target = _pair()
    elementwise = formula(pred, target)
    torch.testing.assert_close(cls(loss_weight=weight)(pred, target), weight * elementwise.mean())
    torch.testing.assert_close(cls(weight, "mean")(pred, target), weight * elementwise.mean())
    torch.testing.assert_close(cls(weight, "sum")(pred, target), weight * elementwise.sum())
    none = cls(weight, "none")(pred, target)
    assert none.shape == pred.shape
    torch.testing.assert_close(none, weight * elementwise)


def test_defaults_match_torch() -> None:
    pred, target = _pair()
    torch.testing.assert_close(L1Loss()(pred, target), torch.nn.functional.l1_loss(pred, target))
    torch.testing.assert_close(MSELoss()(pred, target), torch.nn.functional.mse_loss(pred, target))
    torch.testing.assert_close(MSELoss(reduction="sum")(pred, target),
                               torch.nn.functional.mse_loss(pred, target, reduction="sum"))


def test_charbonnier_eps() -> None:
    pred, target = _pair()
    eps = 1e-3
    expected = torch.sqrt((pred - target) ** 2 + eps).mean()
    torch.testing.assert_close(CharbonnierLoss(eps=eps)(pred, target), expected)
    same = torch.zeros(4)
    torch.testing.assert_close(CharbonnierLoss(eps=eps, reduction="sum")(same, same), torch.tensor(4 * eps ** 0.5))


def test_gradients_flow() -> None:
    pred, target = _pair()
    pred.requires_grad_(True)
    L1Loss(loss_weight=2.0)(pred, target).backward()
    torch.testing.assert_close(pred.grad, 2.0 * torch.sign(pred.detach() - target) / pred.numel())


def test_bad_reduction() -> None:
    with pytest.raises(UserError, match="reduction"):
        L1Loss(reduction="avg")
