"""EMA of the network weights: the update rule, frozen copy, buffers, and what SRModel deploys with EMA on."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from framework.models.ema import ModelEMA
from framework.models.sr_model import SRModel
from framework.options import load_options


def _net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 3, 1))


def _perturb(net: nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn(p.shape, generator=g))


@pytest.mark.parametrize("decay", [0.9, 0.999, 0.5])
def test_update_rule(decay) -> None:
    net = _net()
    ema = ModelEMA(net, decay)
    old = {k: v.clone() for k, v in ema.module.named_parameters()}
    _perturb(net, 1)
    ema.update(net)
    live = dict(net.named_parameters())
    for name, p in ema.module.named_parameters():
        expected = decay * old[name] + (1 - decay) * live[name].detach()
        torch.testing.assert_close(p, expected, rtol=1e-6, atol=1e-7)
    # and a second update uses the EMA value, not the original weights
    before = {k: v.clone() for k, v in ema.module.named_parameters()}
    _perturb(net, 2)
    ema.update(net)
    for name, p in ema.module.named_parameters():
        expected = decay * before[name] + (1 - decay) * live[name].detach()
        torch.testing.assert_close(p, expected, rtol=1e-6, atol=1e-7)


def test_copy_is_frozen_independent_and_in_eval_mode() -> None:
    net = _net()
    ema = ModelEMA(net, 0.9)
    assert all(not p.requires_grad for p in ema.module.parameters())
    assert all(p.requires_grad for p in net.parameters())  # the live network is untouched
    assert not ema.module.training
    for p, q in zip(ema.module.parameters(), net.parameters(), strict=False):
        assert p.data_ptr() != q.data_ptr()
        assert torch.equal(p, q)  # starts as a copy
    # a training step on the live net leaves no grad on the copy
    net(torch.rand(2, 3, 6, 6)).sum().backward()
    assert all(p.grad is None for p in ema.module.parameters())


def test_buffers_are_copied_not_averaged() -> None:
    net = _net()
    ema = ModelEMA(net, 0.99)
    net.train()
    for _ in range(3):
        net(torch.rand(2, 3, 6, 6) * 5 + 2)  # moves BatchNorm running statistics
    bn = net[1]
    assert bn.num_batches_tracked.item() == 3
    ema.update(net)
    for (name, b_ema), (_, b_live) in zip(ema.module.named_buffers(), net.named_buffers(), strict=False):
        assert torch.equal(b_ema, b_live), name
        assert b_ema.data_ptr() != b_live.data_ptr(), name


def test_state_dict_round_trip() -> None:
    net = _net()
    ema = ModelEMA(net, 0.9)
    _perturb(net, 3)
    ema.update(net)
    other = ModelEMA(_net(5), 0.9)
    other.load_state_dict(copy.deepcopy(ema.state_dict()))
    for k, v in ema.state_dict().items():
        assert torch.equal(other.state_dict()[k], v)


# ---------------------------------------------------------------------------------------------- SRModel


def _model(options_file, ema_decay: float) -> SRModel:
    path = options_file(train={"ema_decay": ema_decay, "warmup_iter": 0, "scheduler": ...,
                               "optim_g": {"type": "Adam", "lr": 1e-2, "betas": [0.9, 0.99]}})
    options = load_options(path, [], require_train=True)
    torch.manual_seed(0)
    return SRModel(options, torch.device("cpu"))


def _batch(seed: int):
    g = torch.Generator().manual_seed(seed)
    return {"lq": torch.rand(2, 3, 8, 8, generator=g), "gt": torch.rand(2, 3, 16, 16, generator=g)}


def test_srmodel_deploys_ema_weights(options_file) -> None:
    decay = 0.9
    model = _model(options_file, decay)
    ema = model.emas["net_g"]
    assert ema.decay == decay
    expected = {k: v.clone() for k, v in model.net_g.state_dict().items()}
    for step in range(3):
        model.train_step(_batch(step), step + 1)
        live = model.net_g.state_dict()
        expected = {k: decay * expected[k] + (1 - decay) * live[k] for k in expected}
    deploy = model.deploy_state_dict()
    assert set(deploy) == set(model.net_g.state_dict())
    for k, v in deploy.items():
        torch.testing.assert_close(v, expected[k], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(v, ema.state_dict()[k], rtol=0, atol=0)
    assert any(not torch.allclose(deploy[k], model.net_g.state_dict()[k]) for k in deploy)
    assert model.deploy_net is ema.module
    # inference measures the EMA network
    lq = _batch(9)["lq"]
    torch.testing.assert_close(model.inference(lq), ema.module(lq))
    # the training state carries both
    state = model.state_dict()
    assert set(state["ema"]["net_g"]) == set(state["networks"]["net_g"])


def test_srmodel_without_ema_deploys_net_g(options_file) -> None:
    model = _model(options_file, 0.0)
    assert not model.emas
    model.train_step(_batch(0), 1)
    deploy = model.deploy_state_dict()
    for k, v in model.net_g.state_dict().items():
        assert torch.equal(deploy[k], v)
    assert model.state_dict()["ema"] == {}
