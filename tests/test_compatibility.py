"""Resuming under changed options: which changes stop the resume (their saved state cannot carry over) and
which are only reported."""
from __future__ import annotations

import pytest

from framework.compatibility import check_compatible
from framework.errors import UserError

SAVED = {"name": "run", "network_g": {"type": "MSRResNet", "num_feat": 8},
         "train": {"total_iter": 4, "optim_g": {"type": "Adam", "lr": 1e-3}},
         "path": {"resume_path": None, "pretrain_path": None}}


def _with(**changes: object) -> dict:
    return {**SAVED, **changes}


def test_the_same_options_have_nothing_to_say() -> None:
    assert check_compatible(SAVED, SAVED) == []


def test_changed_options_are_reported_but_where_the_run_starts_from_is_not() -> None:
    current = _with(train={**SAVED["train"], "total_iter": 6},
                    path={"resume_path": "weights/run_iter_4.pt", "pretrain_path": None})
    assert check_compatible(SAVED, current) == ["Option changed since the checkpoint: train.total_iter: 4 -> 6"]


@pytest.mark.parametrize("current,named", [
    (_with(network_g={"type": "MSRResNet", "num_feat": 16}), "network_g"),
    (_with(network_d={"type": "UNetDiscriminatorSN"}), "network_d"),
    (_with(train={**SAVED["train"], "optim_g": {"type": "AdamW", "lr": 1e-3}}), "optimizer is Adam"),
], ids=["another network_g", "a network_d added", "another optimizer type"])
def test_state_that_cannot_carry_over_stops_the_resume(current: dict, named: str) -> None:
    with pytest.raises(UserError, match=f"path.resume_path: .*{named}"):
        check_compatible(SAVED, current)


def test_an_optimizer_setting_other_than_its_type_carries_over() -> None:
    current = _with(train={**SAVED["train"], "optim_g": {"type": "Adam", "lr": 2e-4}})
    assert check_compatible(SAVED, current) == ["Option changed since the checkpoint: train.optim_g.lr: 0.001 -> "
                                                "0.0002"]
